/**
 * The image side of an edit before the engine: where the model works (geometry.ts) and what it gets there, the
 * crop resampled to the working size and each region's mask at that size.
 */
import { cropImage, resizeImage, resizeMask, type RgbaImage } from '../imaging/image';
import { cropMask, maskBounds, maskUnion, planGeometry, type Geometry } from './geometry';

export interface PrepareInput {
  source: RgbaImage;
  /** each region's soft mask at the source's size, [H * W] in [0, 1]; null = everywhere */
  masks: (Float32Array | null)[];
  /** the side of the square area the model works at (its native size unless the caller overrides it) */
  workSide: number;
  /** the working size's sides are multiples of this */
  sizeMultiple: number;
}

export interface Prepared {
  geometry: Geometry;
  /** the crop at the working size: what the engine encodes, and what detail transfer measures the edit against */
  cropWork: RgbaImage;
  /** each region's mask over the crop at the working size */
  workMasks: (Float32Array | null)[];
}

export async function prepareEdit({ source, masks, workSide, sizeMultiple }: PrepareInput): Promise<Prepared> {
  const { width: W, height: H } = source;
  const union = maskUnion(masks, W, { x: 0, y: 0, width: W, height: H });
  const box = union && maskBounds(union, W, H);
  if (union && !box) throw new Error('the mask is empty: paint or select the area to edit, or send no mask for a global edit');
  const g = planGeometry(W, H, box, workSide, sizeMultiple);
  const { workWidth: ww, workHeight: wh } = g;
  const cropWork = await resizeImage(cropImage(source, g.x, g.y, g.width, g.height), ww, wh);
  const workMasks = masks.map((m) => m && resizeMask(cropMask(m, W, g), g.width, g.height, ww, wh));
  return { geometry: g, cropWork, workMasks };
}
