/**
 * Held-out cases as large layers, and the measures of detail: a 128 px case scaled k times (nearest, so shape
 * edges stay crisp) with a fine luma texture no working resolution near the model's native size can hold
 * (paper grain, +-12 levels), the sharpness of a region (variance of the Laplacian of luma), and how much of a
 * removed shape's outline survives in a result.
 */
import { createImage, type RgbaImage } from '../../server/imaging/image';
import type { HeldoutCase } from './heldout';

export interface LargeCase {
  source: RgbaImage;
  /** the same without the texture: where the shapes' edges are */
  clean: RgbaImage;
  /** the intended result with the same texture: what a perfect edit returns at full size */
  target: RgbaImage;
  mask: Float32Array;
  interior: Float32Array;
}

function nearest(img: RgbaImage, k: number): RgbaImage {
  const out = createImage(img.width * k, img.height * k);
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      const from = (Math.floor(y / k) * img.width + Math.floor(x / k)) * 4;
      out.data.set(img.data.subarray(from, from + 4), (y * out.width + x) * 4);
    }
  }
  return out;
}

function nearestMask(m: Float32Array, w: number, k: number): Float32Array {
  const h = m.length / w;
  const out = new Float32Array(w * k * h * k);
  for (let y = 0; y < h * k; y++) for (let x = 0; x < w * k; x++) out[y * w * k + x] = m[Math.floor(y / k) * w + Math.floor(x / k)];
  return out;
}

/** Deterministic texture in [-amplitude, amplitude] per pixel (an integer hash, no generator state). */
function grain(i: number, seed: number, amplitude: number): number {
  let x = Math.imul(i ^ Math.imul(seed, 0x9e3779b9), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return ((x >>> 0) / 4294967295) * 2 * amplitude - amplitude;
}

function textured(clean: RgbaImage, seed: number): RgbaImage {
  const out = createImage(clean.width, clean.height, new Uint8Array(clean.data));
  for (let i = 0; i < clean.width * clean.height; i++) {
    const d = grain(i, seed, 12);
    for (let ch = 0; ch < 3; ch++) out.data[i * 4 + ch] = Math.min(255, Math.max(0, Math.round(clean.data[i * 4 + ch] + d)));
  }
  return out;
}

export function largeCase(c: HeldoutCase, k: number, seed: number): LargeCase {
  const clean = nearest(c.source, k);
  return {
    source: textured(clean, seed),
    clean,
    target: textured(nearest(c.target, k), seed),
    mask: nearestMask(c.mask, c.source.width, k),
    interior: nearestMask(c.interior, c.source.width, k),
  };
}

function luma(img: RgbaImage): Float64Array {
  const out = new Float64Array(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = 0.299 * img.data[i * 4] + 0.587 * img.data[i * 4 + 1] + 0.114 * img.data[i * 4 + 2];
  return out;
}

/** 4-neighbour Laplacian of luma, 0 on the border. */
function laplacian(img: RgbaImage): Float64Array {
  const { width: w, height: h } = img;
  const y = luma(img);
  const out = new Float64Array(w * h);
  for (let r = 1; r < h - 1; r++) for (let c = 1; c < w - 1; c++) {
    const i = r * w + c;
    out[i] = y[i - 1] + y[i + 1] + y[i - w] + y[i + w] - 4 * y[i];
  }
  return out;
}

/** Variance of the Laplacian over the pixels where `where` > 0.5: a sharpness measure (higher = more detail). */
export function sharpness(img: RgbaImage, where: Float32Array): number {
  const l = laplacian(img);
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < l.length; i++) {
    if (where[i] <= 0.5) continue;
    n++;
    sum += l[i];
    sq += l[i] * l[i];
  }
  return n === 0 ? 0 : sq / n - (sum / n) ** 2;
}

/** The ring of pixels within `r` of a shape's outline (inside or out). */
export function outlineBand(interior: Float32Array, w: number, r: number): Float32Array {
  const h = interior.length / w;
  const band = new Float32Array(interior.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const inside = interior[y * w + x] > 0.5;
    let edge = false;
    for (let dy = -r; dy <= r && !edge; dy++) for (let dx = -r; dx <= r && !edge; dx++) {
      const [yy, xx] = [y + dy, x + dx];
      if (yy >= 0 && yy < h && xx >= 0 && xx < w && interior[yy * w + xx] > 0.5 !== inside) edge = true;
    }
    if (edge) band[y * w + x] = 1;
  }
  return band;
}

/**
 * How much of the clean source's outline survives in `result`, within `band`: the slope of the result's
 * Laplacian on the clean source's there (1 = the old edge at full contrast, 0 = gone). The texture is
 * uncorrelated with the outline and averages out.
 */
export function outlineLeft(result: RgbaImage, clean: RgbaImage, band: Float32Array): number {
  const a = laplacian(result);
  const b = laplacian(clean);
  let [n, sa, sb, sbb, sab] = [0, 0, 0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    if (band[i] <= 0.5) continue;
    n++;
    sa += a[i];
    sb += b[i];
    sbb += b[i] * b[i];
    sab += a[i] * b[i];
  }
  const varB = sbb / n - (sb / n) ** 2;
  return varB === 0 ? 0 : (sab / n - (sa / n) * (sb / n)) / varB;
}
