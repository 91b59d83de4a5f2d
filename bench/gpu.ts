/**
 * GPU benchmark: per-step denoising-network time (the UNet, or a DiT's transformer) and whole-edit time on a CUDA host.
 *
 *   npm run bench:gpu -- --device cuda --model /models/instruct-pix2pix-onnx --size 512 --steps 20
 *   npm run bench:gpu -- --device cuda --model /models/flux2-klein-4b --size 1024 --steps 4      # FLUX.2 klein
 *
 * The first edit is a warm-up (the CUDA EP searches conv algorithms exhaustively per new shape). Where the
 * CUDA provider cannot load, it prints {"ran": false, "reason": ...} and exits with code 2.
 */
import * as path from 'node:path';
import { editImage } from '../server/edit/edit-image';
import { loadModel } from '../server/engine/families';
import type { ModelAdapter } from '../server/engine/family';
import { localEngine } from '../server/engine/local';
import type { Device, RunTimer } from '../server/engine/ort';
import { createImage } from '../server/imaging/image';
import { benchArgs, median, round } from './lib/args';

async function main(): Promise<void> {
  const args = benchArgs({ model: path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix'), device: 'cuda', size: 0, steps: 20, runs: 3, variations: 1 });
  const timer: RunTimer = { onnxMs: 0, calls: 0, perFile: {} };
  let model: ModelAdapter;
  try {
    model = await loadModel(args.model, { device: args.device as Device, timer, log: (l) => process.stderr.write(l + '\n') });
  } catch (err) {
    process.stdout.write(JSON.stringify({ benchmark: 'gpu', ran: false, device: args.device, reason: (err as Error).message }, null, 2) + '\n');
    process.exit(2);
  }
  const side = args.size || model.info.nativeSize;
  const image = createImage(side, side);
  for (let i = 0; i < side * side; i++) image.data.set([(i % side) % 256, Math.floor(i / side) % 256, 128, 255], i * 4);
  // the family's denoising network: InstructPix2Pix's UNet, klein's transformer
  const network = 'unet' in model.describe() ? 'unet' : 'transformer';
  const unetFile = path.join(args.model, network, 'model.onnx');
  const networkBatch = model.guidance(1, { textScale: 7.5, imageScale: 1.5 }).slots.length * args.variations;
  const edits: number[] = [];
  const unetStep: number[] = [];
  for (let r = 0; r <= args.runs; r++) {
    const before = { ...(timer.perFile![unetFile] ?? { ms: 0, calls: 0 }) };
    const started = performance.now();
    await editImage(localEngine(model, timer), { kind: 'pixels', image }, [{ instruction: 'make it snowy', mask: null }], { steps: args.steps, seed: r, variations: args.variations, previewEvery: 0 });
    const total = performance.now() - started;
    const after = timer.perFile![unetFile];
    if (r === 0) continue; // warm-up
    edits.push(total);
    unetStep.push((after.ms - before.ms) / (after.calls - before.calls));
  }
  await model.release();
  process.stdout.write(
    JSON.stringify(
      {
        benchmark: 'gpu',
        ran: true,
        provider: model.info.provider,
        requestedDevice: args.device,
        model: model.info.name,
        family: model.info.family,
        network,
        precision: model.info.precision,
        size: `${side}x${side}`,
        steps: args.steps,
        variations: args.variations,
        networkBatch,
        runs: args.runs,
        networkStepMsMedian: round(median(unetStep), 2),
        editMsMedian: round(median(edits), 1),
        note: model.info.provider === 'cuda' ? undefined : 'ran on CPU: CUDA was not available',
      },
      null,
      2,
    ) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
