/**
 * The FLUX.2 [klein] family (diffusers' Flux2KleinPipeline; research/flux2_klein.md):
 *
 * - latents: the VAE latent 2x2-patchified and batch-norm normalised, [128, H/16, W/16] (the exported VAE does
 *   both); rectified flow x = (1 - sigma) x0 + sigma noise; the transformer predicts the velocity noise - x0;
 * - conditioning: the source as reference tokens after the target's (time coordinate 10), further reference images
 *   at 20, 30, ...; continuing from a stored klein latent uses that latent as the source tokens (EMILIE's latent
 *   iteration: nothing decoded or re-encoded);
 * - text: Qwen3 hidden states of the exported layers over the chat-templated prompt (tokenizer.ts);
 * - schedule: Euler on sigmas linspace(1, 1/N, N) shifted by the resolution (latents.flowSchedule);
 * - guidance: CFG with the empty prompt for base models, none for distilled ones (guidance.classifierFreeGuidance).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { fromVelocity, type NetworkCall } from '../denoiser';
import { gridSize, readJson, type Conditioned, type EngineStart, type ImageTensor, type LatentGrid, type LoadOptions, type ModelAdapter, type ModelFamily, type ModelInfo, type ReferenceLayout } from '../family';
import { KLEIN_NAMES } from '../family-names';
import { classifierFreeGuidance, type BatchSlot, type Guidance, type GuidanceOptions } from '../guidance';
import type { Log, TensorSpec } from '../ort';
import type { Sampler } from '../samplers';
import { timestepLookup, type Schedule } from '../schedules';
import { denormalise, flowSchedule, flowStrengthStart, imageIds, latentToRgb, pack, referenceTime, textIds, unpack, unpatchify, type FlowShift, type LatentNorm, type LatentRgbMap } from './latents';
import { KleinSessions } from './sessions';
import { loadChatTokenizer, type ChatTokenizer } from './tokenizer';

const modelIndexSchema = z.looseObject({
  is_distilled: z.boolean().optional(),
  max_sequence_length: z.number().int().positive().optional(),
  native_size: z.number().int().positive().optional(),
  precision: z.enum(['fp32', 'fp16', 'bf16']).optional(),
});
const vaeConfigSchema = z.looseObject({
  block_out_channels: z.array(z.number().int().positive()).min(1).optional(),
  latent_channels: z.number().int().positive().optional(),
  latents_bn_mean: z.array(z.number()),
  latents_bn_std: z.array(z.number().positive()),
  latent_rgb_factors: z.array(z.tuple([z.number(), z.number(), z.number()])).optional(),
  latent_rgb_bias: z.tuple([z.number(), z.number(), z.number()]).optional(),
});
const schedulerSchema = z.looseObject({
  _class_name: z.literal('FlowMatchEulerDiscreteScheduler', { error: 'must be FlowMatchEulerDiscreteScheduler for a klein model' }),
  num_train_timesteps: z.number().int().positive().optional(),
  use_dynamic_shifting: z.boolean().optional(),
  time_shift_type: z.enum(['exponential', 'linear']).optional(),
  shift: z.number().positive().optional(),
  // schedule variants the klein pipeline never sets; a folder asking for one is refused rather than run wrong
  shift_terminal: z.null({ error: 'shift_terminal is not supported' }).optional(),
  use_karras_sigmas: z.literal(false, { error: 'karras sigmas are not supported' }).optional(),
  use_exponential_sigmas: z.literal(false, { error: 'exponential sigmas are not supported' }).optional(),
  use_beta_sigmas: z.literal(false, { error: 'beta sigmas are not supported' }).optional(),
  invert_sigmas: z.literal(false, { error: 'inverted sigmas are not supported' }).optional(),
  stochastic_sampling: z.literal(false, { error: 'stochastic sampling is not supported' }).optional(),
});

/** Reference images above this area are resized to it by the pipeline (Flux2KleinPipeline, 1024 x 1024). */
export const KLEIN_MAX_REFERENCE_AREA = 1024 * 1024;
/** Flux2KleinPipeline's guidance_scale default (a distilled model ignores it) */
export const KLEIN_TEXT_SCALE = 4;

