import { addDetail, gateDetail, highFrequencies, lumaPlane, structureGate, textureAmplitude, upsampleWithDetail } from '../../../server/edit/detail';
import { createImage, resizeImage, type RgbaImage } from '../../../server/imaging/image';

/** A grey image from a luma function. */
function grey(w: number, h: number, f: (x: number, y: number) => number): RgbaImage {
  const img = createImage(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data.set([f(x, y), f(x, y), f(x, y), 255], (y * w + x) * 4);
  return img;
}
const stripes = (x: number) => (Math.floor(x / 4) % 2 ? 200 : 40); // structure at a 16 x 16 working size

describe("structureGate: whether the edit kept the source's structure", () => {
  const w = 16;
  const h = 16;
  const source = lumaPlane(grey(w, h, stripes));
  const edgePixel = (g: Float32Array) => g[8 * w + 4]; // on a stripe edge
  const flatPixel = (g: Float32Array) => g[8 * w + 1];

  test('open on edges the edit kept, whatever their new contrast', () => {
    expect(edgePixel(structureGate(source, source, w, h))).toBeCloseTo(1, 2);
    expect(edgePixel(structureGate(source.map((v) => 30 + 0.3 * v), source, w, h))).toBeCloseTo(1, 2);
  });

  test('closed on edges the edit removed or inverted, open where the source is flat', () => {
    expect(edgePixel(structureGate(new Float32Array(w * h).fill(120), source, w, h))).toBeLessThan(0.05);
    expect(edgePixel(structureGate(source.map((v) => 255 - v), source, w, h))).toBeLessThan(0.05);
    expect(flatPixel(structureGate(new Float32Array(w * h).fill(120), source, w, h))).toBeCloseTo(1, 6);
  });
});

describe('detail planes', () => {
  test('high frequencies are the luma difference; the texture amplitude is twice the median |detail|', () => {
    const d = highFrequencies(grey(2, 1, (x) => (x ? 90 : 120)), grey(2, 1, () => 100));
    expect(Array.from(d).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([20, -10]);
    expect(textureAmplitude(Float32Array.of(1, -3, 3, 100, -2))).toBe(6);
  });

  test('a closed gate keeps only the texture-sized part', () => {
    expect(Array.from(gateDetail(Float32Array.of(50, -50, 4), Float32Array.of(1, 0, 0), 10))).toEqual([50, -10, 4]);
    expect(Array.from(gateDetail(Float32Array.of(30), Float32Array.of(0.5), 10))).toEqual([20]);
  });
});

describe('detail restored on upsampling', () => {
  // a 64 x 64 source: stripes (structure the 16 x 16 working size keeps) and a 1-pixel checker (texture it loses)
  const source = grey(64, 64, (x, y) => stripes(x / 4) + ((x + y) % 2 ? 12 : -12));

  test('an unchanged edit comes back as the source, far closer than a plain resize', async () => {
    const work = await resizeImage(source, 16, 16);
    const restored = await upsampleWithDetail(work, source, work);
    const plain = await resizeImage(work, 64, 64);
    const err = (img: RgbaImage) => img.data.reduce((acc, v, i) => (i % 4 === 3 ? acc : acc + Math.abs(v - source.data[i])), 0) / (64 * 64 * 3);
    expect(err(restored)).toBeLessThan(1);
    expect(err(plain)).toBeGreaterThan(8);
  });

  test('no resampling, no detail: a crop at the working size comes back as the edit', async () => {
    const edit = grey(64, 64, () => 77);
    expect(await upsampleWithDetail(edit, source, source)).toEqual(edit);
  });

  test('addDetail adds the luma detail to every channel, pulling saturated colours in by the texture amplitude', () => {
    const up = createImage(2, 1, Uint8Array.of(100, 50, 250, 255, 10, 10, 10, 255));
    // t 8: 250 -> 247 before adding, 10 stays (not within 8 of 0)
    expect(Array.from(addDetail(up, Float32Array.of(6, -5), 8).data)).toEqual([106, 56, 253, 255, 5, 5, 5, 255]);
    expect(Array.from(addDetail(up, Float32Array.of(6, -5), 0).data)).toEqual([106, 56, 255, 255, 5, 5, 5, 255]); // clipped
    expect(() => addDetail(up, Float32Array.of(1), 0)).toThrow(/1 values of detail for a 2x1 image/);
  });
});
