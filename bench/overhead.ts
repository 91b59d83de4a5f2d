/**
 * Engine overhead: whole edit time vs time inside onnxruntime's session.run, measured in the same run,
 * 20 steps, at the model's native size and at 4x its area. Target: total / onnx <= 1.05.
 *
 *   npm run bench:overhead [-- --model DIR --runs 5 --device cpu]
 */
import * as path from 'node:path';
import { editImage } from '../server/edit/edit-image';
import { loadModel } from '../server/engine/families';
import { localEngine } from '../server/engine/local';
import type { Device } from '../server/engine/ort';
import { createImage } from '../server/imaging/image';
import { benchArgs, median, round } from './lib/args';

async function main(): Promise<void> {
  const args = benchArgs({ model: path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix'), runs: 5, steps: 20, device: 'cpu' });
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(args.model, { device: args.device as Device, timer, log: (l) => process.stderr.write(l + '\n') });
  const engine = localEngine(model, timer);
  const native = model.info.nativeSize;
  const results = [];
  for (const side of [native, native * 2]) {
    // a deterministic test card: smooth gradients plus a disc, so the VAE and UNet see ordinary content
    const image = createImage(side, side);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const i = (y * side + x) * 4;
        const inDisc = Math.hypot(x - side / 3, y - side / 3) < side / 6;
        image.data.set(inDisc ? [220, 40, 40, 255] : [(x * 255) / side, (y * 255) / side, 200, 255], i);
      }
    }
    const ratios: number[] = [];
    const totals: number[] = [];
    const onnx: number[] = [];
    for (let r = 0; r <= args.runs; r++) {
      const before = timer.onnxMs;
      const started = performance.now();
      await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: args.steps, seed: r, previewEvery: 5 }, { onProgress: () => {} }, { workSide: side });
      const total = performance.now() - started;
      if (r === 0) continue; // warm-up: first-run allocations and kernel selection
      totals.push(total);
      onnx.push(timer.onnxMs - before);
      ratios.push(total / (timer.onnxMs - before));
    }
    results.push({ size: `${side}x${side}`, latent: `${side / model.info.latentFactor}x${side / model.info.latentFactor}`, steps: args.steps, runs: args.runs, totalMsMedian: round(median(totals), 1), onnxMsMedian: round(median(onnx), 1), ratioMedian: round(median(ratios)), ratioMax: round(Math.max(...ratios)) });
  }
  await model.release();
  const target = 1.05;
  process.stdout.write(JSON.stringify({ benchmark: 'engine-overhead', model: model.info.name, provider: model.info.provider, target, pass: results.every((r) => r.ratioMedian <= target), results }, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
