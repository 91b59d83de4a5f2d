import {
  binarizeMask,
  dilateMask,
  downsampleMask,
  featherMask,
  localityMasks,
  maskForStep,
  progressiveMasks,
  spreadMask,
} from '../../../server/engine/masks';

/** A w x h mask with 1 at the given (x, y) pixels. */
function pixels(w: number, h: number, ...xy: [number, number][]): Float32Array {
  const m = new Float32Array(w * h);
  for (const [x, y] of xy) m[y * w + x] = 1;
  return m;
}
const sum = (m: Float32Array) => m.reduce((a, b) => a + b, 0);
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol) throw new Error(`[${i}]: expected ${expected[i]}, got ${actual[i]}`);
  }
}

describe('downsampleMask', () => {
  test('area average by 2', () => {
    // 4x2 -> 2x1
    const m = Float32Array.from([1, 0, 0.5, 0.5, 1, 0, 1, 0]);
    expectClose(downsampleMask(m, 4, 2, 2), [0.5, 0.5]);
    const single = pixels(4, 4, [1, 1]);
    expectClose(downsampleMask(single, 4, 4, 2), [0.25, 0, 0, 0]);
    expectClose(downsampleMask(single, 4, 4, 1), single);
  });

  test('sizes must divide, and the error says which', () => {
    expect(() => downsampleMask(new Float32Array(24), 6, 4, 4)).toThrow('mask size 6x4 is not divisible by 4');
    expect(() => downsampleMask(new Float32Array(5), 6, 4, 2)).toThrow(/5 values, expected 6x4 = 24/);
  });
});

describe('dilateMask', () => {
  test('a single pixel with kernel 3 covers a 3x3 block (clipped at the border)', () => {
    const d = dilateMask(pixels(5, 5, [2, 2]), 5, 5, 3);
    const expected = new Float32Array(25);
    for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) expected[y * 5 + x] = 1;
    expectClose(d, expected);
    const corner = dilateMask(pixels(5, 5, [0, 0]), 5, 5, 3);
    expectClose(corner, pixels(5, 5, [0, 0], [1, 0], [0, 1], [1, 1]));
  });

  test('kernel 7 covers 7x7; kernel 1 is the identity; grey values take the max', () => {
    expect(sum(dilateMask(pixels(9, 9, [4, 4]), 9, 9, 7))).toBe(49);
    const m = Float32Array.from([0.2, 0, 0, 0.7]); // 4x1
    expectClose(dilateMask(m, 4, 1, 1), m);
    expectClose(dilateMask(m, 4, 1, 3), [0.2, 0.2, 0.7, 0.7]);
  });

  test('even or non-positive kernels are rejected', () => {
    expect(() => dilateMask(new Float32Array(4), 2, 2, 4)).toThrow(/odd integer/);
    expect(() => dilateMask(new Float32Array(4), 2, 2, 0)).toThrow(/odd integer/);
  });
});

describe('featherMask', () => {
  test('Gaussian taps (std radius/2): an impulse with radius 2', () => {
    // weights exp(-d^2 / 2) for d = -2..2, normalised by 1 + 2e^-0.5 + 2e^-2 = 2.4837319
    const out = featherMask(pixels(5, 1, [2, 0]), 5, 1, 2);
    expectClose(out, [0.0544887, 0.2442013, 0.4026199, 0.2442013, 0.0544887]);
  });

  test('separable in 2D: the impulse response is the outer product', () => {
    const out = featherMask(pixels(5, 5, [2, 2]), 5, 5, 2);
    expect(out[2 * 5 + 2]).toBeCloseTo(0.4026199 * 0.4026199, 6);
    expect(out[0]).toBeCloseTo(0.0544887 * 0.0544887, 6);
    expect(sum(out)).toBeCloseTo(1, 5);
  });

  test('uniform masks stay uniform (edge replication), radius 0 is a copy', () => {
    expectClose(featherMask(new Float32Array(12).fill(1), 4, 3, 3), new Float32Array(12).fill(1));
    const m = pixels(3, 3, [1, 1]);
    expectClose(featherMask(m, 3, 3, 0), m);
    expect(() => featherMask(m, 3, 3, -1)).toThrow(/radius must be >= 0/);
  });
});

describe('progressive masks (Blended Latent Diffusion)', () => {
  test('[dilate 7, dilate 5, dilate 3, original]', () => {
    const m = pixels(9, 9, [4, 4]);
    const masks = progressiveMasks(m, 9, 9);
    expect(masks.map(sum)).toEqual([49, 25, 9, 1]);
    expectClose(masks[3], m);
    expect(masks[3]).not.toBe(m);
  });

  test('BLD schedule, 50 steps: 0-12, 13-25, 26-38, 39-49', () => {
    const ids = ['k7', 'k5', 'k3', 'k1'];
    const at = (s: number) => maskForStep(ids, s, 50);
    expect([0, 12, 13, 25, 26, 38, 39, 49].map(at)).toEqual(['k7', 'k7', 'k5', 'k5', 'k3', 'k3', 'k1', 'k1']);
    // interval = floor(4/4) + 1 = 2: with few steps BLD never reaches the last masks
    expect([0, 1, 2, 3].map((s) => maskForStep(ids, s, 4))).toEqual(['k7', 'k7', 'k5', 'k5']);
    expect(() => maskForStep(ids, 50, 50)).toThrow(/\[0, 50\)/);
  });
});

