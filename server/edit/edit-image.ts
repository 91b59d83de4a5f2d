/**
 * One edit of an image: the step around the engine. Plans where the model works (geometry.ts, prepare.ts), hands
 * the engine tensors at the working size (the crop resampled, the masks, or the stored latent when it belongs to
 * the same geometry), and composites what comes back into the full-resolution source with the source's detail
 * restored where the working size could not hold it (compose.ts, detail.ts). The image side of a large layer
 * runs off the main thread (image-steps.ts).
 */
import { editOptionsSchema, formatIssues, type EditOptionsInput } from '../../shared/protocol';
import type { TensorEngine } from '../engine/local';
import type { EngineStart, ImageTensor } from '../engine/family';
import type { EditOptions, EngineHooks, EngineLimits } from '../engine/pipeline';
import type { EngineTimings } from '../engine/protocol';
import { cropImage, fromModelTensor, toModelTensor, type RgbaImage } from '../imaging/image';
import { sameGeometry, type Geometry } from './geometry';
import { imageStepsFor, type ImageSteps } from './image-steps';

/** A result's latent as stored for latent iteration: the clean latent [C, h, w] and the geometry it belongs to. */
export interface StoredLatent {
  data: Float32Array;
  height: number;
  width: number;
  geometry: Geometry;
}

export type EditSource = (
  | { kind: 'pixels'; image: RgbaImage }
  /** continue from a stored edit: `image` is that edit's result pixels (for compositing) */
  | { kind: 'latent'; image: RgbaImage; latent: StoredLatent }
) & {
  /** images the instruction refers to, each at its own size (cropped to the model's size multiple, centred) */
  references?: RgbaImage[];
};

/** The centred crop of `image` whose sides are multiples of `multiple` (the pipeline's floor to multiples). */
function referenceTensor(image: RgbaImage, multiple: number, index: number): ImageTensor {
  const [w, h] = [image.width - (image.width % multiple), image.height - (image.height % multiple)];
  if (w === 0 || h === 0) throw new Error(`reference image ${index + 1} is ${image.width}x${image.height}: both sides must be at least ${multiple} pixels`);
  const crop = w === image.width && h === image.height ? image : cropImage(image, (image.width - w) >> 1, (image.height - h) >> 1, w, h);
  return { data: toModelTensor(crop), width: w, height: h };
}

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
  /** where the image side runs; by default the image workers for layers larger than the working area (image-steps.ts) */
  imageSteps?: ImageSteps;
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
  const workSide = limits.workSide || info.nativeSize;
  const steps = hooks.imageSteps ?? imageStepsFor(W * H, workSide * workSide);
  const pixels = await steps.share({ source: source.image, masks: regions.map((r) => r.mask) });
  const { geometry: g, cropWork, workMasks } = await steps.prepare({ ...pixels, workSide, sizeMultiple: info.sizeMultiple });
  const { workWidth: ww, workHeight: wh } = g;

  const start: EngineStart =
    source.kind === 'latent' && sameGeometry(source.latent.geometry, g)
      ? { kind: 'latent', latent: source.latent.data }
      : { kind: 'image', image: { data: toModelTensor(cropWork), width: ww, height: wh } };
  const workRegions = regions.map((r, i) => ({ instruction: r.instruction, mask: workMasks[i] }));
  const onProgress = hooks.onProgress;
  const { result, timings } = await engine.edit(
    {
      width: ww,
      height: wh,
      start,
      regions: workRegions,
      references: (source.references ?? []).map((r, i) => referenceTensor(r, info.sizeMultiple, i)),
      options: o,
      limits,
    },
    {
      noise: hooks.noise,
      signal: hooks.signal,
      onProgress: onProgress && (({ preview, ...p }) => onProgress({ ...p, ...(preview && { preview: fromModelTensor(preview.data, preview.width, preview.height) }) })),
    },
  );

  const { grid } = result;
  const reach = result.reach && { data: result.reach, width: grid.width, height: grid.height };
  const variations = await Promise.all(
    result.variations.map(async (v): Promise<EditVariation> => {
      const decoded = fromModelTensor(v.decoded.data, v.decoded.width, v.decoded.height);
      return {
        seed: v.seed,
        latent: { data: v.latent, height: grid.height, width: grid.width, geometry: g },
        decoded,
        image: await steps.place({ ...pixels, geometry: g, cropWork, work: decoded, reach, spread: o.spread }),
      };
    }),
  );
  return { variations, conditioning: result.conditioning, geometry: g, timings };
}
