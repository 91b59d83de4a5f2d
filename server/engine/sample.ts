/**
 * The sampling loop, k-diffusion style: the sampler owns it, the model is a denoiser (x, sigma) -> x0, and
 * nothing outside one call keeps state (a multistep sampler's history is local to the loop). Guidance and
 * blending are wrappers (denoiser.ts, blend.ts), not branches here.
 */
import type { Denoiser } from './denoiser';
import type { NoiseSource } from './rng';
import type { Earlier, Sampler } from './samplers';

export class EditCancelledError extends Error {
  constructor() {
    super('edit cancelled');
    this.name = 'EditCancelledError';
  }
}

export interface StepReport {
  /** position in `sigmas`: 0 = the first step run */
  index: number;
  /** the latent after the step */
  x: Float32Array;
  /** the prediction the step was taken from */
  denoised: Float32Array;
}

export interface SampleOptions {
  /** fresh noise for stochastic samplers: one draw of x's length per step */
  noise?: NoiseSource;
  /** checked before every step; aborting throws EditCancelledError */
  signal?: AbortSignal;
  onStep?: (report: StepReport) => void | Promise<void>;
}

/** Step x from sigmas[0] down to sigmas[last], one step per interval. Returns the final x (a new array). */
export async function sample(
  sampler: Sampler,
  denoise: Denoiser,
  x: Float32Array,
  sigmas: Float64Array,
  opts: SampleOptions = {},
): Promise<Float32Array> {
  if (sampler.stochastic && !opts.noise) throw new Error(`${sampler.name} draws fresh noise every step: pass a noise source`);
  const previous: Earlier[] = [];
  for (let index = 0; index < sigmas.length - 1; index++) {
    if (opts.signal?.aborted) throw new EditCancelledError();
    const sigma = sigmas[index];
    const denoised = await denoise(x, sigma);
    const z = sampler.stochastic ? opts.noise!.normal(x.length) : undefined;
    x = sampler.step({ x, denoised, sigma, sigmaNext: sigmas[index + 1], index, z, previous });
    if (sampler.history > 0) {
      previous.unshift({ denoised, sigma });
      previous.length = Math.min(previous.length, sampler.history);
    }
    await opts.onStep?.({ index, x, denoised });
  }
  return x;
}