describe('spreadMask', () => {
  const w = 16;
  const h = 16;
  const corner = pixels(w, h, [0, 0]);
  const at = (m: Float32Array, x: number, y: number) => m[y * w + x];

  test('0 = unchanged, 1 = all ones', () => {
    expectClose(spreadMask(corner, w, h, 0), corner);
    expectClose(spreadMask(corner, w, h, 1), new Float32Array(w * h).fill(1));
  });

  test('spread 0.2 on 16x16: reach 2, core 1 -> a pixel grows to a 3x3 block', () => {
    const s = spreadMask(pixels(w, h, [5, 5]), w, h, 0.2);
    expect(sum(s)).toBeCloseTo(9, 6);
    expect(at(s, 4, 6)).toBe(1);
    expect(at(s, 7, 5)).toBe(0);
  });

  test('spread 0.5 on 16x16: reach 8, core 4, then a linear ramp (product of axis weights)', () => {
    const s = spreadMask(corner, w, h, 0.5);
    expect(at(s, 4, 2)).toBe(1);
    expect(at(s, 5, 0)).toBeCloseTo(0.75, 6);
    expect(at(s, 6, 6)).toBeCloseTo(0.25, 6);
    expect(at(s, 7, 0)).toBeCloseTo(0.25, 6);
    expect(at(s, 8, 0)).toBe(0);
  });

  test('spread 0.8 already covers the image when the mask has a 1', () => {
    expectClose(spreadMask(corner, w, h, 0.8), new Float32Array(w * h).fill(1));
  });

  test('monotone in spread, never below the mask', () => {
    const m = new Float32Array(w * h);
    m[3 * w + 4] = 0.6;
    m[10 * w + 12] = 1;
    m[11 * w + 12] = 0.3;
    let prev: Float32Array = m;
    for (const s of [0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.99, 1]) {
      const cur = spreadMask(m, w, h, s);
      for (let i = 0; i < cur.length; i++) {
        if (cur[i] < prev[i] || cur[i] < m[i]) throw new Error(`spread ${s} lowered pixel ${i}`);
      }
      prev = cur;
    }
    expect(() => spreadMask(m, w, h, 1.5)).toThrow(/\[0, 1\]/);
  });
});

describe('localityMasks (the latent masks of an edit)', () => {
  // 16x8 pixels, factor 8 -> a 2x1 latent grid; a 4x8 block in the left cell covers half of it
  const half = new Float32Array(16 * 8);
  for (let y = 0; y < 8; y++) for (let x = 0; x < 4; x++) half[y * 16 + x] = 1;
  const right = new Float32Array(16 * 8);
  for (let y = 0; y < 8; y++) for (let x = 8; x < 16; x++) right[y * 16 + x] = 1;
  const opts = { locality: 'both' as const, spread: 0, progressiveShrink: false, binaryMasks: false };

  it('area-averages per region, guides with each, blends and reaches with their union', () => {
    const m = localityMasks([half, right], 16, 8, 8, opts);
    expect(m.guidance.map((g) => Array.from(g!))).toEqual([[0.5, 0], [0, 1]]);
    expect(m.blend!.map((b) => Array.from(b))).toEqual([[0.5, 1]]);
    expect(Array.from(m.reach!)).toEqual([0.5, 1]);
  });

  it("binary masks threshold at 0.5 (BLD); 'guidance' blends nothing; one 'blend' region guides everywhere", () => {
    expect(Array.from(localityMasks([half], 16, 8, 8, { ...opts, binaryMasks: true }).reach!)).toEqual([1, 0]);
    expect(Array.from(binarizeMask(Float32Array.of(0.49, 0.5, 1)))).toEqual([0, 1, 1]);
    expect(localityMasks([half], 16, 8, 8, { ...opts, locality: 'guidance' }).blend).toBeNull();
    const blendOnly = localityMasks([half], 16, 8, 8, { ...opts, locality: 'blend' });
    expect(blendOnly.guidance).toEqual([null]);
    expect(blendOnly.blend).toHaveLength(1);
    expect(localityMasks([half, right], 16, 8, 8, { ...opts, locality: 'blend' }).guidance.every((g) => g !== null)).toBe(true);
  });

  it('a region without a mask edits everywhere: no blending, no reach; shrinking gives four masks', () => {
    const m = localityMasks([half, null], 16, 8, 8, opts);
    expect(m.guidance[1]).toBeNull();
    expect(m.blend).toBeNull();
    expect(m.reach).toBeNull();
    expect(localityMasks([half], 16, 8, 8, { ...opts, progressiveShrink: true }).blend).toHaveLength(4);
  });
});
