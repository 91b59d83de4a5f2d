/**
 * The InstructPix2Pix family (Stable Diffusion 1.x UNet with 8 input channels; engine.md section 1):
 *
 * - conditioning: the image as its VAE posterior mean c (unscaled), concatenated on the UNet's channels after the
 *   noisy latent; continuing from a stored latent z0 uses c = z0 / s (EMILIE's latent iteration);
 * - latents: [4, H/8, W/8], scaled by the VAE's `scaling_factor` s; noisy latents in sigma space;
 * - schedule: the SD training schedule of scheduler_config.json, sampled like diffusers' Euler/DDIM schedulers;
 * - network: an epsilon (or v-prediction) UNet at diffusers' timesteps, text states from the CLIP text encoder;
 * - guidance: dual classifier-free guidance, batch [text_1..R, image only, unconditional].
 */
import * as path from 'node:path';
import { z } from 'zod';
import type { BatchLane } from '../batching';
import { fromEpsilon, fromVPrediction, type NetworkCall } from '../denoiser';
import { gridSize, readJson, type Conditioned, type EngineStart, type ImageTensor, type LatentGrid, type LoadOptions, type ModelAdapter, type ModelFamily, type ModelInfo, type ReferenceLayout } from '../family';
import { PIX2PIX_NAMES } from '../family-names';
import { dualGuidance, type BatchSlot, type Guidance, type GuidanceOptions } from '../guidance';
import type { Log, TensorSpec } from '../ort';
import { SAMPLERS, samplerForScheduler, type Sampler } from '../samplers';
import { SD_TRAINING_SCHEDULE, samplingSchedule, timestepLookup, type Schedule, type Spacing, type TrainingSchedule } from '../schedules';
import { loadTokenizer, type Tokenizer } from '../tokenizer';
import { Pix2PixSessions } from './sessions';

/** diffusers' StableDiffusionInstructPix2PixPipeline guidance_scale default */
export const PIX2PIX_TEXT_SCALE = 7.5;

const vaeConfigSchema = z.looseObject({
  scaling_factor: z.number().positive().optional(),
  block_out_channels: z.array(z.number().int().positive()).min(1).optional(),
  /** [3][5] map from an unscaled latent pixel (+1) to RGB in [-1,1]; tiny-pix2pix ships one for previews */
  latent_to_rgb: z.array(z.array(z.number()).length(5)).length(3).optional(),
});
const unetConfigSchema = z.looseObject({
  in_channels: z.number().int().optional(),
  sample_size: z.number().int().positive().optional(),
  block_out_channels: z.array(z.number().int().positive()).min(1).optional(),
});
const schedulerConfigSchema = z.looseObject({
  _class_name: z.string().optional(),
  num_train_timesteps: z.number().int().positive().optional(),
  beta_start: z.number().positive().optional(),
  beta_end: z.number().positive().optional(),
  beta_schedule: z.enum(['scaled_linear', 'linear']).optional(),
  steps_offset: z.number().int().nonnegative().optional(),
  timestep_spacing: z.enum(['linspace', 'leading', 'trailing']).optional(),
  prediction_type: z.enum(['epsilon', 'v_prediction']).optional(),
});
const modelIndexSchema = z.looseObject({ native_size: z.number().int().positive().optional() });

/** What the folder's configs say, beyond ModelInfo. */
export interface Pix2PixConfig {
  training: TrainingSchedule;
  /** the scheduler config's sampler and spacing */
  scheduler: Sampler;
  spacing: Spacing;
  prediction: 'epsilon' | 'v_prediction';
  latentToRgb: number[][] | null;
}

/** diffusers' StableDiffusionInstructPix2PixPipeline takes and returns latents in the sampler's own layout. */
const PIX2PIX_REFERENCE: ReferenceLayout = {
  noise: '[B, 4, H/8, W/8], unit normal (the pipeline multiplies it by init_noise_sigma)',
  latent: '[B, 4, H/8, W/8], scaled by the VAE scaling_factor (not divided back)',
  toNoise: (data) => data,
  fromLatent: (latent) => latent,
  latentShape: (grid) => [grid.channels, grid.height, grid.width],
};

export class Pix2PixAdapter implements ModelAdapter {
  readonly reference = PIX2PIX_REFERENCE;

  private constructor(
    readonly info: ModelInfo,
    readonly config: Pix2PixConfig,
    readonly tokenizer: Tokenizer,
    readonly sessions: Pix2PixSessions,
    private readonly log: Log,
  ) {}

