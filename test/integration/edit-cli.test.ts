/**
 * `npm run edit` (dist/cli/edit.js): options parsed by the protocol's schema (the server's limits and messages,
 * naming the flag), and the parity interface for outside checks: --init-noise replaces the initial noise and
 * --latent-out writes the final latent, in diffusers' layouts, so the result can be compared with diffusers'
 * pipeline. Here the comparison is with the parity fixtures (tools/tiny-model/reference_pipeline.py, which
 * steps diffusers' own schedulers) for the deterministic samplers.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'edit.js');
const PARITY = path.join(ROOT, 'test', 'fixtures', 'parity');
const IMAGE = path.join(ROOT, 'test', 'fixtures', 'shapes-128.png');

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--device', 'cpu', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return Float32Array.from({ length: buf.byteLength / 4 }, (_, i) => buf.readFloatLE(i * 4));
}

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-edit-cli-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

it('checks the options with the protocol schema and names each bad flag', () => {
  const r = run(['--image', IMAGE, '--instruction', 'x', '--steps', '300', '--variations', '16', '--strength', '0', '--sampler', 'lms']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--steps: steps must be an integer between 1 and 100, got 300/);
  expect(r.stderr).toMatch(/--variations: variations must be an integer between 1 and 8, got 16/);
  expect(r.stderr).toMatch(/--strength: strength must be a number greater than 0 and at most 1, got 0/);
  expect(r.stderr).toMatch(/--sampler: sampler must be one of euler_ancestral, euler, ddim, got "lms"/);
  const help = run(['--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/--progressive-shrink/);
});

it.each([
  ['euler-global', 'make the square red', 'euler'],
  ['ddim-global', 'make the circle green', 'ddim'],
])('--init-noise and --latent-out reproduce the reference latent (%s)', (name, instruction, sampler) => {
  const out = path.join(work, `${name}.f32`);
  const r = run(['--image', IMAGE, '--instruction', instruction, '--sampler', sampler, '--init-noise', path.join(PARITY, `${name}.noise.f32`), '--latent-out', out, '--out', path.join(work, `${name}.png`)]);
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/wrote .*\.f32: \[1, 4, 16, 16\] float32/);
  const got = readF32(out);
  const expected = readF32(path.join(PARITY, `${name}.expected.f32`));
  expect(got.length).toBe(expected.length);
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - expected[i]));
  expect(max).toBeLessThan(1e-3);
});

it('says how much initial noise the edit needs when the file does not fit', () => {
  const r = run(['--image', IMAGE, '--instruction', 'x', '--init-noise', path.join(PARITY, 'global.noise.f32'), '--out', path.join(work, 'x.png')]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/the given initial noise has 21504 values, the edit draws 1024 \(--init-noise .*global\.noise\.f32\)/);
});
