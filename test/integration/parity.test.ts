/**
 * Parity: the TypeScript engine reproduces the Python reference (tools/tiny-model/reference_pipeline.py, which
 * steps diffusers' own schedulers, and reference_compose.py; same ONNX files, same injected noise) for every case
 * in test/fixtures/parity: Euler ancestral, Euler and DDIM; global, masked (guidance / blend / both) and
 * two-region edits; spread; strength below 1; blending with and without progressive shrinking; latent
 * iteration; and context crops on a large image, composited back.
 *
 * The final latent must match within 1e-3 (max abs difference). The composited image may differ only where the
 * decoder's output sits on a rounding boundary: at most 1 level, in at most 0.1 % of the values; pixels outside
 * the edit's paste mask are copied bytes on both sides.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LOCALITIES } from '../../shared/protocol';
import { editImage, type EditSource, type Region } from '../../server/edit/edit-image';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine, type TensorEngine } from '../../server/engine/local';
import { injectedNoise } from '../../server/engine/rng';
import type { SamplerName } from '../../server/engine/samplers';
import { decodeImage, maskFromImage, type RgbaImage } from '../../server/imaging/image';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = process.env.LAYERLOOP_PARITY_MODEL ?? path.join(ROOT, 'models', 'tiny-pix2pix');
const CASES = process.env.LAYERLOOP_PARITY_FIXTURES ?? path.join(ROOT, 'test', 'fixtures', 'parity');

interface Case {
  name: string;
  image: string;
  regions: { instruction: string; mask: string | null }[];
  continueFrom: string | null;
  steps: number;
  sampler: SamplerName;
  textScale: number;
  imageScale: number;
  locality: (typeof LOCALITIES)[number];
  spread: number;
  strength: number;
  progressiveShrink: boolean;
  geometry: { x: number; y: number; width: number; height: number; workWidth: number; workHeight: number };
  latentShape: [number, number, number];
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

/** Largest RGB difference in levels, and how many RGB values differ at all. */
function imageDiff(a: RgbaImage, b: RgbaImage): { max: number; differing: number; values: number } {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (i % 4 === 3) continue;
    const d = Math.abs(a.data[i] - b.data[i]);
    max = Math.max(max, d);
    if (d > 0) differing++;
  }
  return { max, differing, values: a.width * a.height * 3 };
}

const cases: Case[] = fs
  .readdirSync(CASES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(fs.readFileSync(path.join(CASES, f), 'utf8')) as Case)
  .sort((a, b) => (a.continueFrom ? 1 : 0) - (b.continueFrom ? 1 : 0) || a.name.localeCompare(b.name)); // continuations after their sources

const fixture = async (file: string) => decodeImage(fs.readFileSync(path.resolve(CASES, file)));

describe('TypeScript engine vs Python reference (diffusers schedulers)', () => {
  let model: ModelAdapter;
  let engine: TensorEngine;
  const results = new Map<string, { latent: Float32Array; image: RgbaImage }>();

  beforeAll(async () => {
    const timer = { onnxMs: 0, calls: 0 };
    model = await loadModel(MODEL, { device: 'cpu', timer, log: () => {} });
    engine = localEngine(model, timer);
  });
  afterAll(async () => model.release());

  it('has the committed fixtures: every sampler, regions, spread, strength, shrinking, iteration, large-image crops', () => {
    expect(cases.map((c) => c.name).sort()).toEqual([
      'blend-no-shrink', 'ddim-global', 'ddim-masked-blend-strength', 'euler-global', 'euler-masked-strength', 'global',
      'iterate-1', 'iterate-2', 'large-crop', 'large-crop-spread', 'masked-blend', 'masked-both', 'masked-guidance',
      'spread', 'strength', 'two-regions', 'two-regions-blend',
    ]);
    expect(new Set(cases.map((c) => c.sampler))).toEqual(new Set(['euler_ancestral', 'euler', 'ddim']));
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    let source: EditSource;
    if (c.continueFrom) {
      const prev = results.get(c.continueFrom);
      if (!prev) throw new Error(`run ${c.continueFrom} first`);
      source = { kind: 'latent', image: prev.image, latent: { data: prev.latent, height: c.latentShape[1], width: c.latentShape[2], geometry: c.geometry } };
    } else {
      source = { kind: 'pixels', image: await fixture(path.join('..', c.image)) };
    }
    const regions: Region[] = await Promise.all(
      c.regions.map(async (r) => ({ instruction: r.instruction, mask: r.mask ? maskFromImage(await fixture(r.mask)) : null })),
    );
    const n = c.latentShape.reduce((a, b) => a * b, 1);
    const result = await editImage(
      engine,
      source,
      regions,
      { steps: c.steps, sampler: c.sampler, textScale: c.textScale, imageScale: c.imageScale, locality: c.locality, spread: c.spread, strength: c.strength, progressiveShrink: c.progressiveShrink },
      { noise: () => injectedNoise(chunks(readF32(path.join(CASES, `${c.name}.noise.f32`)), n)) },
    );
    const { latent, image } = result.variations[0];
    results.set(c.name, { latent: latent.data, image });
    expect(result.geometry).toEqual(c.geometry);
    expect(result.conditioning).toBe(c.continueFrom ? 'latent' : 'pixels');
    expect(maxAbsDiff(latent.data, readF32(path.join(CASES, `${c.name}.expected.f32`)))).toBeLessThan(1e-3);
    const diff = imageDiff(image, await fixture(`${c.name}.expected.png`));
    expect(diff.max).toBeLessThanOrEqual(1);
    expect(diff.differing).toBeLessThanOrEqual(diff.values * 0.001);
  });
});
