/** Small pixel fixtures for the plugin tests. */
import type { FakePixels } from './fake-photoshop';

/** An 8-bit RGBA layer region whose pixel (x, y) (document coordinates) is fn(x, y). */
export function pixels8(left: number, top: number, width: number, height: number, fn: (x: number, y: number) => [number, number, number, number]): FakePixels {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(fn(left + x, top + y), (y * width + x) * 4);
  }
  return { left, top, width, height, data };
}

/** A 16-bit (0..32768) RGBA layer region. */
export function pixels16(left: number, top: number, width: number, height: number, fn: (x: number, y: number) => [number, number, number, number]): FakePixels {
  const data = new Uint16Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(fn(left + x, top + y), (y * width + x) * 4);
  }
  return { left, top, width, height, data };
}

/** A gradient that makes every pixel distinct enough to catch offsets. */
export const gradient = (x: number, y: number): [number, number, number, number] => [(x * 7) & 255, (y * 13) & 255, (x + y) & 255, 255];

/** A selection over `bounds` with value fn(x, y) in document coordinates. */
export function selection(bounds: { left: number; top: number; right: number; bottom: number }, fn: (x: number, y: number) => number) {
  const w = bounds.right - bounds.left;
  const h = bounds.bottom - bounds.top;
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = fn(bounds.left + x, bounds.top + y);
  return { bounds, data };
}

/** The RGBA8 pixel at (x, y) of a w-wide buffer. */
export function at(rgba: Uint8Array, w: number, x: number, y: number): number[] {
  const i = (y * w + x) * 4;
  return Array.from(rgba.subarray(i, i + 4));
}
