/**
 * The playground's mask: one byte per image pixel (0 = keep, 255 = may change), painted with a soft round
 * brush. Pure typed-array code, no DOM: the page draws it (`writeOverlay`) and uploads it (`writeGrayscale`).
 *
 * A stroke composites like one layer: within a stroke each pixel keeps the strongest coverage any stamp gave
 * it (so dense stamps never build up a soft edge into a hard one), and the stroke is applied to the mask as it
 * was when the stroke began, over it when painting (m + s(1 - m)) and cut out of it when erasing (m(1 - s)).
 */

export interface Mask {
  readonly width: number;
  readonly height: number;
  /** [height * width], row-major */
  readonly data: Uint8Array;
}

export interface Brush {
  /** in image pixels */
  readonly radius: number;
  /** 0 = the whole radius fades out, 1 = a hard edge */
  readonly hardness: number;
  readonly mode: 'paint' | 'erase';
}

/** A pixel rectangle, x/y inclusive, x + width / y + height exclusive. */
export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface Stroke {
  readonly mask: Mask;
  readonly brush: Brush;
  /** the mask before the stroke */
  readonly before: Uint8Array;
  /** the strongest stamp coverage so far, per pixel */
  readonly coverage: Uint8Array;
  /** the last point stamped; null before the first */
  last: { x: number; y: number } | null;
}

export function createMask(width: number, height: number): Mask {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`a mask needs a positive integer size, got ${width}x${height}`);
  }
  return { width, height, data: new Uint8Array(width * height) };
}

export function fullRect(mask: Mask): Rect {
  return { x: 0, y: 0, width: mask.width, height: mask.height };
}

/** Coverage in [0, 1] at distance d from the brush centre: 1 inside radius * hardness, a smoothstep to 0 at the radius. */
export function brushFalloff(d: number, radius: number, hardness: number): number {
  if (d >= radius) return 0;
  const inner = radius * Math.min(Math.max(hardness, 0), 1);
  if (d <= inner) return 1;
  const t = (d - inner) / (radius - inner);
  return 1 - t * t * (3 - 2 * t);
}

export function beginStroke(mask: Mask, brush: Brush): Stroke {
  if (!(brush.radius > 0)) throw new Error(`the brush radius must be positive, got ${brush.radius}`);
  return { mask, brush, before: mask.data.slice(), coverage: new Uint8Array(mask.data.length), last: null };
}

/** Stamps from the stroke's last point to (x, y) (image pixels, may lie outside); returns the changed rectangle, or null. */
export function strokeTo(stroke: Stroke, x: number, y: number): Rect | null {
  const from = stroke.last ?? { x, y };
  stroke.last = { x, y };
  const { radius } = stroke.brush;
  const spacing = Math.max(0.5, radius * 0.15);
  const n = Math.max(1, Math.ceil(Math.hypot(x - from.x, y - from.y) / spacing));
  let dirty: Rect | null = null;
  // the first call stamps once at (x, y); later ones from just past the last point up to (x, y)
  for (let i = 1; i <= n; i++) {
    const t = i / n;
    dirty = union(dirty, stamp(stroke, from.x + (x - from.x) * t, from.y + (y - from.y) * t));
  }
  return dirty;
}

function stamp(stroke: Stroke, cx: number, cy: number): Rect | null {
  const { mask, brush, before, coverage } = stroke;
  const { width, data } = mask;
  const r = brush.radius;
  const x0 = Math.max(0, Math.floor(cx - r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const x1 = Math.min(mask.width, Math.ceil(cx + r));
  const y1 = Math.min(mask.height, Math.ceil(cy + r));
  if (x0 >= x1 || y0 >= y1) return null;
  const paint = brush.mode === 'paint';
  for (let py = y0; py < y1; py++) {
    const dy = py + 0.5 - cy;
    for (let px = x0; px < x1; px++) {
      const s = Math.round(255 * brushFalloff(Math.hypot(px + 0.5 - cx, dy), r, brush.hardness));
      const i = py * width + px;
      if (s <= coverage[i]) continue;
      coverage[i] = s;
      const m = before[i];
      data[i] = paint ? m + Math.round((s * (255 - m)) / 255) : Math.round((m * (255 - s)) / 255);
    }
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

function union(a: Rect | null, b: Rect | null): Rect | null {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

export function clearMask(mask: Mask): void {
  mask.data.fill(0);
}

export function invertMask(mask: Mask): void {
  const { data } = mask;
  for (let i = 0; i < data.length; i++) data[i] = 255 - data[i];
}

export function isMaskEmpty(mask: Mask): boolean {
  const { data } = mask;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * The mask as opaque grayscale RGBA (white = may change), the layout of ImageData; the page encodes it as the
 * PNG it uploads. `out` must hold width * height * 4 bytes.
 */
export function writeGrayscale(mask: Mask, out: Uint8ClampedArray): void {
  const { data } = mask;
  if (out.length !== data.length * 4) throw new Error(`writeGrayscale: expected ${data.length * 4} bytes of RGBA, got ${out.length}`);
  for (let i = 0, o = 0; i < data.length; i++, o += 4) {
    const v = data[i];
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
    out[o + 3] = 255;
  }
}

/** `rect` of the mask as RGBA in one colour, the mask as alpha (the on-screen overlay); `out` holds rect.width * rect.height * 4 bytes. */
export function writeOverlay(mask: Mask, rect: Rect, color: readonly [number, number, number], out: Uint8ClampedArray): void {
  if (out.length !== rect.width * rect.height * 4) throw new Error(`writeOverlay: expected ${rect.width * rect.height * 4} bytes of RGBA, got ${out.length}`);
  const { data, width } = mask;
  const [r, g, b] = color;
  let o = 0;
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    for (let i = y * width + rect.x, end = i + rect.width; i < end; i++, o += 4) {
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
      out[o + 3] = data[i];
    }
  }
}
