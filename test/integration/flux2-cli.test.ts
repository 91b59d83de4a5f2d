/**
 * `npm run edit` on a klein folder: the CLI's parity interface in the family's layouts (--init-noise
 * [B, 128, H/16, W/16], --latent-out [B, 32, H/8, W/8]) reproduces diffusers' latent for an edit with a
 * --reference image and for a base edit with CFG (--text-scale is guidance_scale); --from continues from the stored
 * latent; an InstructPix2Pix model refuses --reference with a message. Runs the built CLI (npm run build).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'edit.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'flux2');

function run(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--device', 'cpu', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return Float32Array.from({ length: buf.byteLength / 4 }, (_, i) => buf.readFloatLE(i * 4));
}

function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let [diff, scale] = [0, 0];
  for (let i = 0; i < a.length; i++) [diff, scale] = [Math.max(diff, Math.abs(a[i] - b[i])), Math.max(scale, Math.abs(b[i]))];
  return diff / scale;
}

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-klein-cli-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

it.each([
  ['reference-edit', 'tiny-klein-distilled', 'make the mug look like this', 4, 1, ['--reference', path.join(FIXTURES, 'reference.png')]],
  ['base-edit', 'tiny-klein-base', 'make the circle blue', 6, 4, []],
] as const)('--init-noise / --latent-out reproduce diffusers (%s)', (name, model, instruction, steps, scale, extra) => {
  const out = path.join(work, `${name}.f32`);
  const r = run([
    '--model', path.join(FIXTURES, model), '--image', path.join(FIXTURES, 'source.png'), '--instruction', instruction, '--steps', String(steps),
    '--text-scale', String(scale), '--work-side', '64', '--init-noise', path.join(FIXTURES, `${name}.noise.f32`), '--latent-out', out,
    '--out', path.join(work, `${name}.png`), ...extra,
  ]);
  expect(r.stderr).toMatch(/FLUX\.2 \[klein\]/);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/\[1, 32, 8, 8\] float32/);
  expect(relativeError(readF32(out), readF32(path.join(FIXTURES, `${name}.expected.f32`)))).toBeLessThan(1e-3);
});

it('--from a klein result continues from its latent (the chain case)', () => {
  const first = path.join(work, 'first.png');
  const common = ['--model', path.join(FIXTURES, 'tiny-klein-distilled'), '--steps', '4', '--text-scale', '1', '--work-side', '64'];
  expect(run([...common, '--image', path.join(FIXTURES, 'source.png'), '--instruction', 'make the square green', '--init-noise', path.join(FIXTURES, 'distilled-edit.noise.f32'), '--out', first]).code).toBe(0);
  const out = path.join(work, 'chain.f32');
  const r = run([...common, '--from', first, '--instruction', 'make the circle red', '--init-noise', path.join(FIXTURES, 'chain-2.noise.f32'), '--latent-out', out, '--out', path.join(work, 'second.png')]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/conditioning from latent/);
  expect(relativeError(readF32(out), readF32(path.join(FIXTURES, 'chain-2.expected.f32')))).toBeLessThan(1e-3);
});

it('an InstructPix2Pix model refuses --reference', () => {
  const r = run(['--image', path.join(ROOT, 'test', 'fixtures', 'shapes-128.png'), '--instruction', 'x', '--steps', '2', '--reference', path.join(FIXTURES, 'reference.png'), '--out', path.join(work, 'x.png')]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/reads no reference images/);
});
