import { float32ToHalf, fromHalfBits, halfToFloat32, toHalfBits } from '../../../server/engine/fp16';

describe('float16 bits', () => {
  it('encodes reference values exactly (IEEE-754 binary16)', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff); // largest finite half
    expect(toHalfBits(1e6)).toBe(0x7c00); // overflow -> inf
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(0)).toBe(0);
    expect(toHalfBits(-0)).toBe(0x8000);
    expect(toHalfBits(NaN) & 0x7c00).toBe(0x7c00);
  });

  it('rounds to nearest even like numpy astype(float16)', () => {
    // fp16 spacing is 0.5 in [512, 1024): 988.909 -> 989.0 (engine.md 2.3), 988.75 -> 989.0 (tie to even)
    expect(fromHalfBits(toHalfBits(988.909))).toBe(989);
    expect(fromHalfBits(toHalfBits(988.75))).toBe(989);
    expect(fromHalfBits(toHalfBits(988.25))).toBe(988);
    expect(fromHalfBits(toHalfBits(1 + 2 ** -11))).toBe(1); // tie between 1 and 1+2^-10 goes to even (1)
  });

  it('round-trips every finite half value', () => {
    for (let h = 0; h < 0x7c00; h++) {
      expect(toHalfBits(fromHalfBits(h))).toBe(h);
      expect(toHalfBits(fromHalfBits(h | 0x8000))).toBe(h | 0x8000);
    }
  });

  it('converts arrays both ways within half precision', () => {
    const values = Float32Array.from([0.1, -3.14159, 14.614655, 0.0001]);
    const back = halfToFloat32(float32ToHalf(values));
    values.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11));
  });
});
