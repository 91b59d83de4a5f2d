import { cropMask, maskCoverage, maskToRgba, sample16To8, sampleFloatTo8, toRgba8 } from '../../../plugin-uxp/src/pixels';

describe('16-bit -> 8-bit', () => {
  it('maps Photoshop 16-bit samples (0..32768) to 8-bit with exact values', () => {
    expect(sample16To8(0)).toBe(0);
    expect(sample16To8(32768)).toBe(255);
    expect(sample16To8(16384)).toBe(128); // 127.5 rounds up
    expect(sample16To8(16320)).toBe(127); // 127.0019
    expect(sample16To8(128)).toBe(1); // 0.996
    expect(sample16To8(64)).toBe(0); // 0.498
    expect(sample16To8(65535)).toBe(255); // out of range clamps
  });

  it('inverts Photoshop 8 -> 16 bit exactly for every value', () => {
    for (let v = 0; v <= 255; v++) expect(sample16To8(Math.round((v * 32768) / 255))).toBe(v);
  });

  it('clamps 32-bit floats', () => {
    expect([sampleFloatTo8(-1), sampleFloatTo8(0), sampleFloatTo8(0.5), sampleFloatTo8(1), sampleFloatTo8(4), sampleFloatTo8(NaN)]).toEqual([0, 0, 128, 255, 255, 0]);
  });

  it('converts RGB (3 components) and 16-bit RGBA to RGBA8', () => {
    expect(Array.from(toRgba8(new Uint8Array([1, 2, 3, 4, 5, 6]), 2, 1, 3, 8))).toEqual([1, 2, 3, 255, 4, 5, 6, 255]);
    expect(Array.from(toRgba8(new Uint16Array([0, 16384, 32768, 32768]), 1, 1, 4, 16))).toEqual([0, 128, 255, 255]);
    expect(() => toRgba8(new Uint8Array(5), 1, 1, 4, 8)).toThrow(/must hold 4 samples, got 5/);
    expect(() => toRgba8(new Uint8Array(2), 1, 1, 2, 8)).toThrow(/3 or 4 components/);
  });
});

describe('cropMask', () => {
  const data = new Uint8Array([10, 20, 30, 40, 50, 60]); // 3x2 at (5, 5)
  const dataBounds = { left: 5, top: 5, right: 8, bottom: 7 };

  it('copies soft values into place and zero-fills the rest', () => {
    const out = cropMask(data, dataBounds, { left: 4, top: 4, right: 8, bottom: 7 }); // 4x3
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 10, 20, 30, 0, 40, 50, 60]);
  });

  it('drops data outside the target', () => {
    const out = cropMask(data, dataBounds, { left: 6, top: 6, right: 9, bottom: 8 }); // 3x2
    expect(Array.from(out)).toEqual([50, 60, 0, 0, 0, 0]);
  });

  it('gives an empty mask when nothing overlaps, and checks the length', () => {
    expect(Array.from(cropMask(data, dataBounds, { left: 0, top: 0, right: 2, bottom: 1 }))).toEqual([0, 0]);
    expect(() => cropMask(new Uint8Array(5), dataBounds, dataBounds)).toThrow(/3x2 must hold 6/);
  });
});

it('classifies mask coverage and expands masks to RGBA', () => {
  expect(maskCoverage(new Uint8Array([0, 0]))).toBe('none');
  expect(maskCoverage(new Uint8Array([255, 255]))).toBe('full');
  expect(maskCoverage(new Uint8Array([255, 254]))).toBe('partial');
  expect(maskCoverage(new Uint8Array([0, 255]))).toBe('partial');
  expect(Array.from(maskToRgba(new Uint8Array([0, 128])))).toEqual([0, 0, 0, 255, 128, 128, 128, 255]);
});
