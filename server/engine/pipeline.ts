/**
 * The edit loop: InstructPix2Pix dual guidance (engine.md 1.6) with EMILIE latent iteration, Blended Latent
 * Diffusion blending with progressive mask shrinking, iEdit/SDEdit strength and LayerDiffusion-style regions,
 * composed from the pure pieces in schedules/samplers/guidance/masks/rng (engine.md section 6).
 *
 * Spaces: x is the noisy latent in sigma space (x = z0 + sigma * n, z0 scaled by the VAE factor s);
 * the image conditioning c is unscaled (c = E(x).mean, or z0_prev / s when continuing from a stored edit).
 */
import type { Pix2PixModel } from './models';
import { samplingSchedule, strengthStartIndex, modelInputScale, type SamplerName, type Spacing } from './schedules';
import { stepFor, usesNoise } from './samplers';
import { combineGuidance, pix2pixBatchLayout } from './guidance';
import { downsampleMask, featherMask, progressiveMasks, maskForStep, spreadMask } from './masks';
import { seededNoise, type NoiseSource } from './rng';
import {
  compositeInto,
  cropImage,
  fromModelTensor,
  resizeImage,
  resizeMask,
  toModelTensor,
  type RgbaImage,
} from '../imaging/image';

export type Locality = 'guidance' | 'blend' | 'both';

export interface EditOptions {
  steps: number;
  /** s_T: how strongly to follow the instruction */
  textScale: number;
  /** s_I: how strongly to stay close to the source image */
  imageScale: number;
  sampler: SamplerName;
  /** defaults to the model's scheduler config */
  spacing?: Spacing;
  locality: Locality;
  /** 0 = exactly the mask, 1 = the whole image */
  spread: number;
  /** 1 = start from pure noise (InstructPix2Pix); below 1 = start from the noised source (SDEdit/iEdit) */
  strength: number;
  variations: number;
  seed: number;
  /** Blended Latent Diffusion's progressive mask shrinking (dilations 7, 5, 3, then the mask) */
  progressiveShrink: boolean;
  /** emit a preview every k steps (0 = never) */
  previewEvery: number;
  /** largest UNet batch; variations are chunked to fit */
  maxBatch: number;
  /** working area as the side of an equal-area square, in pixels; 0 = the model's native size */
  workSide: number;
}

export const DEFAULT_EDIT_OPTIONS: Readonly<EditOptions> = Object.freeze({
  steps: 20,
  textScale: 7.5,
  imageScale: 1.5,
  sampler: 'euler_ancestral',
  locality: 'both',
  spread: 0,
  strength: 1,
  variations: 1,
  seed: 0,
  progressiveShrink: true,
  previewEvery: 5,
  maxBatch: 12,
  workSide: 0,
});

/** Where in the source the model works, and at what size. */
export interface Geometry {
  x: number;
  y: number;
  width: number;
  height: number;
  workWidth: number;
  workHeight: number;
}

/** A result's latent as stored for latent iteration: scaled z0 [4, h, w] plus the geometry it belongs to. */
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

export interface Progress {
  step: number;
  totalSteps: number;
  variation: number;
  preview?: RgbaImage;
}

export interface EditHooks {
  /** injected noise (tests, parity); default: seeded per variation from options.seed + k */
  noise?: NoiseSource;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
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
}

export class EditCancelledError extends Error {
  constructor() {
    super('edit cancelled');
    this.name = 'EditCancelledError';
  }
}

