/**
 * The image side of an edit on large layers: the time it takes and how long it blocks the main event loop.
 * Per size, a textured test card with a soft-edged masked recolour (the crop is the whole layer, the heaviest
 * case: detail transfer everywhere, the paste mask feathered over the whole layer). The decoded edit is the crop
 * at the working size recoloured inside the shape (a perfect recolour): what the image side does does not depend
 * on the model. Measured in the same run, interleaved:
 *
 * - before:  the passes one by one on the main thread (upsampleWithDetail, then compositeInto), as edits ran
 *            before the image workers;
 * - fused:   placeEdit's fused passes, on the main thread;
 * - workers: the fused passes in the image workers (what edits of layers larger than the working area do).
 *
 * Each mode's result must be the same bytes. Also: encoding the result to the canonical PNG and hashing it, as
 * the runner stores it (on the main thread). The stall is the longest gap between two ticks of a 2 ms timer on
 * the main thread, with the garbage of the window before collected first.
 *
 *   npm run bench:compose [-- --sizes 512,2048,4096 --runs 3]
 */
import { createHash } from 'node:crypto';
import { pasteMask } from '../server/edit/compose';
import { upsampleWithDetail } from '../server/edit/detail';
import { ImageWorkers, inProcessSteps, type ImageSteps } from '../server/edit/image-steps';
import { compositeInto, createImage, cropImage, type RgbaImage } from '../server/imaging/image';
import { canonicalPng } from '../server/imaging/upload';
import { benchArgs, median, round } from './lib/args';
import { watchLoop } from './lib/loop';

const WORK_SIDE = 128;

/** today's passes one by one on the main thread: the "before" */
const passes: ImageSteps = {
  ...inProcessSteps,
  place: async ({ source, masks, geometry: g, cropWork, work, reach, spread }) => {
    const crop = cropImage(source, g.x, g.y, g.width, g.height);
    return compositeInto(source, await upsampleWithDetail(work, crop, cropWork), g.x, g.y, pasteMask(masks, reach, spread, source.width, source.height, g));
  },
};

/** A deterministic test card: gradients, a disc, and +-12 levels of per-pixel grain (detail the working size loses). */
function testCard(side: number): { image: RgbaImage; mask: Float32Array } {
  const image = createImage(side, side);
  const mask = new Float32Array(side * side);
  const r = side / 4;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let h = Math.imul(y * side + x, 0x85ebca6b);
      h ^= h >>> 13;
      const grain = ((h >>> 0) % 25) - 12;
      const d = Math.hypot(x - side / 2, y - side / 2);
      const base = d < r ? [200, 60, 50] : [(x * 255) / side, (y * 255) / side, 180];
      image.data.set([...base.map((v) => Math.max(0, Math.min(255, Math.round(v + grain)))), 255], (y * side + x) * 4);
      mask[y * side + x] = Math.max(0, Math.min(1, (r * 1.2 - d) / (r * 0.1)));
    }
  }
  return { image, mask };
}

/** The crop at the working size with the disc recoloured blue: a perfect recolour at the working size. */
function recoloured(cropWork: RgbaImage): RgbaImage {
  const out = createImage(cropWork.width, cropWork.height, new Uint8Array(cropWork.data));
  const { width: w, height: h } = out;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (Math.hypot(x - w / 2, y - h / 2) >= w / 4) continue;
      const i = (y * w + x) * 4;
      const [red, green, blue] = [out.data[i], out.data[i + 1], out.data[i + 2]];
      out.data.set([blue / 4, green, red], i);
    }
  }
  return out;
}

interface Sample {
  composeMs: number;
  longestStallMs: number;
  ticks: number;
  sha256: string;
}

/**
 * A full collection before each measured window, so no window holds the collection of the garbage the one
 * before left (the main-thread modes leave hundreds of megabytes at 4096x4096). Needs node --expose-gc.
 */
function collectGarbage(): boolean {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc === 'function') gc();
  return typeof gc === 'function';
}

async function compose(steps: ImageSteps, image: RgbaImage, mask: Float32Array): Promise<Sample> {
  collectGarbage();
  const watch = watchLoop();
  const started = performance.now();
  const pixels = await steps.share({ source: image, masks: [mask] });
  const { geometry, cropWork } = await steps.prepare({ ...pixels, workSide: WORK_SIDE, sizeMultiple: 32 });
  const placed = await steps.place({ ...pixels, geometry, cropWork, work: recoloured(cropWork), reach: null, spread: 0 });
  const composeMs = performance.now() - started;
  const { ticks, longestGapMs } = watch.stop();
  return { composeMs, longestStallMs: longestGapMs, ticks, sha256: createHash('sha256').update(placed.data).digest('hex') };
}

async function store(image: RgbaImage): Promise<{ ms: number; longestStallMs: number }> {
  collectGarbage();
  const watch = watchLoop();
  const started = performance.now();
  createHash('sha256').update(await canonicalPng(image)).digest('hex');
  const ms = performance.now() - started;
  return { ms, longestStallMs: watch.stop().longestGapMs };
}

async function main(): Promise<void> {
  const args = benchArgs({ sizes: '512,2048,4096', runs: 3 });
  const sizes = args.sizes.split(',').map(Number);
  const workers = new ImageWorkers();
  const modes: [string, ImageSteps][] = [
    ['before', passes],
    ['fused', inProcessSteps],
    ['workers', workers],
  ];
  const results = [];
  for (const side of sizes) {
    const { image, mask } = testCard(side);
    await compose(workers, image, mask); // warm-up: the workers start, sharp and the loops compile
    const samples = new Map<string, Sample[]>(modes.map(([name]) => [name, []]));
    const stores: { ms: number; longestStallMs: number }[] = [];
    for (let r = 0; r < args.runs; r++) {
      for (const [name, steps] of modes) samples.get(name)!.push(await compose(steps, image, mask));
      stores.push(await store(image));
    }
    const hashes = new Set([...samples.values()].flat().map((s) => s.sha256));
    const summary = (s: Sample[]) => ({
      composeMsMedian: round(median(s.map((x) => x.composeMs)), 1),
      longestStallMsMedian: round(median(s.map((x) => x.longestStallMs)), 1),
      longestStallMsMax: round(Math.max(...s.map((x) => x.longestStallMs)), 1),
    });
    results.push({
      size: `${side}x${side}`,
      runs: args.runs,
      identical: hashes.size === 1,
      ...Object.fromEntries([...samples].map(([name, s]) => [name, summary(s)])),
      storePng: { msMedian: round(median(stores.map((s) => s.ms)), 1), longestStallMsMax: round(Math.max(...stores.map((s) => s.longestStallMs)), 1) },
    });
  }
  await workers.close();
  const report = { benchmark: 'compose', workSide: WORK_SIDE, workers: workers.size, collectsBetweenWindows: collectGarbage(), results };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
