import { withBlend } from '../../../server/engine/blend';
import { SAMPLERS, type StepInput } from '../../../server/engine/samplers';
import { VARIANCE_EXPLODING, type Schedule } from '../../../server/engine/schedules';

const f32 = (...v: number[]) => Float32Array.from(v);

/** A 2-step schedule on a 1x2 latent grid, one channel. */
function schedule(finalScale = 1): Schedule {
  return { sigmas: Float64Array.of(4, 2, finalScale === 1 ? 0 : 0.5), timesteps: Float64Array.of(900, 400), initNoiseSigma: 4, finalScale, process: VARIANCE_EXPLODING };
}
const step = (index: number, sigma: number, sigmaNext: number): StepInput => ({ x: f32(8, 8, 8, 8), denoised: f32(0, 0, 0, 0), sigma, sigmaNext, index, previous: [] });

describe('withBlend (Blended Latent Diffusion after each step)', () => {
  // two latents in the batch: source [1, 2] repeated, initial noise per latent
  const plan = { masks: [f32(1, 0)], source: f32(1, 2), noise: f32(0.5, -1, 2, 3), schedule: schedule() };

  test('inside the mask the step, outside the source noised to the next sigma with the initial noise', () => {
    const x = withBlend(SAMPLERS.euler, plan).step(step(0, 4, 2)); // Euler: 8 + 8/4 * (2 - 4) = 4
    expect(Array.from(x)).toEqual([4, 2 + 2 * -1, 4, 2 + 2 * 3]);
  });

  test('after the last step, the clean source (divided by the final scale for DDIM-like schedules)', () => {
    expect(Array.from(withBlend(SAMPLERS.euler, plan).step(step(1, 2, 0)))).toEqual([0, 2, 0, 2]);
    const ddimLike = withBlend(SAMPLERS.euler, { ...plan, schedule: schedule(0.5) });
    expect(Array.from(ddimLike.step(step(1, 2, 0.5))).filter((_, i) => i % 2 === 1)).toEqual([4, 4]); // 2 / 0.5
  });

  test('progressive shrinking: the larger mask first, then the smaller (BLD interval floor(4 / 2) + 1 = 3 steps)', () => {
    const four: Schedule = { ...schedule(), sigmas: Float64Array.of(8, 4, 2, 1, 0), timesteps: Float64Array.of(1, 2, 3, 4) };
    const blended = withBlend(SAMPLERS.euler, { ...plan, masks: [f32(1, 1), f32(1, 0)], schedule: four });
    expect(Array.from(blended.step(step(2, 2, 1)))).toEqual([4, 4, 4, 4]); // Euler 8 + 8/2 * (1 - 2); all editable
    expect(Array.from(blended.step(step(3, 1, 0)))).toEqual([0, 2, 0, 2]);
  });

  test('soft masks mix; it keeps the descriptor otherwise', () => {
    const blended = withBlend(SAMPLERS.euler, { ...plan, masks: [f32(0.25, 0.25)] });
    expect(Array.from(blended.step(step(0, 4, 2))).slice(0, 2)).toEqual([0.25 * 4 + 0.75 * 2, 0.25 * 4 + 0.75 * 0]);
    expect(blended).toMatchObject({ name: 'euler', stochastic: false, history: 0 });
  });
});
