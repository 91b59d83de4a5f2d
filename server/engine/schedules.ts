/**
 * Noise schedules (engine.md 1.5, 1.8, 1.9). Samplers work in sigma space; a family's schedule also names its
 * forward process (NoiseProcess): Stable Diffusion's "variance exploding" x = z0 + sigma * noise (the UNet sees
 * x / sqrt(sigma^2 + 1), denoiser.ts), or flow matching's (1 - sigma) z0 + sigma * noise.
 *
 * The training-side numbers mirror diffusers bit for bit where it matters (float32 betas and
 * alphas_cumprod as torch computes them, float32 sigma table, np.interp), so sigmas match the
 * Python schedulers to float32 precision.
 */

/** The diffusion process the model was trained with (diffusers scheduler_config.json fields). */
export interface TrainingSchedule {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'scaled_linear' | 'linear';
  /** Added to 'leading' timesteps only (diffusers `steps_offset`). */
  stepsOffset: number;
}

/** Stable Diffusion 1.x / InstructPix2Pix training schedule. */
export const SD_TRAINING_SCHEDULE: Readonly<TrainingSchedule> = Object.freeze({
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  stepsOffset: 1,
});

/** How inference timesteps are picked from the training timesteps (engine.md 1.8 table). */
export type Spacing = 'linspace' | 'leading' | 'trailing';

/** The diffusers schedulers whose inference timesteps and sigmas samplingSchedule reproduces. */
export type DiscreteScheduler = 'EulerAncestralDiscreteScheduler' | 'EulerDiscreteScheduler' | 'DDIMScheduler';

/**
 * The forward process a family's latents follow, which blending and the strength start need: the clean latent z
 * at noise level sigma with unit noise n.
 */
export interface NoiseProcess {
  readonly name: 'variance-exploding' | 'flow-matching';
  /** `z` may be shorter than `n` and divide its length: it is repeated (one source latent, several variations) */
  noised(z: Float32Array, n: Float32Array, sigma: number): Float32Array;
}

function noisedWith(a: (sigma: number) => number, b: (sigma: number) => number) {
  return (z: Float32Array, n: Float32Array, sigma: number): Float32Array => {
    if (z.length === 0 || n.length % z.length !== 0) {
      throw new RangeError(`noise has ${n.length} values, not a multiple of the latent's ${z.length}`);
    }
    const [ka, kb] = [a(sigma), b(sigma)];
    const out = new Float32Array(n.length);
    for (let i = 0; i < n.length; i++) out[i] = ka * z[i % z.length] + kb * n[i];
    return out;
  };
}

/** Stable Diffusion's process in sigma space (k-diffusion): x = z + sigma * n. */
export const VARIANCE_EXPLODING: NoiseProcess = Object.freeze({
  name: 'variance-exploding',
  noised: noisedWith(() => 1, (sigma) => sigma),
});

/** Rectified flow (FLUX, SD3): x = (1 - sigma) * z + sigma * n, sigma in [0, 1]. */
export const FLOW_MATCHING: NoiseProcess = Object.freeze({
  name: 'flow-matching',
  noised: noisedWith((sigma) => 1 - sigma, (sigma) => sigma),
});

/** Everything a sampling run needs, precomputed. */
export interface Schedule {
  /** [N+1] noise levels, descending: one per step, then the level the last step lands on */
  sigmas: Float64Array;
  /** [N] the network's time input at each step's sigma (fractional for Euler with 'linspace') */
  timesteps: Float64Array;
  /** pure-noise start: x_T = noise * initNoiseSigma */
  initNoiseSigma: number;
  /** the clean latent is the final x times this (1 unless the last sigma is not 0, as for DDIM) */
  finalScale: number;
  process: NoiseProcess;
}

const f32 = Math.fround;

function checkTraining(s: TrainingSchedule): void {
  if (!Number.isInteger(s.numTrainTimesteps) || s.numTrainTimesteps < 2) {
    throw new RangeError(`numTrainTimesteps must be an integer >= 2, got ${s.numTrainTimesteps}`);
  }
}

/** torch.linspace(start, end, n, dtype=float32): float32 step, two halves, one rounding per value (fma). */
function torchLinspaceF32(start: number, end: number, n: number): Float64Array {
  const a = f32(start);
  const b = f32(end);
  const step = f32((b - a) / (n - 1));
  const out = new Float64Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f32(a + step * i) : f32(b - step * (n - 1 - i));
  return out;
}

