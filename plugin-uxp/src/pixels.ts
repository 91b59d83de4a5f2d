/**
 * Pure pixel plumbing between Photoshop's imaging data and the wire (raw RGBA8, masks as RGBA with the mask
 * in every colour channel). Plain typed-array loops; no host calls.
 */
import { boundsHeight, boundsWidth, type Bounds, type ComponentSize } from './host';

/** Photoshop's 16-bit samples run 0..32768 (research B6), not 0..65535. */
export const PS_16BIT_MAX = 32768;

/** One 16-bit Photoshop sample (0..32768) as 8-bit: round(v * 255 / 32768), halves up; exact inverse of 8 -> 16. */
export function sample16To8(v: number): number {
  if (v >= PS_16BIT_MAX) return 255;
  return Math.floor((v * 255 + PS_16BIT_MAX / 2) / PS_16BIT_MAX);
}

/** One 32-bit float sample (0..1, HDR may exceed 1) as 8-bit, clamped. */
export function sampleFloatTo8(v: number): number {
  if (!(v > 0)) return 0; // also NaN
  if (v >= 1) return 255;
  return Math.floor(v * 255 + 0.5);
}

/**
 * Chunky RGB or RGBA samples of any Photoshop depth -> RGBA8 (alpha 255 where the data has none, e.g. a
 * Background layer).
 */
export function toRgba8(
  data: Uint8Array | Uint16Array | Float32Array,
  width: number,
  height: number,
  components: number,
  componentSize: ComponentSize,
): Uint8Array {
  if (components !== 3 && components !== 4) {
    throw new RangeError(`expected RGB or RGBA pixel data (3 or 4 components), got ${components}`);
  }
  const n = width * height;
  if (data.length !== n * components) {
    throw new RangeError(`pixel data for ${width}x${height}x${components} must hold ${n * components} samples, got ${data.length}`);
  }
  const convert = componentSize === 8 ? null : componentSize === 16 ? sample16To8 : sampleFloatTo8;
  const out = new Uint8Array(n * 4);
  for (let i = 0, s = 0, d = 0; i < n; i++, s += components, d += 4) {
    if (convert === null) {
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
      out[d + 3] = components === 4 ? data[s + 3] : 255;
    } else {
      out[d] = convert(data[s]);
      out[d + 1] = convert(data[s + 1]);
      out[d + 2] = convert(data[s + 2]);
      out[d + 3] = components === 4 ? convert(data[s + 3]) : 255;
    }
  }
  return out;
}

/**
 * Place 1-component mask data covering `dataBounds` into a mask covering `target` (`outside`, 0 by default,
 * where the data does not reach; data outside the target dropped). Soft values are kept as they are.
 */
export function cropMask(data: Uint8Array, dataBounds: Bounds, target: Bounds, outside = 0): Uint8Array {
  const dw = boundsWidth(dataBounds);
  const dh = boundsHeight(dataBounds);
  if (data.length !== dw * dh) {
    throw new RangeError(`mask data for ${dw}x${dh} must hold ${dw * dh} values, got ${data.length}`);
  }
  const tw = boundsWidth(target);
  const th = boundsHeight(target);
  const out = new Uint8Array(tw * th).fill(outside);
  const left = Math.max(dataBounds.left, target.left);
  const right = Math.min(dataBounds.right, target.right);
  const top = Math.max(dataBounds.top, target.top);
  const bottom = Math.min(dataBounds.bottom, target.bottom);
  if (right <= left || bottom <= top) return out;
  const rowLength = right - left;
  for (let y = top; y < bottom; y++) {
    const from = (y - dataBounds.top) * dw + (left - dataBounds.left);
    out.set(data.subarray(from, from + rowLength), (y - target.top) * tw + (left - target.left));
  }
  return out;
}

/** Two masks of the same size, multiplied (255 * 255 = 255; rounded). */
export function multiplyMasks(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError(`masks of ${a.length} and ${b.length} values cannot be combined`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.floor((a[i] * b[i] + 127) / 255);
  return out;
}

export type MaskCoverage = 'none' | 'partial' | 'full';

/** none: nothing selected; full: everything fully selected (no mask needed); partial otherwise. */
export function maskCoverage(mask: Uint8Array): MaskCoverage {
  let any = false;
  let all = true;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i];
    if (v !== 0) any = true;
    if (v !== 255) all = false;
    if (any && !all) return 'partial';
  }
  if (!any) return 'none';
  return all ? 'full' : 'partial';
}

/** A 1-component mask as RGBA for upload: the mask in R, G and B (the server reads R), alpha 255. */
export function maskToRgba(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(mask.length * 4);
  for (let i = 0, d = 0; i < mask.length; i++, d += 4) {
    const v = mask[i];
    out[d] = v;
    out[d + 1] = v;
    out[d + 2] = v;
    out[d + 3] = 255;
  }
  return out;
}