interface Box {
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
 * large image, a context crop around the mask (so the edit gets native resolution where it matters).
 */
export function planGeometry(width: number, height: number, box: Box | null, native: number, multiple: number): Geometry {
  const whole = (): Geometry => {
    const [workWidth, workHeight] = fitToArea(width, height, native, multiple);
    return { x: 0, y: 0, width, height, workWidth, workHeight };
  };
  if (!box || width * height <= 2.25 * native * native) return whole();
  // context: the mask box grown by half its size each side, at least the native size, inside the image
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

function validate(source: EditSource, regions: Region[], o: EditOptions): void {
  const { width, height } = source.image;
  if (regions.length === 0) throw new Error('an edit needs at least one region (instruction and optional mask)');
  for (const [i, r] of regions.entries()) {
    if (r.mask && r.mask.length !== width * height) {
      throw new Error(`region ${i}: mask has ${r.mask.length} values, the source is ${width}x${height} (${width * height})`);
    }
  }
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`steps must be a positive integer, got ${o.steps}`);
  if (!(o.strength > 0 && o.strength <= 1)) throw new Error(`strength must be in (0, 1], got ${o.strength}`);
  if (!(o.spread >= 0 && o.spread <= 1)) throw new Error(`spread must be in [0, 1], got ${o.spread}`);
  if (!Number.isInteger(o.variations) || o.variations < 1) throw new Error(`variations must be a positive integer, got ${o.variations}`);
  if (!Number.isInteger(o.workSide) || o.workSide < 0 || o.workSide > 2048) throw new Error(`workSide must be an integer in [0, 2048] (0 = native), got ${o.workSide}`);
}

/** Cheap preview of a predicted x0 (scaled latent [4,h,w]): the model's fitted linear map, else the decoder. */
async function previewImage(model: Pix2PixModel, x0: Float32Array, h: number, w: number): Promise<RgbaImage> {
  const s = model.info.scalingFactor;
  const map = model.info.latentToRgb;
  const n = h * w;
  if (!map) {
    const unscaled = x0.map((v) => v / s);
    const img = await model.decode(unscaled, [1, 4, h, w]);
    return fromModelTensor(img.data, img.dims[3], img.dims[2]);
  }
  const rgb = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const k = map[c];
    for (let i = 0; i < n; i++) {
      rgb[c * n + i] = k[0] * (x0[i] / s) + k[1] * (x0[n + i] / s) + k[2] * (x0[2 * n + i] / s) + k[3] * (x0[3 * n + i] / s) + k[4];
    }
  }
  return fromModelTensor(rgb, w, h);
}

/**
 * Run one edit. Returns one result per variation, each with its stored latent and the composited image.
 * Throws EditCancelledError if `hooks.signal` aborts between steps.
 */
