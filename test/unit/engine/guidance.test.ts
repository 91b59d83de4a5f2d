import { combineGuidance, pix2pixBatchLayout } from '../../../server/engine/guidance';

const f32 = (...v: number[]) => Float32Array.from(v);
function expectArrayClose(actual: Float32Array, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol * Math.max(1, Math.abs(expected[i]))) {
      throw new Error(`[${i}]: expected ${expected[i]}, got ${actual[i]}`);
    }
  }
}

describe('pix2pixBatchLayout', () => {
  test('one region is diffusers order [text+image, image-only, uncond]', () => {
    expect(pix2pixBatchLayout(1)).toEqual([
      { role: 'text', prompt: 0, zeroImage: false },
      { role: 'image', prompt: null, zeroImage: false },
      { role: 'uncond', prompt: null, zeroImage: true },
    ]);
  });

  test('R regions: [text_1 .. text_R, image-only, uncond]', () => {
    expect(pix2pixBatchLayout(3)).toEqual([
      { role: 'text', prompt: 0, zeroImage: false },
      { role: 'text', prompt: 1, zeroImage: false },
      { role: 'text', prompt: 2, zeroImage: false },
      { role: 'image', prompt: null, zeroImage: false },
      { role: 'uncond', prompt: null, zeroImage: true },
    ]);
    expect(() => pix2pixBatchLayout(0)).toThrow(/regions must be an integer >= 1/);
  });
});

describe('combineGuidance', () => {
  test('one region, no mask: eU + sT (eT - eI) + sI (eI - eU)', () => {
    // eT = [1, 2], eI = [0.5, 1], eU = [0, -1]; sT 7.5, sI 1.5
    const out = f32(1, 2, 0.5, 1, 0, -1);
    expectArrayClose(combineGuidance(out, 1, 2, { textScale: 7.5, imageScale: 1.5 }), [4.5, 9.5]);
  });

  test('matches the diffusers formula on arbitrary values', () => {
    const n = 5;
    const out = Float32Array.from({ length: 3 * n }, (_, i) => Math.sin(i * 1.7) * 2);
    const [sT, sI] = [6, 1.3];
    const expected = Array.from({ length: n }, (_, k) => {
      const [eT, eI, eU] = [out[k], out[n + k], out[2 * n + k]];
      return eU + sT * (eT - eI) + sI * (eI - eU);
    });
    expectArrayClose(combineGuidance(out, 1, n, { textScale: sT, imageScale: sI }), expected, 1e-6);
  });

  test('masked text guidance, mask broadcast over channels', () => {
    // C = 2, H*W = 2. eT = [1,1 | 2,2], eI = [0,0 | 1,1], eU = 0; sT 2, sI 1.5; mask [1, 0.25]
    const out = f32(1, 1, 2, 2, 0, 0, 1, 1, 0, 0, 0, 0);
    const res = combineGuidance(out, 1, 4, { textScale: 2, imageScale: 1.5, masks: [f32(1, 0.25)] });
    // channel 0: 0 + m * 2 * 1 ; channel 1: 1.5 + m * 2 * 1
    expectArrayClose(res, [2, 0.5, 3.5, 2]);
  });

  test('two regions with their own masks', () => {
    // C = 1, H*W = 2. eT1 = 4, eT2 = -2, eI = 1, eU = 0.5; sT 3, sI 2 -> base 0.5 + 2 * 0.5 = 1.5
    const out = f32(4, 4, -2, -2, 1, 1, 0.5, 0.5);
    const opts = { textScale: 3, imageScale: 2 };
    // region 1 adds m1 * 3 * 3, region 2 adds m2 * 3 * (-3)
    expectArrayClose(combineGuidance(out, 2, 2, { ...opts, masks: [f32(1, 0), f32(0.5, 1)] }), [6, -7.5]);
    expectArrayClose(combineGuidance(out, 2, 2, { ...opts, masks: [null, f32(0.5, 1)] }), [6, 1.5]);
    expectArrayClose(combineGuidance(out, 2, 2, opts), [1.5, 1.5]);
  });

  test('guiding x0 predictions equals guiding eps (weights sum to 1), masks included', () => {
    const n = 6; // C = 2, H*W = 3
    const regions = 2;
    const sigma = 3.7;
    const x = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 5);
    const eps = Float32Array.from({ length: (regions + 2) * n }, (_, i) => Math.sin(i * 0.9));
    const x0 = Float32Array.from(eps, (e, i) => x[i % n] - sigma * e);
    const opts = { textScale: 7.5, imageScale: 1.5, masks: [f32(1, 0.3, 0), f32(0, 0.6, 1)] };
    const fromEps = combineGuidance(eps, regions, n, opts);
    const fromX0 = combineGuidance(x0, regions, n, opts);
    expectArrayClose(fromX0, Array.from(fromEps, (e, i) => x[i] - sigma * e), 1e-5);
  });

  test('shape errors name the sizes', () => {
    const o = { textScale: 7.5, imageScale: 1.5 };
    expect(() => combineGuidance(new Float32Array(7), 1, 2, o)).toThrow(/7 values, expected 3 x 2/);
    expect(() => combineGuidance(new Float32Array(8), 2, 2, { ...o, masks: [null] })).toThrow(/1 masks for 2 regions/);
    expect(() => combineGuidance(new Float32Array(12), 1, 4, { ...o, masks: [f32(1, 1, 1)] })).toThrow(
      /mask 0 has 3 values/,
    );
  });
});
