/**
 * The model-family seam. A family (InstructPix2Pix today) is one adapter that owns everything specific to its
 * models: which components and tensors a folder holds, its tokenizer and text encoding, how a start image or a
 * stored latent becomes its conditioning, its schedule and latent layout, how its network becomes a denoiser
 * and how it guides, and decoding. The loop (sample.ts), the samplers and the wrappers know none of that.
 * families.ts picks the family from model_index.json's `_class_name`.
 */
import * as fs from 'node:fs';
import type { z } from 'zod';
import type { BatchLane } from './batching';
import type { SlotDenoiser } from './denoiser';
import type { Guidance, GuidanceOptions } from './guidance';
import type { Device, Log, Provider, RunTimer, TensorSpec } from './ort';
import type { Sampler, SamplerName } from './samplers';
import type { Schedule, Spacing } from './schedules';

/** An image as the engine takes and returns it: RGB planes [3, height, width], values in about [-1, 1]. */
export interface ImageTensor {
  data: Float32Array;
  width: number;
  height: number;
}

/** The latent of one working size: [channels, height, width], row-major. */
export interface LatentGrid {
  channels: number;
  height: number;
  width: number;
}

export const gridSize = (g: LatentGrid): number => g.channels * g.height * g.width;

export interface ModelInfo {
  dir: string;
  /** the folder's name; recorded with every edit (latent reuse checks it) */
  name: string;
  /** the family's label (families.ts) */
  family: string;
  /** model_index.json `_class_name` */
  pipeline: string;
  /** the VAE latent times this is the sampler's latent; recorded with every stored latent */
  scalingFactor: number;
  /** sampler latents are [latentChannels, H / latentFactor, W / latentFactor] for a W x H working image */
  latentChannels: number;
  latentFactor: number;
  /** the area the model was trained at, as the side of a square (pixels) */
  nativeSize: number;
  /** working sides must be multiples of this */
  sizeMultiple: number;
  /** the samplers this family's schedule and process support */
  samplers: readonly SamplerName[];
  /** what a request without a sampler gets (the model's scheduler config) */
  defaultSampler: SamplerName;
  /** the text guidance an edit without `textScale` gets: the family's diffusers pipeline default */
  defaultTextScale: number;
  /** whether edits may carry reference images (read as extra conditioning, e.g. klein's reference tokens) */
  readsReferences: boolean;
  /** one line on the schedule (`models verify`) */
  scheduleSummary: string;
  precision: 'float32' | 'float16';
  provider: Provider;
}

/** What an edit starts from, at the working size. */
export type EngineStart =
  | { kind: 'image'; image: ImageTensor }
  /** a clean latent this model made at this working size (latent iteration: nothing decoded or re-encoded) */
  | { kind: 'latent'; latent: Float32Array };

/** A start and the instructions, in the family's conditioning. */
export interface Conditioned {
  /** the clean source latent in the sampler's space [C, h, w]: the strength start and blending use it */
  source: Float32Array;
  conditioning: 'latent' | 'pixels';
  /** the network as an x0 predictor for a batch whose elements each run under one guidance slot */
  denoiser: SlotDenoiser;
}

/**
 * The layouts diffusers' pipeline of a family uses for its initial noise (`latents=`, before it multiplies by
 * init_noise_sigma) and its result (`output_type="latent"`), for outside parity checks (the CLI's --init-noise
 * and --latent-out), and the maps from and to the sampler's [C, h, w] latent of one image.
 */
export interface ReferenceLayout {
  /** e.g. '[B, 4, H/8, W/8], scaled by the VAE scaling_factor' */
  readonly noise: string;
  readonly latent: string;
  toNoise(data: Float32Array, grid: LatentGrid): Float32Array;
  fromLatent(latent: Float32Array, grid: LatentGrid): Float32Array;
  /** the [C, h, w] of one image's latent in the `latent` layout */
  latentShape(grid: LatentGrid): [number, number, number];
}

export interface ModelAdapter {
  readonly info: ModelInfo;
  readonly reference: ReferenceLayout;
  /**
   * the schedule for `steps` of `sampler` at this latent grid (flow-matching families shift it by resolution);
   * `spacing` is a server knob (the family's default when absent)
   */
  schedule(sampler: Sampler, steps: number, grid: LatentGrid, spacing?: Spacing): Schedule;
  /** the first step run at `strength` (SDEdit); schedules.strengthStartIndex when the family has no convention of its own */
  strengthStart?(steps: number, strength: number): number;
  /** how this family guides R region instructions (the slots its denoiser understands) */
  guidance(regions: number, opts: GuidanceOptions): Guidance;
  /**
   * encode the start, the instructions (a slot with prompt null gets the empty prompt) and any reference images
   * (each at its own size; a family that cannot read them refuses with a message)
   */
  condition(start: EngineStart, instructions: readonly string[], grid: LatentGrid, schedule: Schedule, references?: readonly ImageTensor[]): Promise<Conditioned>;
  /** a clean latent [C, h, w] -> the image at the working size */
  decode(latent: Float32Array, grid: LatentGrid): Promise<ImageTensor>;
  /** a cheap look at a predicted x0 (progress previews); may be smaller than the working size */
  preview(x0: Float32Array, grid: LatentGrid): Promise<ImageTensor>;
  /**
   * Membership in the network runs shared with other edits sampling at once (batching.ts), from an edit's first
   * step to its last; absent for a family that does not batch across edits.
   */
  joinBatch?(): BatchLane;
  /** each component's tensors (`models verify`) */
  describe(): Record<string, { inputs: TensorSpec[]; outputs: TensorSpec[] }>;
  release(): Promise<void>;
}

export interface LoadOptions {
  device: Device;
  timer: RunTimer;
  log: Log;
  threads?: number;
  /** most edits whose network calls may share one run (batching.ts); 1 or absent: none share */
  batch?: number;
}

export interface ModelFamily {
  /** shown in listings and errors */
  readonly label: string;
  /** the model_index.json `_class_name`s this family loads */
  readonly classNames: readonly string[];
  load(dir: string, pipeline: string, opts: LoadOptions): Promise<ModelAdapter>;
}

/** A JSON file parsed by `schema`, null when the file is absent; errors name the file and the field. */
export function readJson<T>(file: string, schema: z.ZodType<T>): T | null {
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: field '${issue.path.join('.')}' ${issue.message}`);
  }
  return parsed.data;
}
