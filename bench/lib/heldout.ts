/**
 * Held-out shapes-world cases (test/fixtures/heldout, written by tools/tiny-model/make_heldout_fixtures.py)
 * and the measures EVAL.md uses: PSNR (optionally over a region) and nearest palette colour.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { decodeImage, maskFromImage, type RgbaImage } from '../../server/imaging/image';

export const HELDOUT_DIR = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'heldout');

const casesSchema = z.object({
  seed: z.number(),
  palette: z.record(z.string(), z.tuple([z.number(), z.number(), z.number()])),
  cases: z.array(
    z.object({
      id: z.string(),
      op: z.enum(['recolour', 'background', 'remove', 'identity']),
      instruction: z.string(),
      shape: z.string().nullable(),
      colour: z.string().nullable(),
    }),
  ),
});

export interface HeldoutCase {
  id: string;
  op: 'recolour' | 'background' | 'remove' | 'identity';
  instruction: string;
  /** the shape the instruction names (null for background and identity cases) */
  shape: string | null;
  colour: string | null;
  source: RgbaImage;
  /** edit region, soft, [H*W] */
  mask: Float32Array;
  /** fully covered pixels of the named shape (or the background), [H*W] of 0/1 */
  interior: Float32Array;
  /** the intended result (shapes_world's target) */
  target: RgbaImage;
}

export async function loadHeldout(dir = HELDOUT_DIR): Promise<{ palette: Record<string, [number, number, number]>; cases: HeldoutCase[] }> {
  const meta = casesSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')));
  const read = async (name: string) => decodeImage(fs.readFileSync(path.join(dir, name)));
  const cases = await Promise.all(
    meta.cases.map(async (c) => ({
      id: c.id,
      op: c.op,
      instruction: c.instruction,
      shape: c.shape,
      colour: c.colour,
      source: await read(`${c.id}-source.png`),
      mask: maskFromImage(await read(`${c.id}-mask.png`)),
      interior: maskFromImage(await read(`${c.id}-interior.png`)),
      target: await read(`${c.id}-target.png`),
    })),
  );
  return { palette: meta.palette, cases };
}

/** PSNR over RGB, restricted to pixels where `where` > 0.5 when given (Infinity when identical). */
export function psnr(a: RgbaImage, b: RgbaImage, where?: Float32Array | ((i: number) => boolean)): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    if (where && !(typeof where === 'function' ? where(i) : where[i] > 0.5)) continue;
    for (let c = 0; c < 3; c++) se += (a.data[i * 4 + c] - b.data[i * 4 + c]) ** 2;
    n += 3;
  }
  if (n === 0) return Infinity;
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / se);
}

/** How many pixels where `where(i)` holds differ between two images in any of R, G, B (0: bit-identical there). */
export function changedPixels(a: RgbaImage, b: RgbaImage, where: (i: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    if (where(i) && [0, 1, 2].some((c) => a.data[i * 4 + c] !== b.data[i * 4 + c])) n++;
  }
  return n;
}

export function meanColour(img: RgbaImage, where: Float32Array): [number, number, number] {
  const sum = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    if (where[i] <= 0.5) continue;
    for (let c = 0; c < 3; c++) sum[c] += img.data[i * 4 + c];
    n++;
  }
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}

export function nearestColour(rgb: [number, number, number], palette: Record<string, [number, number, number]>): string {
  let best = '';
  let bestD = Infinity;
  for (const [name, p] of Object.entries(palette)) {
    const d = (rgb[0] - p[0]) ** 2 + (rgb[1] - p[1]) ** 2 + (rgb[2] - p[2]) ** 2;
    if (d < bestD) [best, bestD] = [name, d];
  }
  return best;
}

export function mean(values: number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.reduce((a, b) => a + b, 0) / Math.max(1, finite.length);
}
