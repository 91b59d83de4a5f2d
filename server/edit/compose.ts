/**
 * Putting an edit back into its source: the paste mask at source resolution, and the decoded working image
 * brought back to the crop's size with the source's detail (detail.ts) and composited, so pixels outside the
 * mask stay bit-identical and alpha is always the source's.
 */
import { featherMask } from '../engine/masks';
import { compositeInto, resizeMask, type RgbaImage } from '../imaging/image';
import { upsampleWithDetail } from './detail';
import type { Geometry } from './geometry';

/**
 * The mask the edit is pasted through, source-sized [W * H]: the user's mask feathered inwards by one pixel (a
 * soft seam, still exactly 0 wherever the user's mask is 0), widened by the engine's reach when spread > 0 (the
 * latent-grid union of the spread masks). Without a mask: the crop rectangle, or null for the whole image.
 */
export function pasteMask(
  union: Float32Array | null,
  reach: { data: Float32Array; width: number; height: number } | null,
  spread: number,
  W: number,
  H: number,
  g: Geometry,
): Float32Array | null {
  if (!union) return g.width === W && g.height === H ? null : cropRect(W, H, g);
  const feathered = featherMask(union, W, H, 1);
  const out = new Float32Array(W * H);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(union[i], feathered[i]);
  if (spread > 0 && reach) {
    const up = resizeMask(reach.data, reach.width, reach.height, g.width, g.height);
    for (let y = 0; y < g.height; y++) {
      for (let x = 0; x < g.width; x++) {
        const i = (g.y + y) * W + g.x + x;
        out[i] = Math.max(out[i], up[y * g.width + x]);
      }
    }
  }
  return out;
}

function cropRect(W: number, H: number, g: Geometry): Float32Array {
  const out = new Float32Array(W * H);
  for (let y = g.y; y < g.y + g.height; y++) out.fill(1, y * W + g.x, y * W + g.x + g.width);
  return out;
}

/**
 * The decoded working image `work` back into `source` through `mask`: at the crop's size with the detail of
 * `crop` restored (`cropWork`: the crop at the working size, as the engine saw it).
 */
export async function placeEdit(source: RgbaImage, work: RgbaImage, crop: RgbaImage, cropWork: RgbaImage, g: Geometry, mask: Float32Array | null): Promise<RgbaImage> {
  return compositeInto(source, await upsampleWithDetail(work, crop, cropWork), g.x, g.y, mask);
}
