import type { Denoiser } from '../../../server/engine/denoiser';
import { injectedNoise } from '../../../server/engine/rng';
import { EditCancelledError, sample, type StepReport } from '../../../server/engine/sample';
import { SAMPLERS, eulerStep, type Sampler, type StepInput } from '../../../server/engine/samplers';

const f32 = (...v: number[]) => Float32Array.from(v);
const sigmas = Float64Array.of(4, 2, 1, 0);
/** A denoiser that always predicts the same clean latent. */
const constant = (x0: Float32Array): Denoiser => async () => x0;

describe('sample: the loop', () => {
  test('deterministic Euler with an exact denoiser lands on its prediction, reporting every step', async () => {
    const reports: StepReport[] = [];
    const out = await sample(SAMPLERS.euler, constant(f32(1, -1)), f32(9, 3), sigmas, { onStep: (r) => void reports.push(r) });
    expect(Array.from(out)).toEqual([1, -1]);
    expect(reports.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(Array.from(reports[0].x)).toEqual([5, 1]); // x + (x - x0) / 4 * (2 - 4)
    expect(Array.from(reports[0].denoised)).toEqual([1, -1]);
  });

  test('a stochastic sampler gets one fresh draw of x.length per step, and needs a source', async () => {
    const noise = injectedNoise([f32(1, 1), f32(0, 0), f32(5, 5)]);
    const out = await sample(SAMPLERS.euler_ancestral, constant(f32(0, 0)), f32(4, 4), sigmas, { noise });
    expect(Array.from(out)).toEqual([0, 0]); // the last step (to sigma 0) adds its draw times sigma_up = 0
    expect(() => noise.normal(2)).toThrow(/exhausted/); // all three draws were taken
    await expect(sample(SAMPLERS.euler_ancestral, constant(f32(0)), f32(1), sigmas)).rejects.toThrow(/pass a noise source/);
  });

  test('checks the signal before every step', async () => {
    const controller = new AbortController();
    let steps = 0;
    const run = sample(SAMPLERS.euler, constant(f32(0)), f32(1), sigmas, {
      signal: controller.signal,
      onStep: () => {
        if (++steps === 2) controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(EditCancelledError);
    expect(steps).toBe(2);
  });

  test("a multistep sampler's history is kept by the loop, newest first, bounded, local to one run", async () => {
    const seen: number[][] = [];
    const twoStep: Sampler = {
      ...SAMPLERS.euler,
      history: 2,
      step: (s: StepInput) => {
        seen.push(s.previous.map((p) => p.sigma));
        return eulerStep(s.x, s.denoised, s.sigma, s.sigmaNext);
      },
    };
    await sample(twoStep, constant(f32(0)), f32(1), Float64Array.of(8, 4, 2, 1, 0));
    expect(seen).toEqual([[], [8], [4, 8], [2, 4]]);
    await sample(twoStep, constant(f32(0)), f32(1), Float64Array.of(8, 4, 0));
    expect(seen.slice(4)).toEqual([[], [8]]); // a second run starts empty
  });
});
