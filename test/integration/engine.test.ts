/**
 * The engine on the shipped tiny model (CPU): folder validation and the family registry, devices, fp16,
 * variations batching, exact preservation, previews, cancellation, and the worker threads keeping the event loop
 * free: the engine's (with no sharp in its bundle) and, for a large layer, the image workers that prepare and
 * composite it (server/edit/image-steps.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { editImage, type ImageProgress } from '../../server/edit/edit-image';
import { Engine, defaultWorkerFile } from '../../server/engine/engine';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine, type TensorEngine } from '../../server/engine/local';
import { Pix2PixAdapter } from '../../server/engine/pix2pix/adapter';
import { EditCancelledError } from '../../server/engine/sample';
import { createImage, decodeImage, maskFromImage, type RgbaImage } from '../../server/imaging/image';
import { builtBundle } from '../../server/bundles';
import { watchLoop } from '../../bench/lib/loop';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');
const FIXTURE = path.join(ROOT, 'test', 'fixtures');
const quiet = () => {};
const timer = () => ({ onnxMs: 0, calls: 0 });

async function fixture(name: string): Promise<RgbaImage> {
  return decodeImage(fs.readFileSync(path.join(FIXTURE, name)));
}

function copyModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-model-'));
  fs.cpSync(MODEL, dir, { recursive: true });
  return dir;
}

function psnr(a: RgbaImage, b: RgbaImage): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.data.length; i++) {
    if (i % 4 === 3) continue;
    se += (a.data[i] - b.data[i]) ** 2;
    n++;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / se);
}

describe('model folders', () => {
  it('reads the tiny model configs through the InstructPix2Pix family', async () => {
    const model = await loadModel(MODEL, { device: 'cpu', timer: timer(), log: quiet });
    expect(model).toBeInstanceOf(Pix2PixAdapter);
    expect(model.info).toMatchObject({
      family: 'InstructPix2Pix',
      pipeline: 'StableDiffusionInstructPix2PixPipeline',
      latentChannels: 4,
      latentFactor: 8,
      nativeSize: 128,
      sizeMultiple: 32,
      defaultSampler: 'euler_ancestral',
      samplers: ['euler_ancestral', 'euler', 'ddim'],
      precision: 'float32',
      provider: 'cpu',
    });
    expect(model.info.scalingFactor).toBeGreaterThan(0);
    const { config } = model as Pix2PixAdapter;
    expect(config).toMatchObject({ spacing: 'linspace', prediction: 'epsilon' });
    expect(config.latentToRgb).toHaveLength(3);
    await model.release();
  });

  it('picks the family by model_index.json _class_name; an unknown one names the supported families', async () => {
    const dir = copyModel();
    const index = path.join(dir, 'model_index.json');
    fs.writeFileSync(index, JSON.stringify({ ...JSON.parse(fs.readFileSync(index, 'utf8')), _class_name: 'ORTStableDiffusionInstructPix2PixPipeline' }));
    const ort = await loadModel(dir, { device: 'cpu', timer: timer(), log: quiet });
    expect(ort.info).toMatchObject({ family: 'InstructPix2Pix', pipeline: 'ORTStableDiffusionInstructPix2PixPipeline' });
    await ort.release();
    fs.writeFileSync(index, JSON.stringify({ _class_name: 'StableDiffusionXLPipeline' }));
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(
      /model_index\.json: _class_name 'StableDiffusionXLPipeline' is not a model family this engine runs; supported: InstructPix2Pix \(StableDiffusionInstructPix2PixPipeline, ORTStableDiffusionInstructPix2PixPipeline/,
    );
    fs.rmSync(index);
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(/has no model_index\.json.*supported: InstructPix2Pix/);
  });

  it('names the missing file of an incomplete folder', async () => {
    const dir = copyModel();
    fs.rmSync(path.join(dir, 'unet', 'model.onnx'));
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(/missing unet\/model\.onnx/);
  });

  it('rejects a UNet config that is not InstructPix2Pix (in_channels 4)', async () => {
    const dir = copyModel();
    const cfg = path.join(dir, 'unet', 'config.json');
    fs.writeFileSync(cfg, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfg, 'utf8')), in_channels: 4 }));
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(/unet\/config\.json: in_channels is 4.*takes 8/);
  });

  it('rejects a component whose tensors do not match the contract, naming file and tensor', async () => {
    const dir = copyModel();
    fs.copyFileSync(path.join(MODEL, 'vae_decoder', 'model.onnx'), path.join(dir, 'unet', 'model.onnx'));
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(/unet\/model\.onnx: expected input tensor 'sample', found \[latent_sample\]/);
  });

  it('reports malformed config JSON with the file name', async () => {
    const dir = copyModel();
    fs.writeFileSync(path.join(dir, 'vae_decoder', 'config.json'), '{"scaling_factor": -1}');
    await expect(loadModel(dir, { device: 'cpu', timer: timer(), log: quiet })).rejects.toThrow(/vae_decoder\/config\.json: field 'scaling_factor'/);
  });
});

describe('devices', () => {
  it('auto falls back to CPU with one neutral log line when CUDA cannot load', async () => {
    const lines: string[] = [];
    const model = await loadModel(MODEL, { device: 'auto', timer: timer(), log: (l) => lines.push(l) });
    if (model.info.provider === 'cuda') {
      expect(lines).toHaveLength(0); // a GPU host: nothing to fall back from
    } else {
      expect(lines).toEqual(['no usable CUDA GPU: running on the CPU (start with --device cuda to see why CUDA could not be loaded)']);
    }
    await model.release();
  });

  it('an explicit cuda request fails with install instructions when CUDA cannot load', async () => {
    const probe = await loadModel(MODEL, { device: 'auto', timer: timer(), log: quiet });
    const onGpu = probe.info.provider === 'cuda';
    await probe.release();
    if (onGpu) return;
    await expect(loadModel(MODEL, { device: 'cuda', timer: timer(), log: quiet })).rejects.toThrow(/--onnxruntime-node-install=cuda12/);
  });
});

describe('edits (in-process)', () => {
  let model: ModelAdapter;
  let engine: TensorEngine;
  let image: RgbaImage;
  let circleMask: Float32Array;
  beforeAll(async () => {
    const t = timer();
    model = await loadModel(MODEL, { device: 'cpu', timer: t, log: quiet });
    engine = localEngine(model, t);
    image = await fixture('shapes-128.png');
    circleMask = maskFromImage(await fixture('shapes-128-circle-mask.png'));
  });
  afterAll(async () => model.release());

  it('keeps every pixel outside the mask bit-identical (all locality modes)', async () => {
    for (const locality of ['guidance', 'blend', 'both'] as const) {
      const result = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: circleMask }], { locality, steps: 8, seed: 3 });
      const out = result.variations[0].image;
      let changedInside = 0;
      for (let i = 0; i < circleMask.length; i++) {
        const px = (img: RgbaImage) => Array.from(img.data.subarray(i * 4, i * 4 + 4));
        if (circleMask[i] === 0) expect(px(out)).toEqual(px(image));
        else if (px(out).join() !== px(image).join()) changedInside++;
      }
      expect(changedInside).toBeGreaterThan(0);
    }
  });

  it('is reproducible per seed, and batched variations equal the same seeds run one by one', async () => {
    const opts = { steps: 6, seed: 10 };
    const batched = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the square red', mask: null }], { ...opts, variations: 3 });
    expect(batched.variations.map((v) => v.seed)).toEqual([10, 11, 12]);
    for (const [k, v] of batched.variations.entries()) {
      const single = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the square red', mask: null }], { ...opts, seed: 10 + k });
      const a = single.variations[0].latent.data;
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - v.latent.data[i]));
      expect(maxDiff).toBeLessThan(1e-4);
    }
    expect(psnr(batched.variations[0].image, batched.variations[1].image)).toBeLessThan(60); // different seeds differ
    // chunking (maxBatch smaller than the variations' batch) gives the same results
    const chunked = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the square red', mask: null }], { ...opts, variations: 3 }, {}, { maxBatch: 3 });
    chunked.variations.forEach((v, k) => expect(Array.from(v.image.data)).toEqual(Array.from(batched.variations[k].image.data)));
  });

  it('continues from a stored latent without re-encoding, and re-encodes when the geometry differs', async () => {
    const first = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 6 });
    const v = first.variations[0];
    const next = await editImage(engine, { kind: 'latent', image: v.image, latent: v.latent }, [{ instruction: '', mask: null }], { steps: 6 });
    expect(next.conditioning).toBe('latent');
    const moved = { ...v.latent, geometry: { ...v.latent.geometry, workWidth: 64 } };
    const fallback = await editImage(engine, { kind: 'latent', image: v.image, latent: moved }, [{ instruction: '', mask: null }], { steps: 2 });
    expect(fallback.conditioning).toBe('pixels');
  });

  it('streams progress for every step, with previews every k steps', async () => {
    const events: ImageProgress[] = [];
    await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 10, previewEvery: 3 }, { onProgress: (p) => events.push(p) });
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(events.every((e) => e.totalSteps === 10)).toBe(true);
    const previews = events.filter((e) => e.preview);
    expect(previews.map((e) => e.step)).toEqual([3, 6, 9]);
    expect(previews[0].preview).toMatchObject({ width: 16, height: 16 }); // latent-resolution linear preview
  });

  it('runs fewer steps at lower strength (SDEdit start)', async () => {
    const events: ImageProgress[] = [];
    await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 20, strength: 0.5 }, { onProgress: (p) => events.push(p) });
    expect(events).toHaveLength(10);
  });

  it('cancels between steps', async () => {
    const controller = new AbortController();
    let seen = 0;
    const run = editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 20 }, {
      signal: controller.signal,
      onProgress: () => {
        if (++seen === 3) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(EditCancelledError);
    expect(seen).toBe(3);
  });

  it('rejects bad requests with messages that say what to fix', async () => {
    const src = { kind: 'pixels' as const, image };
    await expect(editImage(engine, src, [], {})).rejects.toThrow(/at least one region/);
    await expect(editImage(engine, src, [{ instruction: 'x', mask: new Float32Array(10) }], {})).rejects.toThrow(/mask has 10 values, the source is 128x128/);
    await expect(editImage(engine, src, [{ instruction: 'x', mask: new Float32Array(128 * 128) }], {})).rejects.toThrow(/the mask is empty/);
    await expect(editImage(engine, src, [{ instruction: 'x', mask: null }], { strength: 0 })).rejects.toThrow(/strength must be a number greater than 0 and at most 1, got 0/);
    await expect(editImage(engine, src, [{ instruction: 'x', mask: null }], { steps: 0 })).rejects.toThrow(/steps must be an integer between 1 and 100, got 0/);
    // fewer than one step to run used to "succeed" with a VAE round trip of the source: the options schema refuses it, naming the minimum
    await expect(editImage(engine, src, [{ instruction: 'x', mask: null }], { steps: 20, strength: 0.01 })).rejects.toThrow(
      /strength 0\.01 runs no denoising step at 20 steps: use a strength of at least 0\.05 \(1\/steps\), or more steps/,
    );
  });

  it('edits a large non-square layer in a context crop and keeps the rest identical', async () => {
    const big = await fixture('shapes-320x224.png');
    const mask = new Float32Array(320 * 224);
    for (let y = 60; y < 100; y++) for (let x = 70; x < 110; x++) mask[y * 320 + x] = 1;
    const result = await editImage(engine, { kind: 'pixels', image: big }, [{ instruction: 'make the circle green', mask }], { steps: 6 });
    expect(result.geometry.width).toBeLessThan(320);
    const out = result.variations[0].image;
    expect([out.width, out.height]).toEqual([320, 224]);
    for (let i = 0; i < mask.length; i++) if (!mask[i]) expect(out.data[i * 4]).toBe(big.data[i * 4]);
  });
});

describe('fp16 model', () => {
  it('runs the fp16 folder through Uint16Array tensors and agrees with fp32 closely', async () => {
    const m16 = await loadModel(`${MODEL}-fp16`, { device: 'cpu', timer: timer(), log: quiet });
    const m32 = await loadModel(MODEL, { device: 'cpu', timer: timer(), log: quiet });
    expect(m16.info.precision).toBe('float16');
    const image = await fixture('shapes-128.png');
    const req = [{ instruction: 'make the circle blue', mask: null }];
    const a = await editImage(localEngine(m16, timer()), { kind: 'pixels', image }, req, { steps: 10, sampler: 'euler' });
    const b = await editImage(localEngine(m32, timer()), { kind: 'pixels', image }, req, { steps: 10, sampler: 'euler' });
    expect(psnr(a.variations[0].image, b.variations[0].image)).toBeGreaterThan(30);
    await Promise.all([m16.release(), m32.release()]);
  });
});

describe('worker thread', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.start({ modelDir: MODEL, device: 'cpu', log: quiet });
  });
  afterAll(async () => engine.close());

  it('keeps the main event loop ticking during an edit', async () => {
    const image = await fixture('shapes-128.png');
    let ticks = 0;
    const interval = setInterval(() => ticks++, 5);
    const started = performance.now();
    const result = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 30, variations: 2 });
    const elapsed = performance.now() - started;
    clearInterval(interval);
    expect(result.variations).toHaveLength(2);
    const { timings } = result;
    expect(timings.onnxMs).toBeGreaterThan(0);
    expect(timings.onnxMs).toBeLessThanOrEqual(timings.totalMs);
    // at a 5 ms interval the loop should tick for most of the edit; a blocked loop would tick ~0 times
    expect(ticks).toBeGreaterThan((elapsed / 5) * 0.3);
  });

  it('keeps the main event loop ticking while a large layer is prepared and composited', async () => {
    // 2048 x 2048 with fine grain and a soft disc mask over a quarter of it: the crop is the whole layer, so
    // detail transfer, the paste mask and the compositing all run at full size (seconds of CPU on one thread)
    const side = 2048;
    const image = createImage(side, side);
    const mask = new Float32Array(side * side);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const i = y * side + x;
        const grain = (Math.imul(i, 0x85ebca6b) >>> 27) - 16;
        image.data[i * 4] = 120 + grain;
        image.data[i * 4 + 1] = (x >> 3) + grain;
        image.data[i * 4 + 2] = (y >> 3) + grain;
        image.data[i * 4 + 3] = 255;
        const dx = x - side / 2;
        const dy = y - side / 2;
        mask[i] = dx * dx + dy * dy < (side / 4) ** 2 ? 1 : 0;
      }
    }
    const watch = watchLoop(5);
    const started = performance.now();
    const result = await editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask }], { steps: 2 });
    const elapsed = performance.now() - started;
    const { ticks, longestGapMs } = watch.stop();
    expect(result.geometry).toMatchObject({ x: 0, y: 0, width: side, height: side, workWidth: 128, workHeight: 128 });
    const out = result.variations[0].image;
    expect([out.width, out.height]).toEqual([side, side]);
    expect(out.data[0]).toBe(image.data[0]); // outside the mask: the source's bytes
    // the loop ticked for most of the edit, and no single block held it for a tenth of it (on the main thread
    // the paste mask and the detail passes each block it for hundreds of milliseconds at this size)
    expect(ticks).toBeGreaterThan((elapsed / 5) * 0.5);
    expect(longestGapMs).toBeLessThan(elapsed / 10);
  });

  it('cancels a running edit from the main thread', async () => {
    const image = await fixture('shapes-128.png');
    const controller = new AbortController();
    const run = editImage(engine, { kind: 'pixels', image }, [{ instruction: 'make the circle blue', mask: null }], { steps: 100 }, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 2) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(EditCancelledError);
    // an edit whose signal aborted before it was posted never starts
    const aborted = AbortSignal.abort();
    let steps = 0;
    await expect(editImage(engine, { kind: 'pixels', image }, [{ instruction: '', mask: null }], { steps: 2 }, { signal: aborted, onProgress: () => steps++ })).rejects.toBeInstanceOf(EditCancelledError);
    expect(steps).toBe(0);
    // the worker is still healthy afterwards
    const result = await editImage(engine, { kind: 'pixels', image }, [{ instruction: '', mask: null }], { steps: 2 });
    expect(result.variations).toHaveLength(1);
  });

  it('bundles no image library: the worker takes and returns tensors', () => {
    const bundle = fs.readFileSync(defaultWorkerFile(), 'utf8');
    expect(bundle).toMatch(/require\("onnxruntime-node"\)/);
    expect(bundle).not.toMatch(/require\("sharp"\)/);
    // and the image workers no onnxruntime: each worker loads one native library
    const images = fs.readFileSync(builtBundle('image-worker.js'), 'utf8');
    expect(images).toMatch(/require\("sharp"\)/);
    expect(images).not.toMatch(/require\("onnxruntime-node"\)/);
  });
});
