/**
 * Blended Latent Diffusion (engine.md section 5) as a wrapper around a sampler's step: after each step, outside
 * the mask the latent is replaced by the source noised to the level the step landed on, and after the last step
 * by the clean source. This is BLD's Algorithm 1 with diffusers' inpaint convention (the initial noise reused,
 * not a fresh draw per step), which is also what diffusers' FLUX.2 klein inpaint pipeline does.
 *
 * It wraps the step, not the denoiser, because it projects the sampler's state: no change to the x0 prediction
 * can put the state where Algorithm 1 does once an ancestral step adds fresh noise of its own.
 */
import { maskForStep } from './masks';
import type { Sampler, StepInput } from './samplers';
import type { Schedule } from './schedules';

export interface BlendPlan {
  /** latent-grid masks [h * w] (1 = may change), largest first: progressive shrinking (masks.maskForStep) */
  masks: readonly Float32Array[];
  /** the clean source latent [C * h * w] */
  source: Float32Array;
  /** the initial unit noise of every latent in the batch [B * C * h * w] */
  noise: Float32Array;
  /** the schedule being sampled: its sigmas, forward process and final scale */
  schedule: Schedule;
}

export function withBlend(sampler: Sampler, plan: BlendPlan): Sampler {
  const { masks, source, noise, schedule } = plan;
  const total = schedule.sigmas.length - 1;
  const plane = masks[0].length;
  if (source.length % plane !== 0 || noise.length % source.length !== 0) {
    throw new RangeError(`blend sizes disagree: masks of ${plane}, source of ${source.length}, noise of ${noise.length}`);
  }
  // the clean source, in the space of the sampler's final x (whose clean latent is x * finalScale)
  const cleanEnd = Float32Array.from(source, (v) => v / schedule.finalScale);
  return {
    ...sampler,
    step(s: StepInput): Float32Array {
      const x = sampler.step(s);
      const m = maskForStep(masks, s.index, total);
      const background = s.index === total - 1 ? null : schedule.process.noised(source, noise, s.sigmaNext);
      for (let k = 0; k < x.length; k++) {
        const w = m[k % plane];
        x[k] = w * x[k] + (1 - w) * (background ? background[k] : cleanEnd[k % cleanEnd.length]);
      }
      return x;
    },
  };
}
