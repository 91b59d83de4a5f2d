import { SAMPLERS } from '../../../server/engine/samplers';
import {
  FLOW_MATCHING,
  SD_TRAINING_SCHEDULE as SD,
  VARIANCE_EXPLODING,
  alphasCumprod,
  fromStep,
  samplingSchedule,
  sigmaFromAlphaCumprod,
  spacedTimesteps,
  strengthStartIndex,
  timestepLookup,
  trainingSigmas,
  type TrainingSchedule,
} from '../../../server/engine/schedules';

// Reference numbers: research/engine.md 1.8 and research/sched_ref.py (float32), or torch where noted.
function expectRel(actual: number, expected: number, rel = 2e-6): void {
  const tol = Math.max(rel * Math.abs(expected), 1e-7);
  if (Math.abs(actual - expected) > tol) throw new Error(`expected ${expected} +- ${tol}, got ${actual}`);
}
/** For values printed to 5 decimals: their rounding, plus numpy-vs-torch float32 differences (~1e-6 relative). */
function expect5(actual: number, expected: number): void {
  const tol = 5e-6 + 1e-6 * Math.abs(expected);
  if (Math.abs(actual - expected) > tol) throw new Error(`expected ${expected} +- ${tol}, got ${actual}`);
}
function expectAll5(actual: ArrayLike<number>, expected: number[]): void {
  expect(actual.length).toBeGreaterThanOrEqual(expected.length);
  expected.forEach((e, i) => expect5(actual[i], e));
}
const tail = (a: Float64Array, k: number) => Array.from(a.subarray(a.length - k));