export interface KleinConfig {
  distilled: boolean;
  shift: FlowShift;
  norm: LatentNorm;
  /** previews through this map instead of a VAE decode, when the folder has one */
  preview: LatentRgbMap | null;
}

/** diffusers returns the latent denormalised and unpatchified; its `latents=` is the sampler's own layout. */
function kleinReference(norm: LatentNorm): ReferenceLayout {
  return {
    noise: '[B, 128, H/16, W/16], unit normal (patchified, normalised: what latents= takes)',
    latent: '[B, 32, H/8, W/8], batch-norm denormalised and unpatchified (output_type="latent")',
    toNoise: (data) => data,
    fromLatent: (latent, grid) => unpatchify(denormalise(latent, norm, grid.height * grid.width), grid.channels, grid.height, grid.width),
    latentShape: (grid) => [grid.channels / 4, 2 * grid.height, 2 * grid.width],
  };
}

/** The folder's latent->RGB preview map, null when it has none; one of the two keys alone or a wrong size is refused. */
function previewMap(file: string, vae: z.infer<typeof vaeConfigSchema>, channels: number): LatentRgbMap | null {
  const { latent_rgb_factors: factors, latent_rgb_bias: bias } = vae;
  if (!factors && !bias) return null;
  if (!factors || !bias) throw new Error(`${file}: latent_rgb_factors and latent_rgb_bias go together (the preview map); it has only one`);
  if (factors.length !== channels) throw new Error(`${file}: latent_rgb_factors needs ${channels} rows (one per latent channel), got ${factors.length}`);
  return { factors, bias };
}

export class KleinAdapter implements ModelAdapter {
  readonly reference: ReferenceLayout;

  private constructor(
    readonly info: ModelInfo,
    readonly config: KleinConfig,
    readonly tokenizer: ChatTokenizer,
    readonly sessions: KleinSessions,
    private readonly log: Log,
  ) {
    this.reference = kleinReference(config.norm);
  }

  static async load(dir: string, pipeline: string, opts: LoadOptions): Promise<KleinAdapter> {
    const index = readJson(path.join(dir, 'model_index.json'), modelIndexSchema) ?? {};
    const vaeFile = path.join(dir, 'vae_decoder', 'config.json');
    const vae = readJson(vaeFile, vaeConfigSchema);
    if (!vae) throw new Error(`${dir}: no vae_decoder/config.json with the latent batch-norm statistics (export the folder with tools/export/export_model.py)`);
    const channels = 4 * (vae.latent_channels ?? 32);
    if (vae.latents_bn_mean.length !== channels || vae.latents_bn_std.length !== channels) {
      throw new Error(`${vaeFile}: latents_bn_mean/std need ${channels} values each (4 x latent_channels), got ${vae.latents_bn_mean.length}/${vae.latents_bn_std.length}`);
    }
    const sched = readJson(path.join(dir, 'scheduler', 'scheduler_config.json'), schedulerSchema);
    if (!sched) throw new Error(`${dir}: no scheduler/scheduler_config.json`);
    const maxLength = index.max_sequence_length ?? 512;
    const tokenizer = loadChatTokenizer(path.join(dir, 'tokenizer'), maxLength);
    let sessions: KleinSessions;
    try {
      sessions = await KleinSessions.load(dir, opts);
    } catch (err) {
      if (index.precision !== 'bf16') throw err;
      // ONNX Runtime's CPU provider has no bf16 kernels for most operators: say what to do instead of its node name
      throw new Error(`${dir} holds bf16 weights, which need the CUDA provider (--device cuda); on the CPU export with --precision fp32 or fp16 (${(err as Error).message})`, { cause: err });
    }
    const latentFactor = 2 * 2 ** ((vae.block_out_channels?.length ?? 4) - 1);
    const distilled = index.is_distilled ?? false;
    const config: KleinConfig = {
      distilled,
      shift: {
        numTrainTimesteps: sched.num_train_timesteps ?? 1000,
        dynamic: sched.use_dynamic_shifting ?? false,
        timeShiftType: sched.time_shift_type ?? 'exponential',
        shift: sched.shift ?? 1,
      },
      norm: { mean: Float32Array.from(vae.latents_bn_mean), std: Float32Array.from(vae.latents_bn_std) },
      preview: previewMap(vaeFile, vae, channels / 4),
    };
    const info: ModelInfo = {
      dir,
      name: path.basename(path.resolve(dir)),
      family: KLEIN_FAMILY.label,
      pipeline,
      scalingFactor: 1,
      latentChannels: channels,
      latentFactor,
      nativeSize: index.native_size ?? 1024,
      sizeMultiple: latentFactor,
      samplers: ['euler'],
      defaultSampler: 'euler',
      defaultTextScale: KLEIN_TEXT_SCALE,
      readsReferences: true,
      scheduleSummary: `flow-matching Euler, sigmas linspace(1, 1/N, N) ${config.shift.dynamic ? `with ${config.shift.timeShiftType} resolution shift` : `shifted by ${config.shift.shift}`}; ${distilled ? 'distilled (no guidance)' : 'base (CFG with the empty prompt)'}`,
      precision: sessions.precision,
      provider: sessions.provider,
    };
    return new KleinAdapter(info, config, tokenizer, sessions, opts.log);
  }

