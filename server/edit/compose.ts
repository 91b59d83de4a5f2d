/**
 * Putting an edit back into its source: the paste mask over the crop, and the decoded working image brought back
 * to the crop's size with the source's detail (detail.ts) and blended into a copy of the source, so pixels outside
 * the mask stay bit-identical and alpha is always the source's.
 */
import { featherMask } from '../engine/masks';
import { bilinearAt, bilinearAxis, blendChannel, createImage, resizeImage, resizeMask, type RgbaImage } from '../imaging/image';
import { amplitudeOf, countDetail, detailMargin, gatedDetail, lumaDifference, lumaPlane, structureGate, withDetail } from './detail';
import { maskUnion, type Geometry } from './geometry';

/** the paste mask's soft seam: the user's mask feathered inwards by this radius in pixels */
const FEATHER = 1;

/** A mask on a grid of its own (the engine's reach, on the latent grid). */
export interface MaskPlane {
  data: Float32Array;
  width: number;
  height: number;
}

export interface PlaceInput {
  source: RgbaImage;
  /** each region's soft mask at the source's size, [H * W]; null = everywhere */
  masks: (Float32Array | null)[];
  geometry: Geometry;
  /** the crop at the working size, as the engine saw it */
  cropWork: RgbaImage;
  /** the decoded edit at the working size */
  work: RgbaImage;
  /** the engine's reach (the union of its spread masks), when it widened the edit */
  reach: MaskPlane | null;
  spread: number;
}

/**
 * The mask the edit is pasted through, over the crop [g.height * g.width]: the union of the regions' masks
 * feathered inwards by one pixel (a soft seam, still exactly 0 wherever the union is 0), widened by the engine's
 * reach when spread > 0. Null when a region has no mask: the edit is pasted over the whole crop.
 *
 * The feather runs on the crop plus a border of its reach, which gives every pixel of the crop the value a
 * feather of the whole source gives it (the blur replicates edges, and the border holds every tap a crop pixel
 * reads), without touching the rest of a large source.
 */
export function pasteMask(masks: readonly (Float32Array | null)[], reach: MaskPlane | null, spread: number, W: number, H: number, g: Geometry): Float32Array | null {
  const border = Math.ceil(FEATHER);
  const x0 = Math.max(0, g.x - border);
  const y0 = Math.max(0, g.y - border);
  const around = { x: x0, y: y0, width: Math.min(W, g.x + g.width + border) - x0, height: Math.min(H, g.y + g.height + border) - y0 };
  const union = maskUnion(masks, W, around);
  if (!union) return null;
  const feathered = featherMask(union, around.width, around.height, FEATHER);
  const out = new Float32Array(g.width * g.height);
  for (let y = 0; y < g.height; y++) {
    const from = (g.y - y0 + y) * around.width + g.x - x0;
    for (let x = 0; x < g.width; x++) out[y * g.width + x] = Math.min(union[from + x], feathered[from + x]);
  }
  if (spread > 0 && reach) {
    const up = resizeMask(reach.data, reach.width, reach.height, g.width, g.height);
    for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i], up[i]);
  }
  return out;
}

/**
 * The decoded edit put back into a copy of the source at the crop, through the paste mask. Where the crop is
 * larger than the working size, with the source's detail restored: the same values as
 * compositeInto(source, upsampleWithDetail(work, crop, cropWork), g.x, g.y, pasteMask(...)), computed in two
 * passes over the crop instead of six and without a float plane at the crop's size (one pass for the texture's
 * amplitude, which needs all of the detail first; one that samples the gate, gates the detail, adds it and
 * blends), and skipping the detail wherever the mask is 0.
 */
export async function placeEdit({ source, masks, geometry: g, cropWork, work, reach, spread }: PlaceInput): Promise<RgbaImage> {
  const { width: W, height: H } = source;
  const { width: w, height: h } = g;
  const mask = pasteMask(masks, reach, spread, W, H, g);
  const detailed = w * h > work.width * work.height;
  const [up, sourceUp] = await Promise.all([resizeImage(work, w, h), detailed ? resizeImage(cropWork, w, h) : null]);
  const su = sourceUp && sourceUp.data;
  const t = su ? amplitudeOver(source, g, su) : 0;
  const margin = detailMargin(t);
  const gate = su && structureGate(lumaPlane(work), lumaPlane(cropWork), work.width, work.height);
  const xs = bilinearAxis(work.width, w);
  const ys = bilinearAxis(work.height, h);
  const out = createImage(W, H, new Uint8Array(source.data));
  const s = source.data;
  const u = up.data;
  const o = out.data;
  for (let y = 0; y < h; y++) {
    const row = ((g.y + y) * W + g.x) * 4;
    for (let x = 0; x < w; x++) {
      const m = mask ? mask[y * w + x] : 1;
      if (m <= 0) continue;
      const si = row + x * 4;
      const k = (y * w + x) * 4;
      // with nothing to restore the detail is 0 and the margin 0, where withDetail(v, 0, 0) is v
      const d = su && gate ? gatedDetail(lumaDifference(s, si, su, k), Math.fround(bilinearAt(gate, work.width, xs, ys, x, y)), t) : 0;
      for (let c = 0; c < 3; c++) o[si + c] = blendChannel(s[si + c], withDetail(u[k + c], d, margin), m);
    }
  }
  return out;
}

/** The texture's amplitude of the crop's detail (the source at g against `sourceUp`, the crop's size). */
function amplitudeOver(source: RgbaImage, g: Geometry, sourceUp: Uint8Array): number {
  const histogram = new Uint32Array(256);
  for (let y = 0; y < g.height; y++) {
    const row = ((g.y + y) * source.width + g.x) * 4;
    for (let x = 0; x < g.width; x++) countDetail(histogram, lumaDifference(source.data, row + x * 4, sourceUp, (y * g.width + x) * 4));
  }
  return amplitudeOf(histogram, g.width * g.height);
}
