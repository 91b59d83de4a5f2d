/**
 * Where on a source image the model works: the whole image at about the model's native area, or a context
 * crop around a small mask on a large image, so the edit gets native resolution where it matters.
 */

/** The crop rectangle in the source, and the working size it is resampled to. */
export interface Geometry {
  x: number;
  y: number;
  width: number;
  height: number;
  workWidth: number;
  workHeight: number;
}

/** Pixel rectangle with exclusive right/bottom. */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Bounding box of mask values > 0 (exclusive right/bottom), or null for an empty mask. */
export function maskBounds(mask: Float32Array, w: number, h: number): Box | null {
  let x0 = w;
  let y0 = h;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (mask[y * w + x] > 0) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        if (y >= y1) y1 = y + 1;
      }
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : null;
}

function fitToArea(w: number, h: number, native: number, multiple: number): [number, number] {
  const scale = native / Math.sqrt(w * h);
  const round = (v: number) => Math.max(multiple, Math.round((v * scale) / multiple) * multiple);
  return [round(w), round(h)];
}

/**
 * Plan the working geometry: the whole image at about the model's native area, or, for a small mask on a
 * large image, a context crop around the mask (the mask box grown by half its size each side).
 */
export function planGeometry(width: number, height: number, box: Box | null, native: number, multiple: number): Geometry {
  const whole = (): Geometry => {
    const [workWidth, workHeight] = fitToArea(width, height, native, multiple);
    return { x: 0, y: 0, width, height, workWidth, workHeight };
  };
  if (!box || width * height <= 2.25 * native * native) return whole();
  const bw = box.x1 - box.x0;
  const bh = box.y1 - box.y0;
  const cw = Math.min(width, Math.max(native, bw * 2));
  const ch = Math.min(height, Math.max(native, bh * 2));
  if (cw * ch > 0.6 * width * height) return whole();
  const cx = Math.round((box.x0 + box.x1) / 2 - cw / 2);
  const cy = Math.round((box.y0 + box.y1) / 2 - ch / 2);
  const x = Math.min(width - cw, Math.max(0, cx));
  const y = Math.min(height - ch, Math.max(0, cy));
  const [workWidth, workHeight] = fitToArea(cw, ch, native, multiple);
  return { x, y, width: cw, height: ch, workWidth, workHeight };
}

export function sameGeometry(a: Geometry, b: Geometry): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height && a.workWidth === b.workWidth && a.workHeight === b.workHeight;
}

/** The crop rectangle of a source-sized mask [W * H]. */
export function cropMask(mask: Float32Array, W: number, g: Geometry): Float32Array {
  const out = new Float32Array(g.width * g.height);
  for (let y = 0; y < g.height; y++) out.set(mask.subarray((g.y + y) * W + g.x, (g.y + y) * W + g.x + g.width), y * g.width);
  return out;
}
