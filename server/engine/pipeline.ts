/**
 * One edit on tensors (engine.md section 6; tools/tiny-model/reference_pipeline.py is the same algorithm in
 * Python): the family's conditioning and schedule, guidance and Blended Latent Diffusion as wrappers, the
 * sampler's loop, the clean latents and their decoded images. Geometry and compositing are server/edit's.
 */
import type { EditOptionsParsed } from '../../shared/protocol';
import { withBlend } from './blend';
import { withGuidance } from './denoiser';
import { gridSize, type EngineStart, type ImageTensor, type LatentGrid, type ModelAdapter, type ModelInfo } from './family';
import { localityMasks } from './masks';
import { batchNoise, seededNoise, type NoiseSource } from './rng';
import { sample, type StepReport } from './sample';
import { SAMPLERS, type Sampler } from './samplers';
import { fromStep, strengthStartIndex, type Spacing } from './schedules';

/** The request's options (shared/protocol.ts is their one source) with the seed the server picked. */
export type EditOptions = Omit<EditOptionsParsed, 'seed'> & { seed: number };

/** Server-side knobs no request sets. */
export interface EngineLimits {
  /** largest network batch; variations are chunked to fit */
  maxBatch: number;
  /** working area as the side of an equal-area square in pixels; 0 = the model's native size (server/edit) */
  workSide: number;
  /** timestep spacing; the model's when absent */
  spacing?: Spacing;
  /** Blended Latent Diffusion's binary latent masks (threshold 0.5) instead of area-averaged soft ones */
  binaryMasks: boolean;
}

export const DEFAULT_ENGINE_LIMITS: Readonly<EngineLimits> = Object.freeze({ maxBatch: 12, workSide: 0, binaryMasks: false });

export interface EngineRegion {
  instruction: string;
  /** soft mask at the working size [height * width] in [0, 1]; null = everywhere */
  mask: Float32Array | null;
}

export interface EngineInput {
  /** the working size: multiples of the model's sizeMultiple */
  width: number;
  height: number;
  start: EngineStart;
  regions: EngineRegion[];
  /** extra images the instruction refers to ("make the mug look like this"), each at its own size */
  references?: ImageTensor[];
  options: EditOptions;
  limits?: Partial<EngineLimits>;
}

export interface EngineVariation {
  seed: number;
  /** the clean latent [C, h, w] (stored for latent iteration) */
  latent: Float32Array;
  decoded: ImageTensor;
}

export interface EngineResult {
  variations: EngineVariation[];
  /** 'latent' = continued from a stored latent (nothing decoded or re-encoded); 'pixels' = encoded an image */
  conditioning: 'latent' | 'pixels';
  grid: LatentGrid;
  /** on the latent grid, where the edit may reach (the regions' masks after spread); null = everywhere */
  reach: Float32Array | null;
}

export interface Progress {
  /** 1-based, over all variation chunks */
  step: number;
  totalSteps: number;
  /** the first variation of the chunk being sampled */
  variation: number;
  /** every `previewEvery` steps: the predicted clean image of that variation */
  preview?: ImageTensor;
}

