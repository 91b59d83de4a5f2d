/**
 * Behaviour on held-out shapes images through the TypeScript engine (20 Euler ancestral steps, guidance
 * 7.5 / 1.5): recolour, identity, masked recolour, and a two-region edit in one pass.
 *
 * The floors are the shipped tiny model's measured level with a small margin. Of the foundation issue's
 * targets (80 % recolour, 24 dB identity, 22 dB outside) this model reaches identity only: see
 * models/tiny-pix2pix/EVAL.md. That the TypeScript loop computes exactly what the reference loop does is
 * pinned separately, to 1e-3, by parity.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { editImage } from '../../server/edit/edit-image';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine, type TensorEngine } from '../../server/engine/local';
import { decodeImage } from '../../server/imaging/image';
import { loadHeldout, meanColour, mean, nearestColour, psnr, type HeldoutCase } from '../../bench/lib/heldout';
import { largeCase, sharpness } from '../../bench/lib/large';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');

describe('tiny model through the TypeScript engine (held-out cases)', () => {
  let model: ModelAdapter;
  let engine: TensorEngine;
  let palette: Record<string, [number, number, number]>;
  let cases: HeldoutCase[];
  beforeAll(async () => {
    const timer = { onnxMs: 0, calls: 0 };
    model = await loadModel(MODEL, { device: 'cpu', timer, log: () => {} });
    engine = localEngine(model, timer);
    ({ palette, cases } = await loadHeldout());
  });
  afterAll(async () => model.release());

  const run = (c: HeldoutCase, seed: number, mask: Float32Array | null = null) =>
    editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask }], { steps: 20, seed });

  it('recolours the named shape to the named colour in most cases (measured 66.7 %), changing the rest little', async () => {
    const recolour = cases.filter((c) => c.op === 'recolour');
    expect(recolour.length).toBeGreaterThanOrEqual(20);
    let hits = 0;
    const outside: number[] = [];
    for (const [k, c] of recolour.entries()) {
      const out = (await run(c, k)).variations[0].decoded;
      if (nearestColour(meanColour(out, c.interior), palette) === c.colour) hits++;
      outside.push(psnr(out, c.source, (i) => c.mask[i] === 0));
    }
    expect(hits / recolour.length).toBeGreaterThanOrEqual(0.6); // measured 16 / 24
    expect(mean(outside)).toBeGreaterThanOrEqual(14.5); // measured 16.1 dB before compositing
  });

  it('keeps the input for the empty instruction (measured 28.8 dB on these cases, 29.5 dB in EVAL.md)', async () => {
    const identity = cases.filter((c) => c.op === 'identity');
    const scores: number[] = [];
    for (const [k, c] of identity.entries()) scores.push(psnr((await run(c, k)).variations[0].decoded, c.source));
    expect(mean(scores)).toBeGreaterThanOrEqual(26);
  });

  it('a masked recolour takes the named colour in nearly every case (measured 95.8 %) and never changes a pixel outside the mask', async () => {
    const recolour = cases.filter((c) => c.op === 'recolour');
    let hits = 0;
    for (const [k, c] of recolour.entries()) {
      const out = (await run(c, k, c.mask)).variations[0].image;
      if (nearestColour(meanColour(out, c.interior), palette) === c.colour) hits++;
      for (let i = 0; i < c.mask.length; i++) {
        if (c.mask[i] === 0 && out.data[i * 4] !== c.source.data[i * 4]) throw new Error(`${c.id}: pixel ${i} outside the mask changed`);
      }
    }
    expect(hits / recolour.length).toBeGreaterThanOrEqual(0.85); // measured 23 / 24
  });

  it('keeps the texture of a layer 4x the native size inside a masked recolour (naive upsampling kept 0.1 %)', async () => {
    const recolour = cases.filter((c) => c.op === 'recolour').slice(0, 4);
    for (const [k, c] of recolour.entries()) {
      const big = largeCase(c, 4, k);
      const out = (await editImage(engine, { kind: 'pixels', image: big.source }, [{ instruction: c.instruction, mask: big.mask }], { steps: 20, seed: k })).variations[0].image;
      expect([c.id, sharpness(out, big.interior) / sharpness(big.source, big.interior) > 0.8]).toEqual([c.id, true]);
    }
  });

  it('edits two regions with their own instructions in one pass', async () => {
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
    // two colour pairs, both ways round, four seeds each: both regions right in most runs (measured 6 of 8)
    let bothRight = 0;
    for (const [circleColour, squareColour] of [['blue', 'green'], ['green', 'blue']]) {
      for (let seed = 0; seed < 4; seed++) {
        const result = await editImage(
          engine,
          { kind: 'pixels', image },
          [
            { instruction: `make the circle ${circleColour}`, mask: circle },
            { instruction: `make the square ${squareColour}`, mask: square },
          ],
          { steps: 20, seed },
        );
        const out = result.variations[0].image;
        if (nearestColour(meanColour(out, circleInterior), palette) === circleColour && nearestColour(meanColour(out, squareInterior), palette) === squareColour) bothRight++;
        for (let i = 0; i < circle.length; i++) {
          if (!circle[i] && !square[i] && out.data[i * 4 + 1] !== image.data[i * 4 + 1]) throw new Error(`pixel ${i} outside both regions changed`);
        }
      }
    }
    expect(bothRight).toBeGreaterThanOrEqual(5);
  });
});