  schedule(_sampler: Sampler, steps: number, grid: LatentGrid): Schedule {
    return flowSchedule(this.config.shift, steps, grid.height * grid.width);
  }

  strengthStart(steps: number, strength: number): number {
    return flowStrengthStart(steps, strength);
  }

  guidance(regions: number, opts: GuidanceOptions): Guidance {
    return classifierFreeGuidance(regions, this.config.distilled ? 1 : opts.textScale, opts.masks ?? []);
  }

  async condition(start: EngineStart, instructions: readonly string[], grid: LatentGrid, schedule: Schedule, references: readonly ImageTensor[] = []): Promise<Conditioned> {
    const n = gridSize(grid);
    let source: Float32Array;
    if (start.kind === 'latent') {
      if (start.latent.length !== n) throw new RangeError(`the stored latent has ${start.latent.length} values, this working size needs ${n}`);
      source = Float32Array.from(start.latent); // EMILIE: the previous result's tokens, as a perfect VAE round trip would give
    } else {
      source = await this.encodeImage(start.image, grid);
    }
    // reference tokens: the source at t = 10, then each reference image at 20, 30, ... (_prepare_image_ids)
    const refs: { tokens: Float32Array; ids: Int32Array }[] = [{ tokens: pack(source, grid), ids: imageIds(grid.height, grid.width, referenceTime(0)) }];
    for (const [i, image] of references.entries()) {
      const refGrid = this.gridOf(image, `reference image ${i + 1}`);
      refs.push({ tokens: pack(await this.encodeImage(image, refGrid), refGrid), ids: imageIds(refGrid.height, refGrid.width, referenceTime(i + 1)) });
    }
    const text = await this.encodeText([...instructions, '']); // a null prompt is the last row, ""
    const network = this.transformerCall(grid, refs, text, instructions.length);
    return { source, conditioning: start.kind === 'latent' ? 'latent' : 'pixels', denoiser: fromVelocity(network, timestepLookup(schedule)) };
  }

  private gridOf(image: ImageTensor, what: string): LatentGrid {
    const f = this.info.latentFactor;
    if (image.width % f || image.height % f) throw new RangeError(`${what} is ${image.width}x${image.height}: its sides must be multiples of ${f}`);
    if (image.width * image.height > KLEIN_MAX_REFERENCE_AREA) {
      throw new RangeError(`${what} is ${image.width}x${image.height}: at most ${KLEIN_MAX_REFERENCE_AREA} pixels (the pipeline's limit); resize it first`);
    }
    return { channels: this.info.latentChannels, height: image.height / f, width: image.width / f };
  }

