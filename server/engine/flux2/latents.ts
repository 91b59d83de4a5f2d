/**
 * FLUX.2 latent layouts and the schedule, as pure functions (diffusers' pipeline_flux2_klein.py is the reference):
 *
 * - VAE latent [32, H/8, W/8] --2x2 patchify--> [128, H/16, W/16] --batch-norm--> the sampler's latent
 *   (normalised, patchified: what the exported vae_encoder returns and vae_decoder takes);
 * - pack: [C, h, w] -> tokens [h*w, C] (token k = row * w + col); unpack is its inverse;
 * - position ids, 4 axes (t, h, w, l): text (0, 0, 0, l), target (0, row, col, 0), reference i (10 + 10 i, row, col, 0);
 * - schedule: sigmas linspace(1, 1/N, N), shifted by mu = compute_empirical_mu(tokens, N), then 0.
 */
import type { LatentGrid } from '../family';
import { FLOW_MATCHING, type Schedule } from '../schedules';

const f32 = Math.fround;

function checkSize(what: string, data: Float32Array, expected: number): void {
  if (data.length !== expected) throw new RangeError(`${what} has ${data.length} values, expected ${expected}`);
}

/** [C, H, W] -> [4C, H/2, W/2]; out channel 4c + 2dy + dx at (i, j) = in[c, 2i + dy, 2j + dx] (_patchify_latents). */
export function patchify(z: Float32Array, channels: number, height: number, width: number): Float32Array {
  checkSize('the latent to patchify', z, channels * height * width);
  if (height % 2 || width % 2) throw new RangeError(`a ${width}x${height} latent cannot be cut into 2x2 patches`);
  const [h, w] = [height / 2, width / 2];
  const out = new Float32Array(z.length);
  for (let c = 0; c < channels; c++) {
    for (let d = 0; d < 4; d++) {
      const [dy, dx] = [d >> 1, d & 1];
      const plane = (4 * c + d) * h * w;
      for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[plane + i * w + j] = z[(c * height + 2 * i + dy) * width + 2 * j + dx];
    }
  }
  return out;
}

/** The inverse of patchify: [4C, h, w] -> [C, 2h, 2w] (_unpatchify_latents). */
export function unpatchify(z: Float32Array, channels4: number, h: number, w: number): Float32Array {
  checkSize('the latent to unpatchify', z, channels4 * h * w);
  if (channels4 % 4) throw new RangeError(`${channels4} channels do not come from 2x2 patches`);
  const [height, width] = [2 * h, 2 * w];
  const out = new Float32Array(z.length);
  for (let c = 0; c < channels4 / 4; c++) {
    for (let d = 0; d < 4; d++) {
      const [dy, dx] = [d >> 1, d & 1];
      const plane = (4 * c + d) * h * w;
      for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[(c * height + 2 * i + dy) * width + 2 * j + dx] = z[plane + i * w + j];
    }
  }
  return out;
}

/**
 * A fitted linear map from the VAE latent (one pixel's channels) to RGB in [-1, 1], for cheap previews: what the
 * model folder's vae_decoder/config.json holds as latent_rgb_factors ([C][3]) and latent_rgb_bias ([3])
 * (tools/tiny-klein/fit_preview.py fits them by least squares on the model's own VAE).
 */
export interface LatentRgbMap {
  factors: readonly (readonly [number, number, number])[];
  bias: readonly [number, number, number];
}

/** The VAE latent [C, h, w] through a LatentRgbMap: an image [3, h, w] (1/8 of the decoded size). */
export function latentToRgb(z: Float32Array, map: LatentRgbMap, h: number, w: number): Float32Array {
  const C = map.factors.length;
  checkSize('the latent to preview', z, C * h * w);
  const n = h * w;
  const out = new Float32Array(3 * n);
  for (let k = 0; k < 3; k++) {
    const plane = out.subarray(k * n, (k + 1) * n);
    plane.fill(map.bias[k]);
    for (let c = 0; c < C; c++) {
      const f = map.factors[c][k];
      for (let i = 0; i < n; i++) plane[i] += f * z[c * n + i];
    }
  }
  return out;
}

/** Per-channel batch-norm statistics of the patchified latent (the VAE's bn.running_mean, sqrt(running_var + eps)). */
export interface LatentNorm {
  mean: Float32Array;
  std: Float32Array;
}

/** (patchified - mean) / std per channel: the VAE latent in the transformer's space. */
export function normalise(z: Float32Array, norm: LatentNorm, plane: number): Float32Array {
  checkSize('the latent to normalise', z, norm.mean.length * plane);
  return z.map((v, k) => (v - norm.mean[Math.floor(k / plane)]) / norm.std[Math.floor(k / plane)]);
}

/** patchified = normalised * std + mean per channel. */
export function denormalise(z: Float32Array, norm: LatentNorm, plane: number): Float32Array {
  checkSize('the latent to denormalise', z, norm.mean.length * plane);
  return z.map((v, k) => v * norm.std[Math.floor(k / plane)] + norm.mean[Math.floor(k / plane)]);
}

