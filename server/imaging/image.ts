/**
 * Pixel-side helpers: RGBA images, conversion to and from model tensors, resizing (sharp), and the
 * exact-preservation composite that puts an edit back into the original-resolution source.
 */
import sharp from 'sharp';

/** 8-bit RGBA, row-major, no padding. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export function createImage(width: number, height: number, data?: Uint8Array): RgbaImage {
  const expected = width * height * 4;
  if (data && data.length !== expected) {
    throw new Error(`RGBA data has ${data.length} bytes, expected ${expected} for ${width}x${height}`);
  }
  return { width, height, data: data ?? new Uint8Array(expected) };
}

/** RGB of an RGBA image as a [3,H,W] tensor in [-1,1] (the VAE's input range). */
export function toModelTensor(img: RgbaImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = img.data[i * 4 + c] / 127.5 - 1;
  }
  return out;
}

/** [3,H,W] tensor in about [-1,1] -> opaque RGBA, rounding like diffusers' numpy_to_pil. */
export function fromModelTensor(t: Float32Array, width: number, height: number): RgbaImage {
  const n = width * height;
  if (t.length < 3 * n) throw new Error(`tensor has ${t.length} values, expected 3x${width}x${height}`);
  const img = createImage(width, height);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (t[c * n + i] + 1) / 2;
      img.data[i * 4 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
    img.data[i * 4 + 3] = 255;
  }
  return img;
}

/** High-quality resize (lanczos3) of an RGBA image. */
export async function resizeImage(img: RgbaImage, width: number, height: number): Promise<RgbaImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Crop a rectangle (must lie inside the image). */
export function cropImage(img: RgbaImage, x: number, y: number, width: number, height: number): RgbaImage {
  if (x < 0 || y < 0 || x + width > img.width || y + height > img.height) {
    throw new Error(`crop ${width}x${height}+${x}+${y} is outside the ${img.width}x${img.height} image`);
  }
  const out = createImage(width, height);
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * img.width + x) * 4;
    out.data.set(img.data.subarray(from, from + width * 4), row * width * 4);
  }
  return out;
}

/**
 * Where each of `n` output samples falls on an axis of `m` input samples (pixel centres aligned, clamped at the
 * ends): the two input indices it lies between and the weight of the second. resizeMask and the fused loop in
 * server/edit/compose.ts share these tables, so both compute every value with the same arithmetic.
 */
export interface BilinearAxis {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

export function bilinearAxis(m: number, n: number): BilinearAxis {
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const frac = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = Math.min(m - 1, Math.max(0, ((i + 0.5) * m) / n - 0.5));
    lo[i] = Math.floor(s);
    hi[i] = Math.min(m - 1, lo[i] + 1);
    frac[i] = s - lo[i];
  }
  return { lo, hi, frac };
}

/** The bilinear sample of `mask` (w wide) at output column x, row y of the axes' grid. */
export function bilinearAt(mask: Float32Array, w: number, xs: BilinearAxis, ys: BilinearAxis, x: number, y: number): number {
  const fx = xs.frac[x];
  const fy = ys.frac[y];
  const r0 = ys.lo[y] * w;
  const r1 = ys.hi[y] * w;
  const top = mask[r0 + xs.lo[x]] * (1 - fx) + mask[r0 + xs.hi[x]] * fx;
  const bottom = mask[r1 + xs.lo[x]] * (1 - fx) + mask[r1 + xs.hi[x]] * fx;
  return top * (1 - fy) + bottom * fy;
}

/** Bilinear resize of a soft mask [h*w] (area-preserving enough for masks; values stay in [0,1]). */
export function resizeMask(mask: Float32Array, w: number, h: number, nw: number, nh: number): Float32Array {
  if (w === nw && h === nh) return mask;
  const xs = bilinearAxis(w, nw);
  const ys = bilinearAxis(h, nh);
  const out = new Float32Array(nw * nh);
  for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) out[y * nw + x] = bilinearAt(mask, w, xs, ys, x, y);
  return out;
}

/** One channel of a pixel blended through mask value m in (0, 1]: the edit's value at 1, else rounded. */
export function blendChannel(source: number, edit: number, m: number): number {
  return m >= 1 ? edit : Math.round(source + (edit - source) * m);
}

/**
 * Put `edit` (the size of the crop rectangle at x,y) into a copy of `source` through the soft mask over that
 * rectangle ([edit.height * edit.width], 1 = take the edit; null = everywhere). Where the mask is 0, and outside
 * the rectangle, the source bytes are copied untouched, so those pixels come back bit-identical; alpha always
 * stays the source's.
 */
export function compositeInto(source: RgbaImage, edit: RgbaImage, x: number, y: number, mask: Float32Array | null): RgbaImage {
  if (mask && mask.length !== edit.width * edit.height) throw new RangeError(`a mask of ${mask.length} values for a ${edit.width}x${edit.height} edit`);
  const out = createImage(source.width, source.height, new Uint8Array(source.data));
  for (let row = 0; row < edit.height; row++) {
    for (let col = 0; col < edit.width; col++) {
      const m = mask ? mask[row * edit.width + col] : 1;
      if (m <= 0) continue;
      const si = ((y + row) * source.width + (x + col)) * 4;
      const ei = (row * edit.width + col) * 4;
      for (let c = 0; c < 3; c++) out.data[si + c] = blendChannel(source.data[si + c], edit.data[ei + c], m);
    }
  }
  return out;
}

/**
 * The MIME type of PNG/JPEG/WebP bytes by their signature, or null. Blobs carry no content type of their own;
 * the server only stores canonical PNGs and float16 latents, and a latent is never served as an image.
 */
export function sniffImageType(bytes: Uint8Array): 'image/png' | 'image/jpeg' | 'image/webp' | null {
  const starts = (sig: number[], at = 0) => bytes.length >= at + sig.length && sig.every((b, i) => bytes[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (starts([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  return null;
}

/** Decode PNG/JPEG/WebP bytes to RGBA (throws sharp's message on malformed input). */
export async function decodeImage(bytes: Uint8Array): Promise<RgbaImage> {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export async function encodePng(img: RgbaImage): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  })
    .png()
    .toBuffer();
}

/** A soft mask [h*w] in [0,1] as an opaque grayscale RGBA image (the form drawn masks are uploaded in; maskFromImage's inverse to 1/255). */
export function maskToImage(mask: Float32Array, width: number, height: number): RgbaImage {
  const image = createImage(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = Math.round(Math.min(1, Math.max(0, mask[i])) * 255);
    image.data[i * 4] = v;
    image.data[i * 4 + 1] = v;
    image.data[i * 4 + 2] = v;
    image.data[i * 4 + 3] = 255;
  }
  return image;
}

/** A grayscale (or RGBA, first channel) image as a soft mask [h*w] in [0,1]. */
export function maskFromImage(img: RgbaImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = img.data[i * 4] / 255;
  return out;
}