/** Cumulative product of alphas, index = training timestep; float32 values exactly as torch produces them. */
export function alphasCumprod(s: TrainingSchedule): Float64Array {
  checkTraining(s);
  const n = s.numTrainTimesteps;
  const scaled = s.betaSchedule === 'scaled_linear';
  const lin = scaled
    ? torchLinspaceF32(Math.sqrt(s.betaStart), Math.sqrt(s.betaEnd), n)
    : torchLinspaceF32(s.betaStart, s.betaEnd, n);
  const out = new Float64Array(n);
  // torch's CPU cumprod accumulates float32 inputs in double and rounds each stored value
  let acc = 1;
  for (let k = 0; k < n; k++) {
    const beta = scaled ? f32(lin[k] * lin[k]) : lin[k];
    acc *= f32(1 - beta);
    out[k] = f32(acc);
  }
  return out;
}

/** sigma = sqrt((1 - alphaBar) / alphaBar): the VE noise level of a VP noise level. */
export function sigmaFromAlphaCumprod(alphaBar: number): number {
  return Math.sqrt((1 - alphaBar) / alphaBar);
}

/** Sigma of every training timestep, float32 like diffusers' `((1 - ac) / ac) ** 0.5` on a float32 tensor. */
export function trainingSigmas(s: TrainingSchedule): Float64Array {
  const ac = alphasCumprod(s);
  const out = new Float64Array(ac.length);
  for (let k = 0; k < ac.length; k++) out[k] = f32(Math.sqrt(f32(f32(1 - ac[k]) / ac[k])));
  return out;
}

/** np.interp(x, arange(len(table)), table): linear interpolation, clamped at both ends. */
export function interpSigma(table: Float64Array, t: number): number {
  const last = table.length - 1;
  if (t <= 0) return table[0];
  if (t >= last) return table[last];
  const k = Math.floor(t);
  return table[k] + (t - k) * (table[k + 1] - table[k]);
}

/** numpy's round: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Inference timesteps, descending (engine.md 1.8). `integer` selects DDIM's int64 variant
 * (linspace rounded) over Euler's float32 one (linspace fractional).
 */
export function spacedTimesteps(s: TrainingSchedule, n: number, spacing: Spacing, integer: boolean): Float64Array {
  checkTraining(s);
  const T = s.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new RangeError(`number of steps must be an integer in [1, ${T}], got ${n}`);
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = n - 1 - i; // ascending index; output is reversed
    let t: number;
    if (spacing === 'linspace') {
      // np.linspace(0, T-1, n): j*step with the last value pinned to T-1
      const v = n === 1 ? 0 : j === n - 1 ? T - 1 : j * ((T - 1) / (n - 1));
      t = integer ? roundHalfEven(v) : f32(v);
    } else if (spacing === 'leading') {
      t = j * Math.floor(T / n) + s.stepsOffset;
    } else if (spacing === 'trailing') {
      // round(arange(T, 0, -T/n)) - 1, computed per index so there are exactly n values
      // (numpy's float arange yields n+1 for some n, e.g. 61)
      t = roundHalfEven(T - i * (T / n)) - 1;
    } else {
      throw new RangeError(`unknown timestep spacing '${spacing as string}'`);
    }
    out[i] = t;
  }
  return out;
}

