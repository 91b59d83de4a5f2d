/**
 * Parity for the FLUX.2 [klein] family: the TypeScript engine against diffusers' own Flux2KleinPipeline and
 * Flux2KleinInpaintPipeline on tiny models built with diffusers' classes (tools/tiny-klein/make_parity_fixtures.py;
 * the ONNX folders come from tools/export/export_model.py). Same initial noise in the layout `latents=` takes
 * ([B, 128, H/16, W/16]); the final latent compared in the layout output_type="latent" returns ([B, 32, H/8, W/8]),
 * through the model's ReferenceLayout as the CLI's --init-noise / --latent-out use it.
 *
 * Cases: a base edit with CFG, a distilled edit, a two-edit chain by latent iteration (the second edit's reference
 * tokens are the first result's latent, nothing decoded), a masked edit (Blended-LD blending in flow space) against
 * the inpaint pipeline, an edit at strength 0.6 (from the noised source, the inpaint pipeline's step count), and an
 * edit with a second reference image of another size. Each within 1e-3 relative.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editImage, type EditSource, type StoredLatent } from '../../server/edit/edit-image';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine } from '../../server/engine/local';
import { injectedNoise } from '../../server/engine/rng';
import { decodeImage, maskFromImage, type RgbaImage } from '../../server/imaging/image';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'flux2');

interface Case {
  name: string;
  model: string;
  image: string;
  instruction: string;
  steps: number;
  textScale: number;
  strength: number;
  references: string[];
  mask: string | null;
  continueFrom: string | null;
  noiseShape: number[];
  latentShape: number[];
}

const cases: Case[] = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json') && f !== 'python-values.json')
  .map((f) => JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as Case)
  .sort((a, b) => (a.continueFrom ? 1 : 0) - (b.continueFrom ? 1 : 0) || a.name.localeCompare(b.name));

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** max |a - b| / max |b|: the error relative to the reference latent's scale. */
function relativeError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

const image = async (file: string): Promise<RgbaImage> => decodeImage(fs.readFileSync(path.join(FIXTURES, file)));

describe('FLUX.2 [klein]: TypeScript engine vs diffusers pipelines', () => {
  const models = new Map<string, ModelAdapter>();
  const results = new Map<string, { latent: StoredLatent; image: RgbaImage }>();
  const timer = { onnxMs: 0, calls: 0 };
  const errors: Record<string, number> = {};

  beforeAll(async () => {
    for (const name of ['tiny-klein-base', 'tiny-klein-distilled']) models.set(name, await loadModel(path.join(FIXTURES, name), { device: 'cpu', timer, log: () => {} }));
  });
  afterAll(async () => {
    for (const m of models.values()) await m.release();
    process.stdout.write(`klein parity, max relative latent error: ${JSON.stringify(errors)}\n`);
  });

  it('has the committed cases and loads both folders as the klein family', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(['base-edit', 'chain-2', 'distilled-edit', 'masked-edit', 'reference-edit', 'strength-edit']);
    expect(models.get('tiny-klein-base')!.info.family).toBe('FLUX.2 [klein]');
    expect(models.get('tiny-klein-distilled')!.info.scheduleSummary).toMatch(/distilled/);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const model = models.get(c.model)!;
    const references = await Promise.all(c.references.map(image));
    let source: EditSource;
    if (c.continueFrom) {
      const prev = results.get(c.continueFrom);
      if (!prev) throw new Error(`run ${c.continueFrom} first`);
      source = { kind: 'latent', image: prev.image, latent: prev.latent, references };
    } else {
      source = { kind: 'pixels', image: await image(c.image), references };
    }
    const mask = c.mask ? maskFromImage(await image(c.mask)) : null;
    const [, C, h, w] = c.noiseShape;
    const grid = { channels: C, height: h, width: w };
    const noise = model.reference.toNoise(readF32(path.join(FIXTURES, `${c.name}.noise.f32`)), grid);
    const result = await editImage(
      localEngine(model, timer),
      source,
      [{ instruction: c.instruction, mask }],
      { steps: c.steps, textScale: c.textScale, strength: c.strength, locality: 'blend', spread: 0, progressiveShrink: false },
      { noise: () => injectedNoise([noise]) },
      { workSide: 64 },
    );
    const v = result.variations[0];
    results.set(c.name, { latent: v.latent, image: v.image });
    expect(result.conditioning).toBe(c.continueFrom ? 'latent' : 'pixels');
    expect([v.latent.height, v.latent.width]).toEqual([h, w]);
    const latent = model.reference.fromLatent(v.latent.data, grid);
    const err = relativeError(latent, readF32(path.join(FIXTURES, `${c.name}.expected.f32`)));
    errors[c.name] = Number(err.toExponential(2));
    expect(err).toBeLessThan(1e-3);
  });

  it('batches variations (with reference tokens and CFG) without changing any one of them', async () => {
    const model = models.get('tiny-klein-base')!;
    const grid = { channels: 128, height: 4, width: 4 };
    const noise = readF32(path.join(FIXTURES, 'base-edit.noise.f32'));
    const other = readF32(path.join(FIXTURES, 'masked-edit.noise.f32'));
    const result = await editImage(
      localEngine(model, timer),
      { kind: 'pixels', image: await image('source.png'), references: [await image('reference.png')] },
      [{ instruction: 'make the circle blue', mask: null }],
      { steps: 6, textScale: 4, variations: 2 },
      { noise: (k) => injectedNoise([k === 0 ? noise : other]) },
      { workSide: 64 },
    );
    const alone = await editImage(
      localEngine(model, timer),
      { kind: 'pixels', image: await image('source.png'), references: [await image('reference.png')] },
      [{ instruction: 'make the circle blue', mask: null }],
      { steps: 6, textScale: 4 },
      { noise: () => injectedNoise([other]) },
      { workSide: 64 },
    );
    expect(result.variations).toHaveLength(2);
    const second = model.reference.fromLatent(result.variations[1].latent.data, grid);
    expect(relativeError(second, model.reference.fromLatent(alone.variations[0].latent.data, grid))).toBeLessThan(1e-5);
    expect(relativeError(model.reference.fromLatent(result.variations[0].latent.data, grid), second)).toBeGreaterThan(1e-2);
  });

  it("an edit without textScale gets the family's default, the pipeline's guidance_scale 4 (base-edit ran at 4)", async () => {
    const model = models.get('tiny-klein-base')!;
    expect(model.info.defaultTextScale).toBe(4);
    const grid = { channels: 128, height: 4, width: 4 };
    const noise = model.reference.toNoise(readF32(path.join(FIXTURES, 'base-edit.noise.f32')), grid);
    const run = async (options: { textScale?: number }) => {
      const r = await editImage(localEngine(model, timer), { kind: 'pixels', image: await image('source.png') }, [{ instruction: 'make the circle blue', mask: null }], { steps: 6, ...options }, { noise: () => injectedNoise([noise]) }, { workSide: 64 });
      return model.reference.fromLatent(r.variations[0].latent.data, grid);
    };
    const byDefault = await run({});
    expect(relativeError(byDefault, readF32(path.join(FIXTURES, 'base-edit.expected.f32')))).toBeLessThan(1e-3);
    // 7.5 (the old global default) would miss the fixture by more than the parity tolerance
    expect(relativeError(await run({ textScale: 7.5 }), byDefault)).toBeGreaterThan(3e-3);
  });
});
