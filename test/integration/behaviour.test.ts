/**
 * Behaviour on held-out shapes images through the TypeScript engine: the tiny model's EVAL targets
 * (global edits, 20 Euler ancestral steps, guidance 7.5 / 1.5), and a two-region edit in one pass.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pix2PixModel } from '../../server/engine/models';
import { edit } from '../../server/engine/pipeline';
import { decodeImage } from '../../server/imaging/image';
import { loadHeldout, meanColour, mean, nearestColour, psnr, type HeldoutCase } from '../../bench/lib/heldout';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');

describe('tiny model through the TypeScript engine (held-out cases)', () => {
  let model: Pix2PixModel;
  let palette: Record<string, [number, number, number]>;
  let cases: HeldoutCase[];
  beforeAll(async () => {
    model = await Pix2PixModel.load(MODEL, { device: 'cpu', timer: { onnxMs: 0, calls: 0 }, log: () => {} });
    ({ palette, cases } = await loadHeldout());
  });
  afterAll(async () => model.release());

  const run = (c: HeldoutCase, seed: number, mask: Float32Array | null = null) =>
    edit(model, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask }], { steps: 20, seed });

  it('recolours the named shape to the named colour in >= 80% of cases, keeping the rest (PSNR >= 22 dB)', async () => {
    const recolour = cases.filter((c) => c.op === 'recolour');
    expect(recolour.length).toBeGreaterThanOrEqual(20);
    let hits = 0;
    const outside: number[] = [];
    for (const [k, c] of recolour.entries()) {
      const out = (await run(c, k)).variations[0].decoded;
      if (nearestColour(meanColour(out, c.interior), palette) === c.colour) hits++;
      outside.push(psnr(out, c.source, (i) => c.mask[i] === 0));
    }
    expect(hits / recolour.length).toBeGreaterThanOrEqual(0.8);
    expect(mean(outside)).toBeGreaterThanOrEqual(22);
  });

  it('reproduces the input for the empty instruction (PSNR >= 24 dB)', async () => {
    const identity = cases.filter((c) => c.op === 'identity');
    const scores: number[] = [];
    for (const [k, c] of identity.entries()) scores.push(psnr((await run(c, k)).variations[0].decoded, c.source));
    expect(mean(scores)).toBeGreaterThanOrEqual(24);
  });

  it('a masked recolour changes the shape and nothing outside the mask', async () => {
    const c = cases.find((x) => x.op === 'recolour')!;
    const out = (await run(c, 1, c.mask)).variations[0].image;
    expect(nearestColour(meanColour(out, c.interior), palette)).toBe(c.colour);
    for (let i = 0; i < c.mask.length; i++) {
      if (c.mask[i] === 0) expect(out.data.subarray(i * 4, i * 4 + 4)).toEqual(c.source.data.subarray(i * 4, i * 4 + 4));
    }
  });

  it('edits two regions with their own instructions in one pass (subject and background)', async () => {
    // test/fixtures/shapes-128.png: white background; red circle at (40,44) r 18; yellow square at (92,84) half-side 14.45
    const image = await decodeImage(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-128.png')));
    const region = (inside: (x: number, y: number) => boolean) => {
      const m = new Float32Array(128 * 128);
      for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) m[y * 128 + x] = inside(x + 0.5, y + 0.5) ? 1 : 0;
      return m;
    };
    const circle = region((x, y) => Math.hypot(x - 40, y - 44) <= 19.5);
    const circleInterior = region((x, y) => Math.hypot(x - 40, y - 44) <= 16);
    const square = region((x, y) => Math.abs(x - 92) <= 15.5 && Math.abs(y - 84) <= 15.5);
    const squareInterior = region((x, y) => Math.abs(x - 92) <= 13 && Math.abs(y - 84) <= 13);
    const result = await edit(
      model,
      { kind: 'pixels', image },
      [
        { instruction: 'make the circle blue', mask: circle },
        { instruction: 'make the square purple', mask: square },
      ],
      { steps: 20, seed: 4 },
    );
    const out = result.variations[0].image;
    expect(nearestColour(meanColour(out, circleInterior), palette)).toBe('blue');
    expect(nearestColour(meanColour(out, squareInterior), palette)).toBe('purple');
    for (let i = 0; i < circle.length; i++) {
      if (!circle[i] && !square[i]) expect(out.data.subarray(i * 4, i * 4 + 4)).toEqual(image.data.subarray(i * 4, i * 4 + 4));
    }
  });
});
