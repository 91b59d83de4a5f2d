import { batchNoise, injectedNoise, seededNoise, startingWith } from '../../../server/engine/rng';

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('seededNoise', () => {
  test('golden: first values for seed 42 (catches any change to the generator)', () => {
    const a = seededNoise(42).normal(8);
    // float32 bit patterns; decimal: 0.63623023, 0.65144229, 0.83080190, -1.92187679,
    // 2.22173929, 0.37123659, -0.16296452, 2.88879681
    expect(Array.from(new Uint32Array(a.buffer))).toEqual([
      0x3f22dffc, 0x3f26c4ec, 0x3f54af6f, 0xbff6000f, 0x400e30fa, 0x3ebe12b9, 0xbe26e02c, 0x4038e20c,
    ]);
    expect(a[0]).toBeCloseTo(0.63623023, 7);
    expect(a[3]).toBeCloseTo(-1.92187679, 7);
  });

  test('golden: seeds 0, -1 and above 2^32 use all their bits', () => {
    const zero = seededNoise(0).normal(2);
    expect(Array.from(zero)).toEqual([Math.fround(-0.04292575642466545), Math.fround(0.48816728591918945)]);
    expect(seededNoise(-1).normal(1)[0]).toBe(Math.fround(0.7694312930107117));
    expect(seededNoise(2 ** 40 + 5).normal(1)[0]).toBe(Math.fround(-2.5744683742523193));
    expect(bytes(seededNoise(5).normal(16)).equals(bytes(seededNoise(2 ** 40 + 5).normal(16)))).toBe(false);
  });

  test('same seed gives identical bytes; a different seed differs', () => {
    const a = seededNoise(1234).normal(4096);
    const b = seededNoise(1234).normal(4096);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    const c = seededNoise(1235).normal(4096);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === c[i]) same++;
    expect(same).toBe(0);
  });

  test('the stream does not depend on chunking (odd lengths keep the spare value)', () => {
    const whole = seededNoise(7).normal(9);
    const src = seededNoise(7);
    const parts = [src.normal(3), src.normal(0), src.normal(5), src.normal(1)];
    const joined = new Float32Array(9);
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.length;
    }
    expect(bytes(joined).equals(bytes(whole))).toBe(true);
  });

  test('standard normal over 1e5 samples: mean ~0, std ~1, tails plausible', () => {
    const n = 100_000;
    const z = seededNoise(2024).normal(n);
    let s = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (let i = 0; i < n; i++) {
      s += z[i];
      s2 += z[i] * z[i];
      if (Math.abs(z[i]) > 2) beyond2++;
    }
    const mean = s / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.015); // standard error 0.0032
    expect(Math.abs(std - 1)).toBeLessThan(0.01); // standard error 0.0022
    expect(beyond2 / n).toBeGreaterThan(0.042); // P(|z| > 2) = 0.0455
    expect(beyond2 / n).toBeLessThan(0.049);
  });

  test('rejects seeds that are not safe integers', () => {
    expect(() => seededNoise(1.5)).toThrow(/safe integer/);
    expect(() => seededNoise(2 ** 60)).toThrow(/safe integer/);
    expect(() => seededNoise(3).normal(-1)).toThrow(/length/);
  });
});

describe('injectedNoise', () => {
  test('returns the given chunks in order, as copies', () => {
    const a = Float32Array.from([1, 2]);
    const b = Float32Array.from([3, 4, 5]);
    const src = injectedNoise([a, b]);
    const first = src.normal(2);
    expect(Array.from(first)).toEqual([1, 2]);
    first[0] = 99;
    expect(a[0]).toBe(1);
    expect(Array.from(src.normal(3))).toEqual([3, 4, 5]);
  });

  test('length mismatch and exhaustion are clear errors', () => {
    expect(() => injectedNoise([new Float32Array(4)]).normal(3)).toThrow(
      'injected noise chunk 0 has 4 values, asked for 3',
    );
    const src = injectedNoise([new Float32Array(2)]);
    src.normal(2);
    expect(() => src.normal(2)).toThrow('injected noise exhausted: all 1 chunks used, asked for 2 more values');
  });
});

describe('batchNoise and startingWith', () => {
  it('gives latent k of a batch its own stream, whatever the batch', () => {
    const batch = batchNoise([seededNoise(10), seededNoise(11)]);
    const a = batch.normal(6);
    const b = batch.normal(6);
    const alone10 = seededNoise(10);
    const alone11 = seededNoise(11);
    expect(Array.from(a.subarray(0, 3))).toEqual(Array.from(alone10.normal(3)));
    expect(Array.from(a.subarray(3))).toEqual(Array.from(alone11.normal(3)));
    expect(Array.from(b.subarray(0, 3))).toEqual(Array.from(alone10.normal(3)));
    expect(() => batch.normal(5)).toThrow(/multiple of the batch \(2\)/);
  });

  it('startingWith: the given first draw, then the stream; a first draw of another size is an error', () => {
    const src = startingWith(Float32Array.of(7, 8), seededNoise(3));
    expect(Array.from(src.normal(2))).toEqual([7, 8]);
    expect(Array.from(src.normal(4))).toEqual(Array.from(seededNoise(3).normal(4)));
    expect(() => startingWith(Float32Array.of(1), seededNoise(3)).normal(2)).toThrow(/initial noise has 1 values, the edit draws 2/);
  });
});