describe('training schedule', () => {
  test('SD_TRAINING_SCHEDULE is the SD 1.x config, frozen', () => {
    expect(SD).toEqual({
      numTrainTimesteps: 1000,
      betaStart: 0.00085,
      betaEnd: 0.012,
      betaSchedule: 'scaled_linear',
      stepsOffset: 1,
    });
    expect(Object.isFrozen(SD)).toBe(true);
  });

  test('alphasCumprod matches torch float32 (scaled_linear)', () => {
    const ac = alphasCumprod(SD);
    expect(ac.length).toBe(1000);
    expectRel(ac[0], 0.99915);
    expectRel(ac[1], 0.998296);
    expectRel(ac[500], 0.27633247); // torch
    expectRel(ac[999], 0.0046601, 1e-5);
    expect(ac[999]).toBe(Math.fround(0.004660095)); // torch's exact float32 value
  });

  test('alphasCumprod for a linear beta schedule', () => {
    const lin: TrainingSchedule = { ...SD, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' };
    const ac = alphasCumprod(lin);
    expectRel(ac[0], 0.9999);
    expectRel(ac[500], 0.07779665); // torch
    expectRel(ac[999], 4.0358304e-5); // torch
  });

  test('sigma table: sigma(0) = 0.029168, sigma(999) = 14.614655', () => {
    const s = trainingSigmas(SD);
    expectRel(s[0], 0.029168, 2e-5);
    expectRel(s[500], 1.6182797);
    expectRel(s[999], 14.614655);
    expectRel(sigmaFromAlphaCumprod(0.0046600895), 14.614655);
  });
});

describe('spacedTimesteps', () => {
  test('linspace is fractional float32 for Euler and rounded half-to-even for DDIM', () => {
    const f = spacedTimesteps(SD, 20, 'linspace', false);
    expect(Array.from(f.subarray(0, 4))).toEqual([999, 946.42108154296875, 893.84210205078125, 841.26318359375]);
    expect(f[19]).toBe(0);
    expect(Array.from(spacedTimesteps(SD, 7, 'linspace', false))).toEqual([999, 832.5, 666, 499.5, 333, 166.5, 0]);
    expect(Array.from(spacedTimesteps(SD, 7, 'linspace', true))).toEqual([999, 832, 666, 500, 333, 166, 0]);
    expect(Array.from(spacedTimesteps(SD, 20, 'linspace', true)).slice(0, 5)).toEqual([999, 946, 894, 841, 789]);
  });

  test('leading adds stepsOffset: 951 .. 1 for N = 20', () => {
    const t = Array.from(spacedTimesteps(SD, 20, 'leading', true));
    expect(t).toEqual(Array.from({ length: 20 }, (_, i) => 951 - 50 * i));
    expect(Array.from(spacedTimesteps(SD, 3, 'leading', true))).toEqual([667, 334, 1]);
  });

  test('trailing: 999, 949, ..., 49 for N = 20; exactly N values', () => {
    const t = Array.from(spacedTimesteps(SD, 20, 'trailing', true));
    expect(t).toEqual(Array.from({ length: 20 }, (_, i) => 999 - 50 * i));
    expect(Array.from(spacedTimesteps(SD, 3, 'trailing', true))).toEqual([999, 666, 332]);
    expect(Array.from(spacedTimesteps(SD, 7, 'trailing', true))).toEqual([999, 856, 713, 570, 428, 285, 142]);
    expect(spacedTimesteps(SD, 61, 'trailing', true).length).toBe(61); // numpy's arange gives 62 here
  });

  test('rejects step counts outside [1, T]', () => {
    expect(() => spacedTimesteps(SD, 0, 'linspace', false)).toThrow(/\[1, 1000\]/);
    expect(() => spacedTimesteps(SD, 1001, 'linspace', false)).toThrow(/got 1001/);
    expect(() => spacedTimesteps(SD, 2.5, 'linspace', false)).toThrow(RangeError);
  });
});

describe('samplingSchedule (Euler family)', () => {
  test('N = 20 linspace: engine.md sigmas', () => {
    const s = samplingSchedule(SD, 'EulerAncestralDiscreteScheduler', 20, 'linspace');
    expect(s.timesteps.length).toBe(20);
    expect(s.sigmas.length).toBe(21);
    expectAll5(s.sigmas, [14.61466, 10.74686, 8.08154, 6.20495]);
    const end = tail(s.sigmas, 3);
    expect5(end[0], 0.23217);
    expect5(end[1], 0.02917);
    expect(end[2]).toBe(0);
    expectRel(s.initNoiseSigma, 14.614655);
  });

  test('default spacing for Euler is linspace (IP2P config), and the last sigma is 0 (final scale 1)', () => {
    expect(SAMPLERS.euler.defaultSpacing).toBe('linspace');
    expect(SAMPLERS.euler_ancestral.defaultSpacing).toBe('linspace');
    const a = samplingSchedule(SD, 'EulerDiscreteScheduler', 20, 'linspace');
    expect(a.finalScale).toBe(1);
    expect(a.process).toBe(VARIANCE_EXPLODING);
  });

  test('N = 20 leading: sigmas at 951..1, init sqrt(sigma_0^2 + 1)', () => {
    const s = samplingSchedule(SD, 'EulerDiscreteScheduler', 20, 'leading');
    expect(s.timesteps[0]).toBe(951);
    expect(s.timesteps[19]).toBe(1);
    expectAll5(s.sigmas, [11.02834, 8.39069, 6.5064, 5.13444]);
    const end = tail(s.sigmas, 3);
    expect5(end[0], 0.22815);
    expect5(end[1], 0.04131);
    expect(end[2]).toBe(0);
    expect5(s.initNoiseSigma, 11.07358);
  });

  test('N = 20 trailing: sigmas at 999..49, init sigma_0', () => {
    const s = samplingSchedule(SD, 'EulerDiscreteScheduler', 20, 'trailing');
    expectAll5(s.sigmas, [14.61466, 10.90425, 8.30281, 6.44296]);
    const end = tail(s.sigmas, 3);
    expect5(end[0], 0.34167);
    expect5(end[1], 0.223);
    expect(end[2]).toBe(0);
    expectRel(s.initNoiseSigma, 14.614655);
  });

  test('N = 100 linspace: first two sigmas (EulerA example of engine.md)', () => {
    const s = samplingSchedule(SD, 'EulerAncestralDiscreteScheduler', 100, 'linspace');
    expectAll5(s.sigmas, [14.61466, 13.75252]);
    expect(s.sigmas[100]).toBe(0);
  });

  test('fractional timesteps interpolate sigma linearly (np.interp)', () => {
    const s = samplingSchedule(SD, 'EulerDiscreteScheduler', 7, 'linspace');
    const table = trainingSigmas(SD);
    expect(s.timesteps[1]).toBe(832.5);
    expectRel(s.sigmas[1], (table[832] + table[833]) / 2, 1e-7);
  });
});

describe('samplingSchedule (DDIM)', () => {
  test('default leading N = 20: integer timesteps, sigmas at them, final sigma(alphas_cumprod[0])', () => {
    expect(SAMPLERS.ddim.defaultSpacing).toBe('leading');
    const s = samplingSchedule(SD, 'DDIMScheduler', 20, 'leading');
    const table = trainingSigmas(SD);
    expect(Array.from(s.timesteps)).toEqual(Array.from({ length: 20 }, (_, i) => 951 - 50 * i));
    expectRel(s.sigmas[0], 11.028336, 1e-6);
    expectRel(s.sigmas[1], 8.390687, 1e-6);
    for (let i = 0; i < 20; i++) expect(s.sigmas[i]).toBe(table[s.timesteps[i]]);
    expectRel(s.sigmas[20], 0.029168, 2e-5);
    expect5(s.initNoiseSigma, 11.07358);
    // the clean latent is the VP sample diffusers returns: x / sqrt(1 + sigma_final^2)
    expectRel(s.finalScale, 1 / Math.sqrt(1 + s.sigmas[20] ** 2), 1e-12);
  });

  test('linspace rounds, trailing ends at 49; both land on alphas_cumprod[0]', () => {
    const lin = samplingSchedule(SD, 'DDIMScheduler', 7, 'linspace');
    expect(Array.from(lin.timesteps)).toEqual([999, 832, 666, 500, 333, 166, 0]);
    expectRel(lin.sigmas[7], 0.029168, 2e-5);
    expectRel(lin.initNoiseSigma, 14.648828, 2e-6);
    const tr = samplingSchedule(SD, 'DDIMScheduler', 20, 'trailing');
    expect(tr.timesteps[19]).toBe(49);
    expect5(tr.sigmas[19], 0.223);
    expectRel(tr.sigmas[20], 0.029168, 2e-5);
  });

  test('a leading timestep past the table is an error for DDIM (1000 steps: t = 1000)', () => {
    expect(() => samplingSchedule(SD, 'DDIMScheduler', 1000, 'leading')).toThrow(/timestep 1000 is outside \[0, 999\]/);
  });
});

describe('strength', () => {
  test('strengthStartIndex follows diffusers img2img', () => {
    expect(strengthStartIndex(50, 0.75)).toBe(13); // 37 steps run
    expect(strengthStartIndex(50, 1)).toBe(0);
    expect(strengthStartIndex(50, 0)).toBe(50);
    expect(strengthStartIndex(100, 0.29)).toBe(72); // int(28.999999999999996) = 28, as in Python
    expect(() => strengthStartIndex(50, 1.5)).toThrow(/\[0, 1\]/);
  });
});

describe('schedule slices, timestep lookup, forward processes', () => {
  test('fromStep keeps sigmas and timesteps from `start` (strength) and refuses an empty run', () => {
    const s = samplingSchedule(SD, 'EulerDiscreteScheduler', 20, 'linspace');
    const tail = fromStep(s, strengthStartIndex(20, 0.6)); // 12 steps run
    expect(tail.timesteps.length).toBe(12);
    expect(Array.from(tail.sigmas)).toEqual(Array.from(s.sigmas.subarray(8)));
    expect(tail.initNoiseSigma).toBe(s.initNoiseSigma);
    expect(() => fromStep(s, strengthStartIndex(20, 0.01))).toThrow(/start at a step in \[0, 20\), got 20: raise the strength or the steps/);
  });

  test('timestepLookup gives each step sigma its exact (fractional) timestep, and refuses others', () => {
    const s = samplingSchedule(SD, 'EulerDiscreteScheduler', 7, 'linspace');
    const t = timestepLookup(s);
    expect(t(s.sigmas[1])).toBe(832.5);
    expect(t(s.sigmas[0])).toBe(999);
    expect(() => t(3.3)).toThrow(/sigma 3.3 is not a step of this schedule/);
  });

  test('variance exploding z + sigma n and flow matching (1 - sigma) z + sigma n, z repeated over a batch', () => {
    const z = Float32Array.of(1, 2);
    const n = Float32Array.of(2, -4, 10, 0);
    expect(Array.from(VARIANCE_EXPLODING.noised(z, n, 0.5))).toEqual([2, 0, 6, 2]);
    expect(Array.from(FLOW_MATCHING.noised(z, n, 0.25))).toEqual([1.25, 0.5, 3.25, 1.5]);
    expect(Array.from(FLOW_MATCHING.noised(z, n, 1))).toEqual(Array.from(n)); // pure noise at sigma 1
    expect(() => VARIANCE_EXPLODING.noised(z, Float32Array.of(1, 2, 3), 1)).toThrow(/not a multiple of the latent's 2/);
  });
});