export interface EngineHooks {
  /** the noise of variation k on this grid (tests, parity, --init-noise); default: seeded from options.seed + k */
  noise?: (variation: number, seed: number, grid: LatentGrid) => NoiseSource;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/** Run one edit. Throws sample.EditCancelledError if `hooks.signal` aborts between steps. */
export async function edit(model: ModelAdapter, input: EngineInput, hooks: EngineHooks = {}): Promise<EngineResult> {
  const o = input.options;
  const limits = { ...DEFAULT_ENGINE_LIMITS, ...input.limits };
  const grid = checkInput(model.info, input);
  const n = gridSize(grid);
  const sampler = samplerFor(model.info, o.sampler);
  // SDEdit strength: the last floor(steps * strength) steps of the schedule, from the noised source
  const start = model.strengthStart?.(o.steps, o.strength) ?? strengthStartIndex(o.steps, o.strength);
  const schedule = fromStep(model.schedule(sampler, o.steps, grid, limits.spacing), start);
  const masks = localityMasks(input.regions.map((r) => r.mask), input.width, input.height, model.info.latentFactor, { ...o, binaryMasks: limits.binaryMasks });
  const guidance = model.guidance(input.regions.length, { textScale: o.textScale ?? model.info.defaultTextScale, imageScale: o.imageScale, masks: masks.guidance });
  const cond = await model.condition(input.start, input.regions.map((r) => r.instruction), grid, schedule, input.references ?? []);
  const denoise = withGuidance(cond.denoiser, guidance, n);
  const perChunk = Math.max(1, Math.floor(limits.maxBatch / guidance.slots.length));
  const stepsRun = schedule.timesteps.length;
  let done = 0;
  const onStep = (variation: number) => async ({ index, denoised }: StepReport) => {
    if (!hooks.onProgress) return;
    const previewDue = o.previewEvery > 0 && (index + 1) % o.previewEvery === 0 && index < stepsRun - 1;
    const preview = previewDue ? await model.preview(denoised.subarray(0, n), grid) : undefined;
    hooks.onProgress({ step: ++done, totalSteps: stepsRun * Math.ceil(o.variations / perChunk), variation, ...(preview && { preview }) });
  };

  const variations: EngineVariation[] = [];
  for (let first = 0; first < o.variations; first += perChunk) {
    const seeds = Array.from({ length: Math.min(perChunk, o.variations - first) }, (_, k) => o.seed + first + k);
    const noise = batchNoise(seeds.map((seed, k) => hooks.noise?.(first + k, seed, grid) ?? seededNoise(seed)));
    const initial = noise.normal(seeds.length * n);
    const x = o.strength >= 1 ? initial.map((v) => v * schedule.initNoiseSigma) : schedule.process.noised(cond.source, initial, schedule.sigmas[0]);
    const stepper = masks.blend ? withBlend(sampler, { masks: masks.blend, source: cond.source, noise: initial, schedule }) : sampler;
    const lane = model.joinBatch?.(); // shares the network's runs with other edits sampling now, step by step
    let final: Float32Array;
    try {
      final = await sample(stepper, denoise, x, schedule.sigmas, { noise, signal: hooks.signal, onStep: onStep(first) });
    } finally {
      lane?.leave();
    }
    for (const [v, seed] of seeds.entries()) {
      const latent = final.subarray(v * n, (v + 1) * n).map((value) => value * schedule.finalScale);
      variations.push({ seed, latent, decoded: await model.decode(latent, grid) });
    }
  }
  return { variations, conditioning: cond.conditioning, grid, reach: masks.reach };
}

function samplerFor(info: ModelInfo, name: EditOptions['sampler']): Sampler {
  const chosen = name ?? info.defaultSampler;
  if (!info.samplers.includes(chosen)) {
    throw new Error(`the ${info.family} model ${info.name} cannot sample with '${chosen}': use one of ${info.samplers.join(', ')}`);
  }
  return SAMPLERS[chosen];
}

/** Shape checks at the engine's boundary (the request was validated before); returns the latent grid. */
function checkInput(info: ModelInfo, input: EngineInput): LatentGrid {
  const { width, height, start, regions } = input;
  if (!(width > 0 && height > 0 && width % info.sizeMultiple === 0 && height % info.sizeMultiple === 0)) {
    throw new RangeError(`the working size ${width}x${height} must be positive multiples of ${info.sizeMultiple}`);
  }
  if (regions.length === 0) throw new Error('an edit needs at least one region (instruction and optional mask)');
  for (const [i, r] of regions.entries()) {
    if (r.mask && r.mask.length !== width * height) {
      throw new RangeError(`region ${i}: mask has ${r.mask.length} values, the working size is ${width}x${height} (${width * height})`);
    }
  }
  if (start.kind === 'image' && (start.image.width !== width || start.image.height !== height || start.image.data.length !== 3 * width * height)) {
    throw new RangeError(`the start image is ${start.image.width}x${start.image.height}, the working size ${width}x${height}`);
  }
  return { channels: info.latentChannels, height: height / info.latentFactor, width: width / info.latentFactor };
}