  static async load(dir: string, pipeline: string, opts: LoadOptions): Promise<Pix2PixAdapter> {
    const vae =
      readJson(path.join(dir, 'vae_decoder', 'config.json'), vaeConfigSchema) ??
      readJson(path.join(dir, 'vae_encoder', 'config.json'), vaeConfigSchema) ??
      readJson(path.join(dir, 'vae', 'config.json'), vaeConfigSchema) ??
      {};
    const unet = readJson(path.join(dir, 'unet', 'config.json'), unetConfigSchema) ?? {};
    const sched = readJson(path.join(dir, 'scheduler', 'scheduler_config.json'), schedulerConfigSchema) ?? {};
    const index = readJson(path.join(dir, 'model_index.json'), modelIndexSchema) ?? {};
    if (unet.in_channels !== undefined && unet.in_channels !== 8) {
      throw new Error(
        `${path.join(dir, 'unet', 'config.json')}: in_channels is ${unet.in_channels}; an InstructPix2Pix UNet takes 8 (4 noisy + 4 image latent channels)`,
      );
    }
    const tokenizer = loadTokenizer(path.join(dir, 'tokenizer'));
    const sessions = await Pix2PixSessions.load(dir, opts);

    const latentFactor = 2 ** ((vae.block_out_channels?.length ?? 4) - 1);
    const unetDownsampling = 2 ** Math.max(0, (unet.block_out_channels?.length ?? 4) - 1);
    const scheduler = samplerForScheduler(sched._class_name) ?? SAMPLERS.euler_ancestral; // what timbrooks/instruct-pix2pix ships
    const config: Pix2PixConfig = {
      training: {
        numTrainTimesteps: sched.num_train_timesteps ?? SD_TRAINING_SCHEDULE.numTrainTimesteps,
        betaStart: sched.beta_start ?? SD_TRAINING_SCHEDULE.betaStart,
        betaEnd: sched.beta_end ?? SD_TRAINING_SCHEDULE.betaEnd,
        betaSchedule: sched.beta_schedule ?? SD_TRAINING_SCHEDULE.betaSchedule,
        stepsOffset: sched.steps_offset ?? SD_TRAINING_SCHEDULE.stepsOffset,
      },
      scheduler,
      spacing: sched.timestep_spacing ?? scheduler.defaultSpacing,
      prediction: sched.prediction_type ?? 'epsilon',
      latentToRgb: vae.latent_to_rgb ?? null,
    };
    const info: ModelInfo = {
      dir,
      name: path.basename(path.resolve(dir)),
      family: PIX2PIX_FAMILY.label,
      pipeline,
      scalingFactor: vae.scaling_factor ?? 0.18215,
      latentChannels: 4,
      latentFactor,
      nativeSize: index.native_size ?? (unet.sample_size ? unet.sample_size * latentFactor : 512),
      sizeMultiple: latentFactor * unetDownsampling,
      samplers: Object.values(SAMPLERS).map((s) => s.name),
      defaultSampler: scheduler.name,
      defaultTextScale: PIX2PIX_TEXT_SCALE,
      readsReferences: false,
      scheduleSummary: `${scheduler.name}, ${config.spacing} spacing, ${config.training.numTrainTimesteps} training steps, ${config.prediction} prediction`,
      precision: sessions.precision,
      provider: sessions.provider,
    };
    return new Pix2PixAdapter(info, config, tokenizer, sessions, opts.log);
  }

  schedule(sampler: Sampler, steps: number, _grid: LatentGrid, spacing?: Spacing): Schedule {
    // the folder's spacing belongs to its own scheduler; another sampler gets its scheduler's usual one
    const fallback = sampler.scheduler === this.config.scheduler.scheduler ? this.config.spacing : sampler.defaultSpacing;
    return samplingSchedule(this.config.training, sampler.scheduler, steps, spacing ?? fallback);
  }

  guidance(regions: number, opts: GuidanceOptions): Guidance {
    return dualGuidance(regions, opts);
  }

