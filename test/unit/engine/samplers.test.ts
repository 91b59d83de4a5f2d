import { SAMPLERS, ancestralSigmas, eulerAncestralStep, eulerStep, samplerForScheduler, type StepInput } from '../../../server/engine/samplers';
import { SD_TRAINING_SCHEDULE as SD, alphasCumprod, samplingSchedule } from '../../../server/engine/schedules';

const f32 = (...v: number[]) => Float32Array.from(v);
function expectArrayClose(actual: Float32Array, expected: ArrayLike<number>, rel = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.max(1, Math.abs(expected[i]));
    if (Math.abs(actual[i] - expected[i]) > tol) {
      throw new Error(`[${i}]: expected ${expected[i]} +- ${tol}, got ${actual[i]}`);
    }
  }
}

describe('ancestralSigmas', () => {
  test('engine.md example: N = 100 step 0 -> up 4.65360, down 12.94125', () => {
    const { sigmas } = samplingSchedule(SD, 'EulerAncestralDiscreteScheduler', 100, 'linspace');
    const { up, down } = ancestralSigmas(sigmas[0], sigmas[1]);
    // 5-decimal references from numpy float32; torch's sigma table differs by ~1e-6 relative
    expect(Math.abs(up - 4.6536)).toBeLessThan(2e-5);
    expect(Math.abs(down - 12.94125)).toBeLessThan(2e-5);
    expect(up * up + down * down).toBeCloseTo(sigmas[1] * sigmas[1], 10);
  });

  test('hand numbers, last step and eta 0', () => {
    const a = ancestralSigmas(2, 1); // up = sqrt(1 * (4 - 1) / 4), down = sqrt(1 - 3/4)
    expect(a.up).toBeCloseTo(Math.sqrt(0.75), 12);
    expect(a.down).toBeCloseTo(0.5, 12);
    expect(ancestralSigmas(0.5, 0)).toEqual({ up: 0, down: 0 });
    expect(ancestralSigmas(2, 1, 0)).toEqual({ up: 0, down: 1 });
  });
});

describe('steps', () => {
  const x = f32(1, -2);
  const den = f32(0.5, 1);

  test('eulerStep: x + (x - x0) / sigma * (sigmaNext - sigma)', () => {
    // d = [0.25, -1.5], dt = -1
    expectArrayClose(eulerStep(x, den, 2, 1), [0.75, -0.5]);
    expectArrayClose(eulerStep(x, den, 2, 0), [0.5, 1]); // to sigma 0: exactly the prediction
  });

  test('eulerAncestralStep: Euler to sigma_down plus z * sigma_up', () => {
    // down 0.5 -> x + d * (0.5 - 2) = [0.625, 0.25]; up = sqrt(0.75) times z = [1, -1]
    expectArrayClose(eulerAncestralStep(x, den, 2, 1, f32(1, -1)), [1.4910254037844386, -0.6160254037844386]);
    expectArrayClose(eulerAncestralStep(x, den, 2, 0, f32(5, 5)), [0.5, 1]); // last step: no noise
  });

  test('engine.md EulerA formula with an eps prediction (N = 100 step 0)', () => {
    const { sigmas } = samplingSchedule(SD, 'EulerAncestralDiscreteScheduler', 100, 'linspace');
    const [s0, s1] = [sigmas[0], sigmas[1]];
    const xs = f32(3.5, -12, 0.25);
    const eps = f32(0.2, -0.9, 1.1);
    const z = f32(-0.3, 1.2, 0.05);
    const out = eulerAncestralStep(xs, Float32Array.from(xs, (v, i) => v - s0 * eps[i]), s0, s1, z);
    // x + eps * (sigma_down - sigma) + z * sigma_up with engine.md's rounded sigmas
    const expected = Array.from(xs, (v, i) => v + eps[i] * (12.94125 - 14.61466) + z[i] * 4.6536);
    expectArrayClose(out, expected, 2e-5);
  });

  test('input length mismatches and sigma 0 are errors', () => {
    expect(() => eulerStep(x, f32(1), 2, 1)).toThrow(/denoised has 1 values, expected 2/);
    expect(() => eulerAncestralStep(x, den, 2, 1, f32(1, 2, 3))).toThrow(/noise z has 3 values/);
    expect(() => eulerStep(x, den, 0, 0)).toThrow(/sigma must be > 0/);
  });
});