export async function edit(
  model: Pix2PixModel,
  source: EditSource,
  regions: Region[],
  options: Partial<EditOptions>,
  hooks: EditHooks = {},
): Promise<EditResult> {
  const o: EditOptions = { ...DEFAULT_EDIT_OPTIONS, ...options };
  validate(source, regions, o);
  const { info } = model;
  const s = info.scalingFactor;
  const { width: W, height: H } = source.image;

  // -- geometry and composite mask (source resolution)
  const anyGlobal = regions.some((r) => !r.mask);
  let unionMask: Float32Array | null = null;
  if (!anyGlobal) {
    unionMask = new Float32Array(W * H);
    for (const r of regions) for (let i = 0; i < unionMask.length; i++) unionMask[i] = Math.max(unionMask[i], r.mask![i]);
  }
  const box = unionMask ? maskBounds(unionMask, W, H) : null;
  if (unionMask && !box) throw new Error('the mask is empty: paint or select the area to edit, or send no mask for a global edit');
  const geometry = planGeometry(W, H, box, o.workSide || info.nativeSize, info.sizeMultiple);
  const { workWidth: ww, workHeight: wh } = geometry;
  const f = info.vaeScaleFactor;
  const lw = ww / f;
  const lh = wh / f;
  const n = 4 * lh * lw;

  // -- image conditioning c (unscaled) and the scaled source latent for blending / strength
  let c: Float32Array;
  let conditioning: EditResult['conditioning'];
  if (source.kind === 'latent' && sameGeometry(source.latent.geometry, geometry)) {
    c = source.latent.data.map((v) => v / s); // EMILIE latent iteration: c = z0_prev / s
    conditioning = 'latent';
  } else {
    const crop = cropImage(source.image, geometry.x, geometry.y, geometry.width, geometry.height);
    const work = await resizeImage(crop, ww, wh);
    c = (await model.encode(toModelTensor(work), [1, 3, wh, ww])).data;
    conditioning = 'pixels';
  }
  const zSrc = c.map((v) => v * s);

  // -- latent masks per region (spread widens them), the blend mask and its progressive variants
  const latentMask = (mask: Float32Array | null): Float32Array | null => {
    if (!mask) return null;
    const cropMask = cropMaskTo(mask, W, geometry);
    const work = resizeMask(cropMask, geometry.width, geometry.height, ww, wh);
    return spreadMask(downsampleMask(work, ww, wh, f), lw, lh, o.spread);
  };
  const regionMasks = regions.map((r) => latentMask(r.mask));
  const guidanceMasks = o.locality === 'blend' && regions.length === 1 ? [null] : regionMasks;
  let blendMasks: Float32Array[] | null = null;
  if (o.locality !== 'guidance' && !anyGlobal) {
    const union = new Float32Array(lh * lw);
    for (const m of regionMasks) for (let i = 0; i < union.length; i++) union[i] = Math.max(union[i], m![i]);
    blendMasks = o.progressiveShrink ? progressiveMasks(union, lw, lh) : [union];
  }

  // -- text states: [instruction_1..R, ""]
  const prompts = [...regions.map((r) => r.instruction), ''];
  const text = await model.encodeText(prompts);
  const [, seqLen, dim] = text.dims;
  const layout = pix2pixBatchLayout(regions.length);
  const slots = layout.length;

  // -- schedule
  const schedule = samplingSchedule(info.training, o.sampler, o.steps, o.spacing ?? (o.sampler === 'ddim' ? 'leading' : info.defaultSpacing));
  const { sigmas, timesteps } = schedule;
  const start = strengthStartIndex(o.steps, o.strength);
  const finalSigma = sigmas[sigmas.length - 1];
  const step = stepFor(o.sampler);
  const perChunk = Math.max(1, Math.floor(o.maxBatch / slots));
  const totalSteps = (o.steps - start) * Math.ceil(o.variations / perChunk);
  let stepsDone = 0;

  const pasteMask = compositeMask(unionMask, regionMasks, o.spread, W, H, geometry, lw, lh); // same for every variation
  const variations: EditVariation[] = [];
  for (let first = 0; first < o.variations; first += perChunk) {
    const count = Math.min(perChunk, o.variations - first);
    const noises = Array.from({ length: count }, (_, k) => hooks.noise ?? seededNoise(o.seed + first + k));
    const initial = noises.map((src) => src.normal(n));
    const xs: Float32Array[] = initial.map((eps) => {
      const x = new Float32Array(n);
      if (o.strength >= 1) for (let i = 0; i < n; i++) x[i] = eps[i] * schedule.initNoiseSigma;
      else for (let i = 0; i < n; i++) x[i] = zSrc[i] + sigmas[start] * eps[i];
      return x;
    });

    // text states for the whole chunk are constant: [slots x count, seq, dim]
    const batch = count * slots;
    const ehs = new Float32Array(batch * seqLen * dim);
    for (let v = 0; v < count; v++) {
      layout.forEach((slot, j) => {
        const prompt = slot.prompt ?? regions.length; // null = the empty prompt, last in `prompts`
        ehs.set(text.data.subarray(prompt * seqLen * dim, (prompt + 1) * seqLen * dim), (v * slots + j) * seqLen * dim);
      });
    }

    for (let i = start; i < o.steps; i++) {
      if (hooks.signal?.aborted) throw new EditCancelledError();
      const sigma = sigmas[i];
      const sigmaNext = sigmas[i + 1];
      const scale = modelInputScale(sigma);
      const sample = new Float32Array(batch * 2 * n); // [batch, 8, h, w]: noisy/sqrt(s^2+1) || image latent
      for (let v = 0; v < count; v++) {
        layout.forEach((slot, j) => {
          const base = (v * slots + j) * 2 * n;
          for (let k = 0; k < n; k++) sample[base + k] = xs[v][k] * scale;
          if (!slot.zeroImage) sample.set(c, base + n);
        });
      }
      const eps = await model.unet(sample, [batch, 8, lh, lw], timesteps[i], ehs, [batch, seqLen, dim]);
      const blend = blendMasks ? maskForStep(blendMasks, i - start, o.steps - start) : null;
      for (let v = 0; v < count; v++) {
        const guided = combineGuidance(eps.subarray(v * slots * n, (v + 1) * slots * n), regions.length, n, {
          textScale: o.textScale,
          imageScale: o.imageScale,
          masks: guidanceMasks,
        });
        const denoised = new Float32Array(n);
        for (let k = 0; k < n; k++) denoised[k] = xs[v][k] - sigma * guided[k];
        const z = usesNoise(o.sampler) ? noises[v].normal(n) : undefined;
        let x = step(xs[v], denoised, sigma, sigmaNext, z);
        if (blend) {
          // Blended Latent Diffusion: outside the mask, the source noised to the next level with the initial noise
          // (diffusers' inpaint convention), and after the last step the clean source (whose final latent is zSrc,
          // also for DDIM's non-zero final sigma)
          const plane = lh * lw;
          const last = i === o.steps - 1;
          const clean = Math.sqrt(1 + finalSigma * finalSigma);
          for (let k = 0; k < n; k++) {
            const m = blend[k % plane];
            const background = last ? zSrc[k] * clean : zSrc[k] + sigmaNext * initial[v][k];
            x[k] = m * x[k] + (1 - m) * background;
          }
        }
        xs[v] = x;
        if (v === 0 && o.previewEvery > 0 && hooks.onProgress && (i - start + 1) % o.previewEvery === 0 && i < o.steps - 1) {
          hooks.onProgress({ step: ++stepsDone, totalSteps, variation: first, preview: await previewImage(model, denoised, lh, lw) });
        } else if (v === 0) {
          hooks.onProgress?.({ step: ++stepsDone, totalSteps, variation: first });
        }
      }
    }

    // -- decode and composite each variation
    for (let v = 0; v < count; v++) {
      const z0 = xs[v].map((val) => val / Math.sqrt(1 + finalSigma * finalSigma));
      const decoded = await model.decode(z0.map((val) => val / s), [1, 4, lh, lw]);
      const work = fromModelTensor(decoded.data, ww, wh);
      const back = await resizeImage(work, geometry.width, geometry.height);
      variations.push({
        seed: o.seed + first + v,
        latent: { data: z0, height: lh, width: lw, geometry },
        decoded: work,
        image: compositeInto(source.image, back, geometry.x, geometry.y, pasteMask),
      });
    }
  }
  return { variations, conditioning, geometry };
}

