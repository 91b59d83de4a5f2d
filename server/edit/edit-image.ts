/**
 * One edit of an image: the step around the engine. Plans where the model works (geometry.ts), hands the engine
 * tensors at the working size (the crop resampled, the masks, or the stored latent when it belongs to the same
 * geometry), and composites what comes back into the full-resolution source with the source's detail restored
 * where the working size could not hold it (compose.ts, detail.ts).
 */
import { editOptionsSchema, formatIssues, type EditOptionsInput } from '../../shared/protocol';
import type { TensorEngine } from '../engine/local';
import type { EngineStart } from '../engine/family';
import type { EditOptions, EngineHooks, EngineLimits } from '../engine/pipeline';
import type { EngineTimings } from '../engine/protocol';
import { cropImage, fromModelTensor, resizeImage, resizeMask, toModelTensor, type RgbaImage } from '../imaging/image';
import { pasteMask, placeEdit } from './compose';
import { cropMask, maskBounds, planGeometry, sameGeometry, type Geometry } from './geometry';

/** A result's latent as stored for latent iteration: the clean latent [C, h, w] and the geometry it belongs to. */
export interface StoredLatent {
  data: Float32Array;
  height: number;
  width: number;
  geometry: Geometry;
}

export type EditSource =
  | { kind: 'pixels'; image: RgbaImage }
  /** continue from a stored edit: `image` is that edit's result pixels (for compositing) */
  | { kind: 'latent'; image: RgbaImage; latent: StoredLatent };

export interface Region {
  instruction: string;
  /** soft mask at the source's size, [H*W] in [0,1]; null = everywhere */
  mask: Float32Array | null;
}

export interface ImageProgress {
  step: number;
  totalSteps: number;
  variation: number;
  preview?: RgbaImage;
}

export interface EditImageHooks extends Omit<EngineHooks, 'onProgress'> {
  onProgress?: (p: ImageProgress) => void;
}

export interface EditVariation {
  seed: number;
  latent: StoredLatent;
  /** the edit composited into the full-resolution source */
  image: RgbaImage;
  /** the decoded edit at working resolution, before compositing (what the model made of the whole crop) */
  decoded: RgbaImage;
}

export interface EditResult {
  variations: EditVariation[];
  /** 'latent' = continued from the stored latent (no decode/encode); 'pixels' = encoded the source */
  conditioning: 'latent' | 'pixels';
  geometry: Geometry;
  timings: EngineTimings;
}

/** Options as a client sends them, checked by the protocol's schema; the seed defaults to 0. */
export function editOptions(input: EditOptionsInput): EditOptions {
  const parsed = editOptionsSchema.safeParse(input);
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  return { ...parsed.data, seed: parsed.data.seed ?? 0 };
}

export async function editImage(
  engine: TensorEngine,
  source: EditSource,
  regions: Region[],
  options: EditOptionsInput,
  hooks: EditImageHooks = {},
  limits: Partial<EngineLimits> = {},
): Promise<EditResult> {
  const o = editOptions(options);
  const { info } = engine;
  const { width: W, height: H } = source.image;
  if (regions.length === 0) throw new Error('an edit needs at least one region (instruction and optional mask)');
  for (const [i, r] of regions.entries()) {
    if (r.mask && r.mask.length !== W * H) throw new Error(`region ${i}: mask has ${r.mask.length} values, the source is ${W}x${H} (${W * H})`);
  }
  let union: Float32Array | null = null;
  if (regions.every((r) => r.mask)) {
    union = new Float32Array(W * H);
    for (const r of regions) for (let i = 0; i < union.length; i++) union[i] = Math.max(union[i], r.mask![i]);
  }
  const box = union ? maskBounds(union, W, H) : null;
  if (union && !box) throw new Error('the mask is empty: paint or select the area to edit, or send no mask for a global edit');
  const g = planGeometry(W, H, box, limits.workSide || info.nativeSize, info.sizeMultiple);
  const { workWidth: ww, workHeight: wh } = g;

  const crop = cropImage(source.image, g.x, g.y, g.width, g.height);
  const cropWork = await resizeImage(crop, ww, wh);
  const start: EngineStart =
    source.kind === 'latent' && sameGeometry(source.latent.geometry, g)
      ? { kind: 'latent', latent: source.latent.data }
      : { kind: 'image', image: { data: toModelTensor(cropWork), width: ww, height: wh } };
  const workRegions = regions.map((r) => ({ instruction: r.instruction, mask: r.mask && resizeMask(cropMask(r.mask, W, g), g.width, g.height, ww, wh) }));
  const onProgress = hooks.onProgress;
  const { result, timings } = await engine.edit(
    { width: ww, height: wh, start, regions: workRegions, options: o, limits },
    {
      noise: hooks.noise,
      signal: hooks.signal,
      onProgress: onProgress && (({ preview, ...p }) => onProgress({ ...p, ...(preview && { preview: fromModelTensor(preview.data, preview.width, preview.height) }) })),
    },
  );

  const { grid } = result;
  const reach = result.reach && { data: result.reach, width: grid.width, height: grid.height };
  const mask = pasteMask(union, reach, o.spread, W, H, g); // the same for every variation
  const variations: EditVariation[] = [];
  for (const v of result.variations) {
    const decoded = fromModelTensor(v.decoded.data, v.decoded.width, v.decoded.height);
    variations.push({
      seed: v.seed,
      latent: { data: v.latent, height: grid.height, width: grid.width, geometry: g },
      decoded,
      image: await placeEdit(source.image, decoded, crop, cropWork, g, mask),
    });
  }
  return { variations, conditioning: result.conditioning, geometry: g, timings };
}
