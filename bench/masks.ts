/**
 * Masks from words vs drawn masks, on the held-out shapes-world cases (test/fixtures/heldout) through the
 * TypeScript engine: each recolour, background and remove case is edited twice with the same seed, once with
 * its drawn edit-region mask and once with the mask the segmenter derives from words naming the same region
 * ("the circle", "the background"), as the server does for a region's maskText. Success is EVAL.md's: the
 * named shape (or the background) takes the named colour; a removed shape's colour is gone from its area.
 * A phrase whose mask comes out empty counts as a failure (the server answers 400 instead of editing).
 *
 *   npm run bench:masks [-- --seeds 3 --steps 20 --segmenter models/tiny-clipseg --model models/tiny-pix2pix --soft]
 *
 * Prints one JSON object: per operation and overall, the success rate with drawn masks and with words, the
 * difference in points, and the derived masks' IoU with the drawn ones.
 */
import * as path from 'node:path';
import { editImage } from '../server/edit/edit-image';
import { loadModel } from '../server/engine/families';
import { localEngine } from '../server/engine/local';
import { Segmenter, maskIoU, maskIsEmpty } from '../server/engine/segmenter';
import type { RgbaImage } from '../server/imaging/image';
import { benchArgs, round } from './lib/args';
import { loadHeldout, meanColour, nearestColour, type HeldoutCase } from './lib/heldout';

const ROOT = path.resolve(__dirname, '..', '..');
type Palette = Record<string, [number, number, number]>;

/** The words a user would type for the case's edit region. */
export function phraseFor(c: HeldoutCase): string {
  if (c.op === 'background') return 'the background';
  if (!c.shape) throw new Error(`${c.id}: no shape named`);
  return `the ${c.shape}`;
}

/** EVAL.md's success for one edited image. */
function succeeded(c: HeldoutCase, out: RgbaImage, palette: Palette): boolean {
  const now = nearestColour(meanColour(out, c.interior), palette);
  if (c.op === 'remove') return now !== nearestColour(meanColour(c.source, c.interior), palette);
  return now === c.colour;
}

async function main(): Promise<void> {
  const args = benchArgs({ soft: false, seeds: 3, steps: 20, segmenter: path.join(ROOT, 'models', 'tiny-clipseg'), model: path.join(ROOT, 'models', 'tiny-pix2pix') });
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(args.model, { device: 'cpu', timer, log: () => {} });
  const engine = localEngine(model, timer);
  const segmenter = await Segmenter.load(args.segmenter, { device: 'cpu' });
  const { palette, cases } = await loadHeldout();
  const edits = cases.filter((c) => c.op !== 'identity');
  const started = performance.now();

  const tally: Record<string, { cases: number; drawn: number; words: number; emptyMasks: number; iou: number[] }> = {};
  for (const c of edits) {
    const t = (tally[c.op] ??= { cases: 0, drawn: 0, words: 0, emptyMasks: 0, iou: [] });
    // --soft: the segmenter's probabilities as blend weights, instead of its region (what the server uses)
    const derived = args.soft ? await segmenter.segment(c.source, phraseFor(c)) : await segmenter.region(c.source, phraseFor(c));
    const empty = maskIsEmpty(derived);
    t.iou.push(maskIoU(derived, c.mask));
    if (empty) t.emptyMasks++;
    for (let s = 0; s < args.seeds; s++) {
      const seed = 1000 * s + edits.indexOf(c);
      const run = (mask: Float32Array) => editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask }], { steps: args.steps, seed });
      t.cases++;
      if (succeeded(c, (await run(c.mask)).variations[0].image, palette)) t.drawn++;
      if (!empty && succeeded(c, (await run(derived)).variations[0].image, palette)) t.words++;
    }
  }

  const rate = (n: number, d: number) => round((100 * n) / d, 1);
  const perOp = Object.fromEntries(
    Object.entries(tally).map(([op, t]) => [
      op,
      {
        edits: t.cases,
        drawnMaskSuccessPct: rate(t.drawn, t.cases),
        maskTextSuccessPct: rate(t.words, t.cases),
        meanIou: round(t.iou.reduce((a, b) => a + b, 0) / t.iou.length),
        emptyMasks: t.emptyMasks,
      },
    ]),
  );
  const all = Object.values(tally);
  const total = all.reduce((n, t) => n + t.cases, 0);
  const drawn = rate(all.reduce((n, t) => n + t.drawn, 0), total);
  const words = rate(all.reduce((n, t) => n + t.words, 0), total);
  const ious = all.flatMap((t) => t.iou);
  process.stdout.write(
    JSON.stringify(
      {
        bench: 'masks-from-words',
        model: model.info.name,
        segmenter: segmenter.info.name,
        maskFromWords: args.soft ? 'probabilities (--soft)' : 'region (probability >= 0.5)',
        cases: edits.length,
        seedsPerCase: args.seeds,
        steps: args.steps,
        edits: total,
        drawnMaskSuccessPct: drawn,
        maskTextSuccessPct: words,
        differencePoints: round(words - drawn, 1),
        withinFivePoints: words >= drawn - 5,
        meanIou: round(ious.reduce((a, b) => a + b, 0) / ious.length),
        perOp,
        seconds: round((performance.now() - started) / 1000, 1),
      },
      null,
      1,
    ) + '\n',
  );
  await segmenter.release();
  await model.release();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