  async condition(start: EngineStart, instructions: readonly string[], grid: LatentGrid, schedule: Schedule, references: readonly ImageTensor[] = []): Promise<Conditioned> {
    if (references.length) throw new Error(`an ${PIX2PIX_FAMILY.label} model reads no reference images: it conditions on the source image alone`);
    const s = this.info.scalingFactor;
    const n = gridSize(grid);
    let c: Float32Array; // unscaled image conditioning [4, h, w]
    if (start.kind === 'latent') {
      if (start.latent.length !== n) throw new RangeError(`the stored latent has ${start.latent.length} values, this working size needs ${n}`);
      c = start.latent.map((v) => v / s); // EMILIE latent iteration: c = z0_prev / s
    } else {
      const { image } = start;
      c = (await this.sessions.encode(image.data, [1, 3, image.height, image.width])).data;
      if (c.length !== n) throw new RangeError(`the VAE encoded ${image.width}x${image.height} into ${c.length} values, expected ${n}`);
    }
    const source = start.kind === 'latent' ? Float32Array.from(start.latent) : c.map((v) => v * s);
    const text = await this.encodeText([...instructions, '']); // a null prompt is the last row, ""
    const unet = this.unetCall(c, text, instructions.length, grid);
    const timestep = timestepLookup(schedule);
    const denoiser = this.config.prediction === 'v_prediction' ? fromVPrediction(unet, timestep) : fromEpsilon(unet, timestep);
    return { source, conditioning: start.kind === 'latent' ? 'latent' : 'pixels', denoiser };
  }

  /** The UNet on a batch: sample [B, 8, h, w] = noisy input || image latent (zeros where the slot drops it). */
  private unetCall(c: Float32Array, text: { data: Float32Array; dims: number[] }, regions: number, grid: LatentGrid): NetworkCall {
    const n = gridSize(grid);
    const [, seqLen, dim] = text.dims;
    const row = seqLen * dim;
    let states: { key: string; data: Float32Array } | null = null; // the same slots every step: build once
    const textStates = (slots: readonly BatchSlot[]): Float32Array => {
      const key = slots.map((s) => s.prompt ?? regions).join(',');
      if (states?.key !== key) {
        const data = new Float32Array(slots.length * row);
        slots.forEach((s, k) => data.set(text.data.subarray((s.prompt ?? regions) * row, ((s.prompt ?? regions) + 1) * row), k * row));
        states = { key, data };
      }
      return states.data;
    };
    return async (xIn, t, slots) => {
      const batch = slots.length;
      const sample = new Float32Array(batch * 2 * n);
      slots.forEach((slot, k) => {
        sample.set(xIn.subarray(k * n, (k + 1) * n), 2 * k * n);
        if (!slot.zeroImage) sample.set(c, (2 * k + 1) * n);
      });
      return this.sessions.unet(sample, [batch, 8, grid.height, grid.width], t, textStates(slots), [batch, seqLen, dim]);
    };
  }

  /** Text states [B, 77, D] for each prompt. */
  async encodeText(prompts: readonly string[]): Promise<{ data: Float32Array; dims: number[] }> {
    const L = this.tokenizer.maxLength;
    const ids = new Int32Array(prompts.length * L);
    prompts.forEach((p, i) => ids.set(this.tokenizer.encode(p), i * L));
    return this.sessions.encodeText(ids, [prompts.length, L]);
  }

  async decode(latent: Float32Array, grid: LatentGrid): Promise<ImageTensor> {
    const s = this.info.scalingFactor;
    const img = await this.sessions.decode(latent.map((v) => v / s), [1, 4, grid.height, grid.width]);
    return { data: img.data, width: img.dims[3], height: img.dims[2] };
  }

  /** The model's fitted latent-to-RGB map at latent resolution when it ships one, else the decoder. */
  async preview(x0: Float32Array, grid: LatentGrid): Promise<ImageTensor> {
    const map = this.config.latentToRgb;
    if (!map) return this.decode(x0, grid);
    const s = this.info.scalingFactor;
    const n = grid.height * grid.width;
    const rgb = new Float32Array(3 * n);
    for (let c = 0; c < 3; c++) {
      const k = map[c];
      for (let i = 0; i < n; i++) {
        rgb[c * n + i] = k[0] * (x0[i] / s) + k[1] * (x0[n + i] / s) + k[2] * (x0[2 * n + i] / s) + k[3] * (x0[3 * n + i] / s) + k[4];
      }
    }
    return { data: rgb, width: grid.width, height: grid.height };
  }

  joinBatch(): BatchLane {
    return this.sessions.joinBatch();
  }

  describe(): Record<string, { inputs: TensorSpec[]; outputs: TensorSpec[] }> {
    return this.sessions.describe();
  }

  async release(): Promise<void> {
    await this.sessions.release();
    this.log(`released model ${this.info.name}`);
  }
}

export const PIX2PIX_FAMILY: ModelFamily = {
  ...PIX2PIX_NAMES,
  load: (dir, pipeline, opts) => Pix2PixAdapter.load(dir, pipeline, opts),
};
