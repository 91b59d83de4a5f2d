/**
 * The adapters follow each model's declared interface (engine.md 0.5, 0.4): an int64 timestep is fed
 * truncated (numpy astype), a scalar timestep with dims [], and a VAE encoder that outputs 4-channel
 * 'latent_sample' is used as is, with a warning. Tiny synthetic graphs (test/fixtures/onnx-variants)
 * stand in for those components; they echo what they were fed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pix2PixSessions } from '../../server/engine/pix2pix/sessions';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');
const VARIANTS = path.join(ROOT, 'test', 'fixtures', 'onnx-variants');

async function withComponent(component: string, variant: string, log: (l: string) => void = () => {}): Promise<Pix2PixSessions> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-variant-'));
  fs.cpSync(MODEL, dir, { recursive: true });
  fs.copyFileSync(path.join(VARIANTS, variant), path.join(dir, component, 'model.onnx'));
  return Pix2PixSessions.load(dir, { device: 'cpu', timer: { onnxMs: 0, calls: 0 }, log });
}

const sample = new Float32Array(3 * 8 * 2 * 2);
const text = new Float32Array(3 * 77 * 64);

it.each([
  ['unet-timestep-int64.onnx', 988.909, 988], // truncated like numpy's astype(int64)
  ['unet-timestep-scalar.onnx', 988.909, Math.fround(988.909)],
])('%s receives the timestep in its declared dtype and shape', async (variant, t, expected) => {
  const model = await withComponent('unet', variant);
  const out = await model.unet(sample, [3, 8, 2, 2], t, text, [3, 77, 64]);
  expect(out).toHaveLength(3 * 4 * 2 * 2);
  for (const v of out) expect(v).toBe(expected);
  await model.release();
});

it('uses a 4-channel latent_sample encoder output as is, and warns that it may be sampled', async () => {
  const lines: string[] = [];
  const model = await withComponent('vae_encoder', 'vae-encoder-latent-sample.onnx', (l) => lines.push(l));
  expect(lines.some((l) => /outputs 'latent_sample'.*at random/.test(l))).toBe(true);
  const image = new Float32Array(3 * 16 * 24).fill(0.5);
  const latent = await model.encode(image, [1, 3, 16, 24]);
  expect(latent.dims).toEqual([1, 4, 2, 3]);
  expect(Array.from(latent.data.subarray(0, 18)).every((v) => Math.abs(v - 0.5) < 1e-6)).toBe(true); // 3 pooled channels
  expect(Array.from(latent.data.subarray(18)).every((v) => v === 0)).toBe(true); // the zero channel
  await model.release();
});