/** [C, h, w] -> tokens [h*w, C] (_pack_latents for one image). */
export function pack(z: Float32Array, grid: LatentGrid): Float32Array {
  const { channels: C, height: h, width: w } = grid;
  checkSize('the latent to pack', z, C * h * w);
  const n = h * w;
  const out = new Float32Array(z.length);
  for (let c = 0; c < C; c++) for (let k = 0; k < n; k++) out[k * C + c] = z[c * n + k];
  return out;
}

/** tokens [h*w, C] -> [C, h, w]: the inverse of pack (the scatter by position ids for the target's own ids). */
export function unpack(tokens: Float32Array, grid: LatentGrid): Float32Array {
  const { channels: C, height: h, width: w } = grid;
  checkSize('the tokens to unpack', tokens, C * h * w);
  const n = h * w;
  const out = new Float32Array(tokens.length);
  for (let k = 0; k < n; k++) for (let c = 0; c < C; c++) out[c * n + k] = tokens[k * C + c];
  return out;
}

/** Text token positions [T, 4]: (0, 0, 0, l) (_prepare_text_ids). */
export function textIds(length: number): Int32Array {
  const ids = new Int32Array(length * 4);
  for (let l = 0; l < length; l++) ids[4 * l + 3] = l;
  return ids;
}

/** Image token positions [h*w, 4]: (t, row, col, 0), row-major (_prepare_latent_ids with t = 0, _prepare_image_ids). */
export function imageIds(h: number, w: number, t: number): Int32Array {
  const ids = new Int32Array(h * w * 4);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const k = 4 * (i * w + j);
      ids[k] = t;
      ids[k + 1] = i;
      ids[k + 2] = j;
    }
  }
  return ids;
}

/** The time coordinate of the i-th reference image (_prepare_image_ids, scale 10). */
export const referenceTime = (i: number): number => 10 + 10 * i;

/** diffusers' compute_empirical_mu: the resolution- and step-dependent shift, a fitted linear formula. */
export function empiricalMu(imageSeqLen: number, steps: number): number {
  const [a1, b1] = [8.73809524e-5, 1.89833333];
  const [a2, b2] = [0.00016927, 0.45666666];
  if (imageSeqLen > 4300) return a2 * imageSeqLen + b2;
  const m200 = a2 * imageSeqLen + b2;
  const m10 = a1 * imageSeqLen + b1;
  const a = (m200 - m10) / 190.0;
  const b = m200 - 200.0 * a;
  return a * steps + b;
}

/** What the model's FlowMatchEulerDiscreteScheduler config says about shifting. */
export interface FlowShift {
  numTrainTimesteps: number;
  /** resolution-dependent shift by mu (klein ships true); false = the fixed `shift` */
  dynamic: boolean;
  timeShiftType: 'exponential' | 'linear';
  shift: number;
}

/**
 * The klein pipeline's schedule for `steps` at `imageSeqLen` target tokens: FlowMatchEulerDiscreteScheduler's
 * set_timesteps(sigmas = linspace(1, 1/N, N), mu) with its float32 arithmetic, then the terminal 0.
 */
export function flowSchedule(cfg: FlowShift, steps: number, imageSeqLen: number): Schedule {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be an integer >= 1, got ${steps}`);
  const mu = empiricalMu(imageSeqLen, steps);
  // numpy (NEP 50) casts the Python floats exp(mu) and mu to float32 before combining them with the sigmas
  const [expMu, mu32] = [f32(Math.exp(mu)), f32(mu)];
  const sigmas = new Float64Array(steps + 1);
  const timesteps = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    // np.linspace(1, 1/N, N) in double, then astype(float32)
    const s = f32(steps === 1 ? 1 : 1 + (i * (1 / steps - 1)) / (steps - 1));
    let shifted: number;
    if (cfg.dynamic) {
      const odds = f32(f32(1 / s) - 1);
      shifted = cfg.timeShiftType === 'exponential' ? f32(expMu / f32(expMu + odds)) : f32(mu32 / f32(mu32 + odds));
    } else {
      shifted = f32(f32(cfg.shift * s) / f32(1 + f32((cfg.shift - 1) * s)));
    }
    sigmas[i] = shifted;
    timesteps[i] = f32(shifted * cfg.numTrainTimesteps);
  }
  return { sigmas, timesteps, initNoiseSigma: 1, finalScale: 1, process: FLOW_MATCHING };
}

/**
 * The first step run at `strength`, as Flux2KleinInpaintPipeline (SD3's get_timesteps): int(N - min(N * strength, N)).
 * Stable Diffusion's pipelines floor N * strength first instead, so 4 steps at 0.6 run 3 steps here and 2 there.
 */
export function flowStrengthStart(steps: number, strength: number): number {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${strength}`);
  return Math.trunc(Math.max(steps - Math.min(steps * strength, steps), 0));
}
