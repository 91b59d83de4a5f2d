/**
 * One sampler step at a time, in sigma space (k-diffusion form; engine.md 1.8). Each step is a pure
 * elementwise map to a new Float32Array: arithmetic in double, one rounding to float32 per element.
 * `denoised` is the model's prediction of the clean latent x0 (for an eps model: x - sigma * eps).
 */

import type { SamplerName } from './schedules';

/** A step from noise level `sigma` to `sigmaNext`; `z` is fresh N(0, I) noise, used by ancestral samplers only. */
export type StepFn = (
  x: Float32Array,
  denoised: Float32Array,
  sigma: number,
  sigmaNext: number,
  z?: Float32Array,
) => Float32Array;

function checkSameLength(what: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) {
    throw new RangeError(`${what} has ${b.length} values, expected ${a.length} (the latent's size)`);
  }
}

function checkSigma(sigma: number): void {
  // the step divides by sigma; a step *from* 0 has no direction
  if (!(sigma > 0)) throw new RangeError(`sigma must be > 0 to step from, got ${sigma}`);
}

/** x0 prediction of an eps-predicting model: x - sigma * eps (k-diffusion DiscreteEpsDDPMDenoiser). */
export function denoisedFromEps(x: Float32Array, eps: Float32Array, sigma: number): Float32Array {
  checkSameLength('eps', x, eps);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - sigma * eps[i];
  return out;
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

/** Euler ancestral step: Euler down to sigma_down, then add z * sigma_up (z ~ N(0, I), same length as x). */
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

/** Whether the sampler consumes fresh noise each step (so the loop knows to draw it). */
export function usesNoise(name: SamplerName): boolean {
  return name === 'euler_ancestral';
}

function ancestral(x: Float32Array, denoised: Float32Array, sigma: number, sigmaNext: number, z?: Float32Array) {
  if (z !== undefined) return eulerAncestralStep(x, denoised, sigma, sigmaNext, z);
  // k-diffusion draws no noise for the last step (sigma_up = 0); diffusers draws and ignores it
  const { up, down } = ancestralSigmas(sigma, sigmaNext);
  if (up === 0) return eulerStep(x, denoised, sigma, down);
  throw new Error(`euler_ancestral needs noise z to step from sigma ${sigma} to ${sigmaNext} (see usesNoise)`);
}

/** The step function of a sampler, behind one signature; DDIM is the Euler step (its sigmas differ, not its step). */
export function stepFor(name: SamplerName): StepFn {
  switch (name) {
    case 'euler':
    case 'ddim':
      return eulerStep;
    case 'euler_ancestral':
      return ancestral;
    default:
      throw new RangeError(`unknown sampler '${name as string}'`);
  }
}

/** Forward process in sigma space: z0 + sigma * noise (SDEdit start, BLD background). */
export function addNoise(z0: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  checkSameLength('noise', z0, noise);
  const out = new Float32Array(z0.length);
  for (let i = 0; i < z0.length; i++) out[i] = z0[i] + sigma * noise[i];
  return out;
}
