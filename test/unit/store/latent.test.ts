import { decodeLatent, encodeLatent, latentByteLength } from '../../../server/store/latent';
import { StoreError } from '../../../server/store/store';

describe('latent codec', () => {
  test('float16 little-endian: reference bit patterns, exact byte length', () => {
    const bytes = encodeLatent(Float32Array.from([1, -2, 0, 65504]));
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(bytes)).toEqual([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00, 0xff, 0x7b]);
    expect(encodeLatent(new Float32Array(0)).byteLength).toBe(0);
  });

  test('round-trips an SD-sized latent within float16 precision', () => {
    const shape = [4, 64, 48];
    const n = 4 * 64 * 48;
    const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 4 + Math.cos(i * 0.011) * 0.01);
    const bytes = encodeLatent(values);
    expect(bytes.byteLength).toBe(2 * n);
    expect(latentByteLength(shape)).toBe(2 * n);
    const back = decodeLatent(bytes, shape);
    expect(back.length).toBe(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      // round to nearest: half of fp16's spacing, 2^-11 relative for normals; 2^-25 absolute near zero (subnormals)
      const tolerance = Math.max(Math.abs(v) * 2 ** -11, 2 ** -25);
      if (Math.abs(back[i] - v) > tolerance) throw new Error(`[${i}]: ${v} came back as ${back[i]}`);
    }
    // a second trip is exact: the values are already representable
    expect(decodeLatent(encodeLatent(back))).toEqual(back);
  });

  test('reads bytes at any offset (a view into a larger buffer)', () => {
    const inner = encodeLatent(Float32Array.from([0.5, -0.25, 3]));
    const outer = new Uint8Array(inner.byteLength + 3);
    outer.set(inner, 3);
    expect(Array.from(decodeLatent(outer.subarray(3)))).toEqual([0.5, -0.25, 3]);
  });

  test('refuses odd lengths and a length that does not match the shape', () => {
    expect(() => decodeLatent(new Uint8Array(3))).toThrow(StoreError);
    expect(() => decodeLatent(new Uint8Array(3))).toThrow(/even length/);
    expect(() => decodeLatent(new Uint8Array(8), [4, 2])).toThrow(/shape \[4, 2\] in float16 needs 16/);
  });
});