/**
 * Timesteps, sigmas and start scale for `n` steps of a diffusers `scheduler` (engine.md 1.5, 1.8).
 *
 * Euler / Euler ancestral: sigmas interpolate the training sigma table at the (fractional) timesteps,
 * then end in 0. initNoiseSigma is sigma_0 for 'linspace'/'trailing' and sqrt(sigma_0^2 + 1) for 'leading'
 * (diffusers' quirk, kept for parity).
 *
 * DDIM (eta 0, set_alpha_to_one false): deterministic DDIM *is* Euler in sigma space. With
 * x_ve = x_vp * sqrt(1 + sigma^2) (= x_vp / sqrt(alphaBar)) and denoised = x_ve - sigma * eps,
 *   x_vp' = sqrt(a') x0 + sqrt(1 - a') eps   <=>   x_ve' = x0 + sigma' * eps = x_ve + eps * (sigma' - sigma),
 * so samplers.eulerStep serves both. Consequences for the pipeline:
 *  - start from noise * sqrt(1 + sigma_0^2) (diffusers starts from unit-variance VP noise);
 *  - the UNet input x_ve / sqrt(sigma^2 + 1) is exactly diffusers' unscaled VP sample;
 *  - the last step lands on alphas_cumprod[0] (sigma 0.029168 for SD), not on 0, so the clean latent is
 *    x / sqrt(1 + finalSigma^2) (`finalScale`: the VP sample diffusers returns; 1 when the final sigma is 0).
 * Step i goes from sigma(t_i) to sigma(t_{i+1}). diffusers instead always steps to t_i - T//N; the two agree
 * for 'leading' (and 'trailing' when N divides T) but not for 'linspace', where diffusers lands on one
 * noise level and evaluates the next step at another. We take the consistent form (the DDIM paper's).
 */
export function samplingSchedule(train: TrainingSchedule, scheduler: DiscreteScheduler, n: number, spacing: Spacing): Schedule {
  const T = train.numTrainTimesteps;
  const table = trainingSigmas(train);
  if (scheduler === 'DDIMScheduler') {
    const timesteps = spacedTimesteps(train, n, spacing, true);
    const sigmas = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      const t = timesteps[i];
      if (t < 0 || t > T - 1) {
        throw new RangeError(`DDIM timestep ${t} is outside [0, ${T - 1}] (${n} steps, '${spacing}' spacing)`);
      }
      sigmas[i] = table[t];
    }
    const prev = timesteps[n - 1] - Math.floor(T / n);
    sigmas[n] = table[prev >= 0 ? prev : 0]; // final_alpha_cumprod = alphas_cumprod[0]
    const initNoiseSigma = Math.sqrt(sigmas[0] * sigmas[0] + 1);
    return { timesteps, sigmas, initNoiseSigma, finalScale: 1 / Math.sqrt(1 + sigmas[n] * sigmas[n]), process: VARIANCE_EXPLODING };
  }
  if (scheduler !== 'EulerDiscreteScheduler' && scheduler !== 'EulerAncestralDiscreteScheduler') {
    throw new RangeError(`unknown scheduler '${scheduler as string}'`);
  }
  const timesteps = spacedTimesteps(train, n, spacing, false);
  const sigmas = new Float64Array(n + 1); // last stays 0
  for (let i = 0; i < n; i++) sigmas[i] = f32(interpSigma(table, timesteps[i]));
  const s0 = sigmas[0];
  return { timesteps, sigmas, initNoiseSigma: spacing === 'leading' ? Math.sqrt(s0 * s0 + 1) : s0, finalScale: 1, process: VARIANCE_EXPLODING };
}

/**
 * SDEdit / img2img strength (engine.md 1.9): index of the first step to run, so steps
 * [start, n) run (floor(n * strength) of them) from add_noise(z_src, noise, sigmas[start]).
 */
export function strengthStartIndex(n: number, strength: number): number {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${strength}`);
  return n - Math.min(Math.floor(n * strength), n);
}

/** The steps [start, N) of a schedule (SDEdit strength): same sigmas and timesteps from `start` on. */
export function fromStep(schedule: Schedule, start: number): Schedule {
  const n = schedule.timesteps.length;
  if (!Number.isInteger(start) || start < 0 || start >= n) {
    throw new RangeError(`a run must start at a step in [0, ${n}), got ${start}: raise the strength or the steps`);
  }
  return { ...schedule, sigmas: schedule.sigmas.subarray(start), timesteps: schedule.timesteps.subarray(start) };
}

/**
 * The network time of each sigma the schedule steps from, looked up exactly (diffusers feeds the UNet its own
 * timesteps, fractional for Euler 'linspace'; an interpolated inverse would be off by ~1e-5).
 */
export function timestepLookup(schedule: Schedule): (sigma: number) => number {
  const bySigma = new Map<number, number>();
  schedule.timesteps.forEach((t, i) => bySigma.set(schedule.sigmas[i], t));
  return (sigma) => {
    const t = bySigma.get(sigma);
    if (t === undefined) throw new RangeError(`sigma ${sigma} is not a step of this schedule`);
    return t;
  };
}