function cropMaskTo(mask: Float32Array, W: number, g: Geometry): Float32Array {
  const out = new Float32Array(g.width * g.height);
  for (let y = 0; y < g.height; y++) out.set(mask.subarray((g.y + y) * W + g.x, (g.y + y) * W + g.x + g.width), y * g.width);
  return out;
}

/**
 * The mask used to paste the edit back at source resolution: the user's mask feathered inwards (so nothing
 * outside it changes), widened by the spread mask when spread > 0. Null = take the edit everywhere in the crop.
 */
function compositeMask(
  union: Float32Array | null,
  regionMasks: (Float32Array | null)[],
  spread: number,
  W: number,
  H: number,
  g: Geometry,
  lw: number,
  lh: number,
): Float32Array | null {
  if (!union) return g.width === W && g.height === H ? null : cropRectMask(W, H, g);
  // feathered inwards by one pixel: soft seam, and still exactly 0 wherever the user's mask is 0
  const feathered = featherMask(union, W, H, 1);
  const out = new Float32Array(W * H);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(union[i], feathered[i]);
  if (spread > 0) {
    const latentUnion = new Float32Array(lw * lh);
    for (const m of regionMasks) for (let i = 0; i < latentUnion.length; i++) latentUnion[i] = Math.max(latentUnion[i], m![i]);
    const up = resizeMask(latentUnion, lw, lh, g.width, g.height);
    for (let y = 0; y < g.height; y++) {
      for (let x = 0; x < g.width; x++) {
        const i = (g.y + y) * W + g.x + x;
        out[i] = Math.max(out[i], up[y * g.width + x]);
      }
    }
  }
  return out;
}

function cropRectMask(W: number, H: number, g: Geometry): Float32Array {
  const out = new Float32Array(W * H);
  for (let y = g.y; y < g.y + g.height; y++) out.fill(1, y * W + g.x, y * W + g.x + g.width);
  return out;
}