describe('DDIM in sigma space', () => {
  // diffusers DDIM (eta 0) in VP space, engine.md 1.8
  function ddimVp(xVp: Float32Array, eps: Float32Array, aT: number, aPrev: number): number[] {
    return Array.from(xVp, (v, i) => {
      const x0 = (v - Math.sqrt(1 - aT) * eps[i]) / Math.sqrt(aT);
      return Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * eps[i];
    });
  }

  test('Euler step on x_ve = x_vp * sqrt(1 + sigma^2) equals the VP update (N = 20 leading)', () => {
    const ac = alphasCumprod(SD);
    const sched = samplingSchedule(SD, SAMPLERS.ddim.scheduler, 20, 'leading');
    const xVp = f32(0.8, -1.3, 2.2, -0.05);
    const eps = f32(-0.4, 1.7, 0.9, -1.1);
    // first step (951 -> 901), a middle one (451 -> 401) and the last (1 -> alphas_cumprod[0])
    for (const i of [0, 10, 19]) {
      const t = sched.timesteps[i];
      const aT = ac[t];
      const aPrev = t - 50 >= 0 ? ac[t - 50] : ac[0];
      const [s, sNext] = [sched.sigmas[i], sched.sigmas[i + 1]];
      const xVe = Float32Array.from(xVp, (v) => v * Math.sqrt(1 + s * s));
      // the UNet input x_ve / sqrt(sigma^2 + 1) (denoiser.fromEpsilon's c_in) is diffusers' unscaled DDIM sample
      expectArrayClose(Float32Array.from(xVe, (v) => v / Math.sqrt(s * s + 1)), xVp, 1e-6);
      const denoised = Float32Array.from(xVe, (v, k) => v - s * eps[k]);
      const next = SAMPLERS.ddim.step({ x: xVe, denoised, sigma: s, sigmaNext: sNext, index: i, previous: [] });
      const backToVp = Float32Array.from(next, (v) => v / Math.sqrt(1 + sNext * sNext));
      expectArrayClose(backToVp, ddimVp(xVp, eps, aT, aPrev), 1e-5);
    }
  });
});

describe('sampler descriptors', () => {
  const input = (z?: Float32Array): StepInput => ({ x: f32(1, -2), denoised: f32(0.5, 1), sigma: 2, sigmaNext: 1, index: 0, previous: [], z });

  test('one descriptor per sampler: its step, its noise, its scheduler', () => {
    expect(Object.keys(SAMPLERS)).toEqual(['euler_ancestral', 'euler', 'ddim']);
    for (const [name, s] of Object.entries(SAMPLERS)) expect(s.name).toBe(name);
    expectArrayClose(SAMPLERS.euler.step(input()), Array.from(eulerStep(f32(1, -2), f32(0.5, 1), 2, 1)));
    expectArrayClose(SAMPLERS.ddim.step(input()), Array.from(eulerStep(f32(1, -2), f32(0.5, 1), 2, 1)));
    expectArrayClose(SAMPLERS.euler_ancestral.step(input(f32(1, -1))), [1.4910254037844386, -0.6160254037844386]);
    expect(() => SAMPLERS.euler_ancestral.step(input())).toThrow(/steps need fresh noise z/);
    expect([SAMPLERS.euler_ancestral.stochastic, SAMPLERS.euler.stochastic, SAMPLERS.ddim.stochastic]).toEqual([true, false, false]);
    expect(Object.values(SAMPLERS).every((s) => s.history === 0)).toBe(true);
  });

  test('a scheduler config names its sampler; unknown schedulers name none', () => {
    expect(samplerForScheduler('EulerAncestralDiscreteScheduler')).toBe(SAMPLERS.euler_ancestral);
    expect(samplerForScheduler('EulerDiscreteScheduler')).toBe(SAMPLERS.euler);
    expect(samplerForScheduler('DDIMScheduler')).toBe(SAMPLERS.ddim);
    expect(samplerForScheduler('LMSDiscreteScheduler')).toBeNull();
    expect(samplerForScheduler(undefined)).toBeNull();
  });
});
