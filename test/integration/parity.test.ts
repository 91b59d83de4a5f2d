/**
 * Parity: the TypeScript loop reproduces the Python reference loop (tools/tiny-model/reference_pipeline.py,
 * same ONNX files, same injected noise) within 1e-3 max abs difference in the final latent, for global,
 * masked (guidance / blend / both), strength and latent-iteration edits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pix2PixModel } from '../../server/engine/models';
import { edit, type EditSource, type Locality } from '../../server/engine/pipeline';
import { injectedNoise } from '../../server/engine/rng';
import { decodeImage, maskFromImage } from '../../server/imaging/image';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = process.env.LAYERLOOP_PARITY_MODEL ?? path.join(ROOT, 'models', 'tiny-pix2pix');
const CASES = process.env.LAYERLOOP_PARITY_FIXTURES ?? path.join(ROOT, 'test', 'fixtures', 'parity');

interface Case {
  name: string;
  instruction: string;
  mask: string | null;
  locality: Locality;
  strength: number;
  steps: number;
  textScale: number;
  imageScale: number;
  progressiveShrink: boolean;
  latentShape: [number, number, number];
  continueFrom?: string;
}

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function chunks(all: Float32Array, size: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const cases: Case[] = fs
  .readdirSync(CASES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(fs.readFileSync(path.join(CASES, f), 'utf8')) as Case)
  .sort((a, b) => a.name.localeCompare(b.name));

describe('TypeScript engine vs Python reference loop', () => {
  let model: Pix2PixModel;
  const latents = new Map<string, Float32Array>();

  beforeAll(async () => {
    model = await Pix2PixModel.load(MODEL, { device: 'cpu', timer: { onnxMs: 0, calls: 0 }, log: () => {} });
  });
  afterAll(async () => model.release());

  it('has the committed fixtures (global, masked x3, strength, latent iteration x2)', () => {
    expect(cases.map((c) => c.name)).toEqual(['global', 'iterate-1', 'iterate-2', 'masked-blend', 'masked-both', 'masked-guidance', 'strength']);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const image = await decodeImage(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-128.png')));
    const mask = c.mask ? maskFromImage(await decodeImage(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', c.mask)))) : null;
    const n = c.latentShape.reduce((a, b) => a * b, 1);
    let source: EditSource = { kind: 'pixels', image };
    if (c.continueFrom) {
      const prev = latents.get(c.continueFrom);
      if (!prev) throw new Error(`run ${c.continueFrom} first`);
      source = {
        kind: 'latent',
        image,
        latent: { data: prev, height: c.latentShape[1], width: c.latentShape[2], geometry: { x: 0, y: 0, width: 128, height: 128, workWidth: 128, workHeight: 128 } },
      };
    }
    const result = await edit(
      model,
      source,
      [{ instruction: c.instruction, mask }],
      { steps: c.steps, textScale: c.textScale, imageScale: c.imageScale, locality: c.locality, strength: c.strength, progressiveShrink: c.progressiveShrink, spread: 0, sampler: 'euler_ancestral' },
      { noise: injectedNoise(chunks(readF32(path.join(CASES, `${c.name}.noise.f32`)), n)) },
    );
    const got = result.variations[0].latent.data;
    latents.set(c.name, got);
    expect(result.conditioning).toBe(c.continueFrom ? 'latent' : 'pixels');
    expect(maxAbsDiff(got, readF32(path.join(CASES, `${c.name}.expected.f32`)))).toBeLessThan(1e-3);
  });
});
