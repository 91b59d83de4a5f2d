/**
 * klein's latent layouts and schedule: sigmas, timesteps and mu against diffusers' FlowMatchEulerDiscreteScheduler
 * as the pipeline sets it (values from tools/tiny-klein/make_parity_fixtures.py), patchify/pack index maps written
 * out from the Python definitions, and the position ids.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { denormalise, empiricalMu, flowSchedule, flowStrengthStart, imageIds, latentToRgb, normalise, pack, patchify, referenceTime, textIds, unpack, unpatchify } from '../../../../server/engine/flux2/latents';

const values = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'fixtures', 'flux2', 'python-values.json'), 'utf8')) as {
  schedules: { steps: number; imageSeqLen: number; mu: number; sigmas: number[]; timesteps: number[] }[];
};
const KLEIN_SHIFT = { numTrainTimesteps: 1000, dynamic: true, timeShiftType: 'exponential', shift: 3 } as const;
const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('klein schedule', () => {
  it.each(values.schedules.map((s) => [`${s.steps} steps at ${s.imageSeqLen} tokens`, s] as const))('%s', (_n, s) => {
    expect(empiricalMu(s.imageSeqLen, s.steps)).toBeCloseTo(s.mu, 12);
    const schedule = flowSchedule(KLEIN_SHIFT, s.steps, s.imageSeqLen);
    expect(schedule.sigmas.length).toBe(s.steps + 1);
    s.sigmas.forEach((v, i) => expect(Math.abs(schedule.sigmas[i] - v)).toBeLessThanOrEqual(1e-7));
    s.timesteps.forEach((v, i) => expect(Math.abs(schedule.timesteps[i] - v)).toBeLessThanOrEqual(1e-4));
    expect(schedule.process.name).toBe('flow-matching');
  });

  it('a fixed shift without dynamic shifting', () => {
    const s = flowSchedule({ ...KLEIN_SHIFT, dynamic: false }, 2, 16);
    expect(s.sigmas[0]).toBeCloseTo(1, 6);
    expect(s.sigmas[1]).toBeCloseTo((3 * 0.5) / (1 + 2 * 0.5), 6);
    expect(s.sigmas[2]).toBe(0);
  });
});

describe('klein latent layouts', () => {
  it('patchify puts (c, 2i+dy, 2j+dx) at channel 4c+2dy+dx, (i, j); unpatchify inverts it', () => {
    const [C, H, W] = [2, 4, 6];
    const z = iota(C * H * W);
    const p = patchify(z, C, H, W);
    const [h, w] = [H / 2, W / 2];
    for (const [c, y, x] of [[0, 0, 0], [1, 3, 5], [0, 2, 1], [1, 1, 4]]) {
      const d = 2 * (y % 2) + (x % 2);
      expect(p[((4 * c + d) * h + (y >> 1)) * w + (x >> 1)]).toBe(z[(c * H + y) * W + x]);
    }
    expect(unpatchify(p, 4 * C, h, w)).toEqual(z);
    expect(() => patchify(iota(2 * 3 * 4), 2, 3, 4)).toThrow(/2x2 patches/);
  });

  it('pack makes token-major [h*w, C]; unpack inverts it', () => {
    const grid = { channels: 3, height: 2, width: 2 };
    const z = iota(12);
    const t = pack(z, grid);
    expect(Array.from(t.subarray(0, 3))).toEqual([0, 4, 8]);
    expect(Array.from(t.subarray(9, 12))).toEqual([3, 7, 11]);
    expect(unpack(t, grid)).toEqual(z);
  });

  it('batch-norm normalisation per channel, and back', () => {
    const norm = { mean: Float32Array.of(1, -2), std: Float32Array.of(2, 0.5) };
    const z = Float32Array.of(3, 5, -2, -1);
    expect(Array.from(normalise(z, norm, 2))).toEqual([1, 2, 0, 2]);
    expect(denormalise(normalise(z, norm, 2), norm, 2)).toEqual(z);
  });

  it('position ids: text (0,0,0,l), target (0,row,col,0), reference i at t = 10 + 10 i', () => {
    expect(Array.from(textIds(3))).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    expect(Array.from(imageIds(2, 3, 0).subarray(4 * 4, 4 * 5))).toEqual([0, 1, 1, 0]);
    expect(Array.from(imageIds(1, 2, referenceTime(1)))).toEqual([20, 0, 0, 0, 20, 0, 1, 0]);
  });
});

describe('klein strength', () => {
  it("starts where the inpaint pipeline's get_timesteps does: int(N - N * strength)", () => {
    expect(flowStrengthStart(4, 0.6)).toBe(1); // int(1.6): 3 steps run (SD's floor would run 2)
    expect(flowStrengthStart(6, 0.5)).toBe(3);
    expect(flowStrengthStart(4, 1)).toBe(0);
    expect(flowStrengthStart(10, 0.05)).toBe(9);
    expect(() => flowStrengthStart(4, 1.5)).toThrow(/strength must be in \[0, 1\]/);
  });
});

describe('preview map (latent_rgb_factors / latent_rgb_bias)', () => {
  it('maps each latent pixel to bias + factors^T z, planes [3, h, w]', () => {
    // 2 channels, a 1x2 latent: pixel 0 = (1, 2), pixel 1 = (-1, 0.5)
    const z = Float32Array.from([1, -1, 2, 0.5]);
    const map = { factors: [[1, 0, 0.5], [0, 2, -1]] as [number, number, number][], bias: [0.1, -0.2, 0] as [number, number, number] };
    const rgb = latentToRgb(z, map, 1, 2);
    const want = [0.1 + 1, 0.1 - 1, -0.2 + 4, -0.2 + 1, 0.5 - 2, -0.5 - 0.5];
    want.forEach((v, i) => expect(rgb[i]).toBeCloseTo(v, 6));
  });

  it('refuses a latent of the wrong size', () => {
    const map = { factors: [[1, 1, 1]] as [number, number, number][], bias: [0, 0, 0] as [number, number, number] };
    expect(() => latentToRgb(new Float32Array(5), map, 2, 2)).toThrow('the latent to preview has 5 values, expected 4');
  });
});
