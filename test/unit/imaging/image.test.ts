import { compositeInto, createImage, cropImage, fromModelTensor, resizeMask, toModelTensor } from '../../../server/imaging/image';

function noiseImage(w: number, h: number, seed: number) {
  const img = createImage(w, h);
  let s = seed;
  for (let i = 0; i < img.data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    img.data[i] = s >>> 24;
  }
  return img;
}

describe('compositeInto (exact preservation)', () => {
  it('keeps every pixel where the mask is 0 bit-identical, alpha included', () => {
    const source = noiseImage(40, 30, 1);
    const edit = noiseImage(40, 30, 2);
    const mask = new Float32Array(40 * 30);
    for (let y = 10; y < 20; y++) for (let x = 5; x < 25; x++) mask[y * 40 + x] = x < 15 ? 1 : 0.5;
    const out = compositeInto(source, edit, 0, 0, mask);
    for (let i = 0; i < 40 * 30; i++) {
      const px = Array.from(out.data.subarray(i * 4, i * 4 + 4));
      if (mask[i] === 0) expect(px).toEqual(Array.from(source.data.subarray(i * 4, i * 4 + 4)));
      expect(px[3]).toBe(source.data[i * 4 + 3]); // alpha is always the source's
    }
    const full = 12 * 40 + 6; // mask 1: the edit's RGB exactly
    expect(Array.from(out.data.subarray(full * 4, full * 4 + 3))).toEqual(Array.from(edit.data.subarray(full * 4, full * 4 + 3)));
    const half = 12 * 40 + 20; // mask 0.5: rounded midpoint
    for (let c = 0; c < 3; c++) expect(out.data[half * 4 + c]).toBe(Math.round(source.data[half * 4 + c] + (edit.data[half * 4 + c] - source.data[half * 4 + c]) * 0.5));
  });

  it('pastes a crop at its offset and leaves everything else untouched', () => {
    const source = noiseImage(50, 50, 3);
    const patch = createImage(10, 10, new Uint8Array(400).fill(7));
    const out = compositeInto(source, patch, 20, 30, null);
    expect(Array.from(out.data.subarray((35 * 50 + 25) * 4, (35 * 50 + 25) * 4 + 3))).toEqual([7, 7, 7]);
    expect(out.data[(29 * 50 + 25) * 4]).toBe(source.data[(29 * 50 + 25) * 4]);
    expect(cropImage(out, 20, 30, 10, 10).data.filter((v, i) => i % 4 !== 3).every((v) => v === 7)).toBe(true);
  });
});

describe('tensor conversion', () => {
  it('maps 0..255 to [-1,1] NCHW and back exactly', () => {
    const img = noiseImage(8, 4, 9);
    const t = toModelTensor(img);
    expect(t.length).toBe(3 * 32);
    expect(t[0]).toBeCloseTo(img.data[0] / 127.5 - 1, 6);
    expect(t[32 + 5]).toBeCloseTo(img.data[5 * 4 + 1] / 127.5 - 1, 6); // channel 1, pixel 5
    const back = fromModelTensor(t, 8, 4);
    for (let i = 0; i < 32; i++) for (let c = 0; c < 3; c++) expect(back.data[i * 4 + c]).toBe(img.data[i * 4 + c]);
  });
});

describe('resizeMask', () => {
  it('resizes masks bilinearly and keeps constants constant', () => {
    const ones = new Float32Array(16).fill(1);
    expect(Array.from(resizeMask(ones, 4, 4, 7, 3)).every((v) => Math.abs(v - 1) < 1e-6)).toBe(true);
  });
});
