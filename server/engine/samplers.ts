/**
 * Samplers in sigma space (k-diffusion form; engine.md 1.8): the step maths as small pure functions, and one
 * descriptor per sampler that says everything the loop (sample.ts) and the schedules need to know about it.
 * Each step is an elementwise map to a new Float32Array: arithmetic in double, one rounding to float32 per
 * element. `denoised` is the model's prediction of the clean latent x0 (denoiser.ts).
 *
 * The Euler step is also the flow-matching Euler step: with x = (1 - sigma) x0 + sigma eps, the velocity
 * eps - x0 equals (x - x0) / sigma, so `x + (x - x0) / sigma * (sigmaNext - sigma)` is `x + (sigmaNext - sigma) v`.
 */
import type { SAMPLERS as SAMPLER_NAMES } from '../../shared/protocol';
import type { DiscreteScheduler, Spacing } from './schedules';

export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** An earlier step's prediction, kept by the loop for multistep samplers. */
export interface Earlier {
  denoised: Float32Array;
  sigma: number;
}

/** What one step sees. */
export interface StepInput {
  x: Float32Array;
  denoised: Float32Array;
  sigma: number;
  sigmaNext: number;
  /** position in the sigmas being sampled: 0 = the first step run */
  index: number;
  /** fresh N(0, I) noise of x's length, for stochastic samplers only */
  z?: Float32Array;
  /** earlier predictions, newest first, at most `history` of them */
  previous: readonly Earlier[];
}

export interface Sampler {
  readonly name: SamplerName;
  /** the diffusers scheduler whose timesteps and sigmas this sampler runs on (schedules.samplingSchedule) */
  readonly scheduler: DiscreteScheduler;
  /** that scheduler's usual timestep spacing for Stable Diffusion models */
  readonly defaultSpacing: Spacing;
  /** draws fresh noise every step (ancestral samplers): the loop passes `z` */
  readonly stochastic: boolean;
  /** earlier predictions the step reads (multistep samplers); the loop keeps them, local to one run */
  readonly history: number;
  step(s: StepInput): Float32Array;
}

function checkSameLength(what: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) {
    throw new RangeError(`${what} has ${b.length} values, expected ${a.length} (the latent's size)`);
  }
}

function checkSigma(sigma: number): void {
  // the step divides by sigma; a step *from* 0 has no direction
  if (!(sigma > 0)) throw new RangeError(`sigma must be > 0 to step from, got ${sigma}`);
}

/**
 * Euler step (s_churn 0): x + d * (sigmaNext - sigma) with d = (x - denoised) / sigma (= eps).
 * Also deterministic DDIM (eta 0): in sigma space DDIM's x_prev = sqrt(a') x0 + sqrt(1 - a') eps becomes
 * x' = x0 + sigma' * eps, which is exactly this step (see schedules.samplingSchedule).
 */
export function eulerStep(x: Float32Array, denoised: Float32Array, sigma: number, sigmaNext: number): Float32Array {
  checkSameLength('denoised', x, denoised);
  checkSigma(sigma);
  const dt = sigmaNext - sigma;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + ((x[i] - denoised[i]) / sigma) * dt;
  return out;
}

/**
 * Split a step into a deterministic part down to `down` and fresh noise of std `up`, with
 * down^2 + up^2 = sigmaNext^2 (k-diffusion get_ancestral_step; eta 1 = full ancestral sampling).
 */
export function ancestralSigmas(sigma: number, sigmaNext: number, eta = 1): { up: number; down: number } {
  if (eta === 0) return { up: 0, down: sigmaNext };
  const up = Math.min(
    sigmaNext,
    eta * Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma)),
  );
  return { up, down: Math.sqrt(sigmaNext * sigmaNext - up * up) };
}

/**
 * Euler ancestral step: Euler down to sigma_down, then add z * sigma_up (z ~ N(0, I), same length as x).
 * On the last step sigma_up is 0 and z has no effect (diffusers still draws it, and so does the loop).
 */
export function eulerAncestralStep(
  x: Float32Array,
  denoised: Float32Array,
  sigma: number,
  sigmaNext: number,
  z: Float32Array,
): Float32Array {
  checkSameLength('denoised', x, denoised);
  checkSameLength('noise z', x, z);
  checkSigma(sigma);
  const { up, down } = ancestralSigmas(sigma, sigmaNext);
  const dt = down - sigma;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + ((x[i] - denoised[i]) / sigma) * dt + z[i] * up;
  return out;
}

const euler = (s: StepInput) => eulerStep(s.x, s.denoised, s.sigma, s.sigmaNext);

/** Every sampler the engine offers, by the name requests use. */
export const SAMPLERS: Readonly<Record<SamplerName, Sampler>> = Object.freeze({
  euler_ancestral: {
    name: 'euler_ancestral',
    scheduler: 'EulerAncestralDiscreteScheduler',
    defaultSpacing: 'linspace',
    stochastic: true,
    history: 0,
    step: (s: StepInput) => {
      if (!s.z) throw new Error('euler_ancestral steps need fresh noise z (the loop passes it to stochastic samplers)');
      return eulerAncestralStep(s.x, s.denoised, s.sigma, s.sigmaNext, s.z);
    },
  },
  euler: { name: 'euler', scheduler: 'EulerDiscreteScheduler', defaultSpacing: 'linspace', stochastic: false, history: 0, step: euler },
  // DDIM is the Euler step on DDIM's own timesteps and sigmas (schedules.samplingSchedule)
  ddim: { name: 'ddim', scheduler: 'DDIMScheduler', defaultSpacing: 'leading', stochastic: false, history: 0, step: euler },
});

/** The sampler a model's scheduler config names (diffusers `_class_name`), or null for other schedulers. */
export function samplerForScheduler(className: string | undefined): Sampler | null {
  return Object.values(SAMPLERS).find((s) => s.scheduler === className) ?? null;
}