  private async encodeImage(image: ImageTensor, grid: LatentGrid): Promise<Float32Array> {
    const out = await this.sessions.encode(image.data, [1, 3, image.height, image.width]);
    if (out.data.length !== gridSize(grid)) throw new RangeError(`the VAE encoded ${image.width}x${image.height} into ${out.data.length} values, expected ${gridSize(grid)}`);
    return out.data;
  }

  /** Prompt features [P, T, L*D] for each prompt. */
  async encodeText(prompts: readonly string[]): Promise<{ data: Float32Array; dims: number[] }> {
    const T = this.tokenizer.maxLength;
    const ids = new Int32Array(prompts.length * T);
    const mask = new Int32Array(prompts.length * T);
    prompts.forEach((p, i) => {
      const t = this.tokenizer.encode(p);
      ids.set(t.ids, i * T);
      mask.set(t.mask, i * T);
    });
    return this.sessions.encodeText(ids, mask, [prompts.length, T]);
  }

  /** The transformer on a batch: each latent's tokens, then the shared reference tokens; the target's velocity back. */
  private transformerCall(grid: LatentGrid, refs: { tokens: Float32Array; ids: Int32Array }[], text: { data: Float32Array; dims: number[] }, regions: number): NetworkCall {
    const n = gridSize(grid);
    const C = grid.channels;
    const targetTokens = grid.height * grid.width;
    const refTokens = refs.reduce((s, r) => s + r.tokens.length / C, 0);
    const tokens = targetTokens + refTokens;
    const imgIds = new Int32Array(tokens * 4);
    imgIds.set(imageIds(grid.height, grid.width, 0));
    let at = targetTokens * 4;
    for (const r of refs) {
      imgIds.set(r.ids, at);
      at += r.ids.length;
    }
    const [, T, D] = text.dims;
    const txtIds = textIds(T);
    const row = T * D;
    return async (xIn, t, slots: readonly BatchSlot[]) => {
      const B = slots.length;
      const hidden = new Float32Array(B * tokens * C);
      const states = new Float32Array(B * row);
      slots.forEach((slot, k) => {
        const base = k * tokens * C;
        hidden.set(pack(xIn.subarray(k * n, (k + 1) * n), grid), base);
        let off = base + targetTokens * C;
        for (const r of refs) {
          hidden.set(r.tokens, off);
          off += r.tokens.length;
        }
        const p = slot.prompt ?? regions;
        states.set(text.data.subarray(p * row, (p + 1) * row), k * row);
      });
      // the pipeline passes timestep t / 1000 in float32 (the transformer multiplies it back)
      const timestep = new Float32Array(B).fill(Math.fround(t / 1000));
      const velocity = await this.sessions.transformer(hidden, [B, tokens, C], states, [B, T, D], timestep, imgIds, txtIds);
      const out = new Float32Array(B * n);
      for (let k = 0; k < B; k++) out.set(unpack(velocity.subarray(k * tokens * C, k * tokens * C + targetTokens * C), grid), k * n);
      return out;
    };
  }

  async decode(latent: Float32Array, grid: LatentGrid): Promise<ImageTensor> {
    const img = await this.sessions.decode(latent, [1, grid.channels, grid.height, grid.width]);
    return { data: img.data, width: img.dims[3], height: img.dims[2] };
  }

  /** With a fitted latent->RGB map: the VAE latent through it, at 1/8 of the working size, no network run. */
  async preview(x0: Float32Array, grid: LatentGrid): Promise<ImageTensor> {
    const map = this.config.preview;
    if (!map) return this.decode(x0, grid);
    const [, h, w] = this.reference.latentShape(grid);
    return { data: latentToRgb(this.reference.fromLatent(x0, grid), map, h, w), width: w, height: h };
  }

  describe(): Record<string, { inputs: TensorSpec[]; outputs: TensorSpec[] }> {
    return this.sessions.describe();
  }

  async release(): Promise<void> {
    await this.sessions.release();
    this.log(`released model ${this.info.name}`);
  }
}

export const KLEIN_FAMILY: ModelFamily = {
  ...KLEIN_NAMES,
  load: (dir, pipeline, opts) => KleinAdapter.load(dir, pipeline, opts),
};
