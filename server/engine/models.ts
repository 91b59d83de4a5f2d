/**
 * Model folders in the diffusers/optimum ONNX layout (engine.md section 2): the four components, their
 * configs where present (SD 1.x defaults where not), and typed adapters that derive every dtype and shape
 * from the sessions' metadata, so fp32, fp16, int64-timestep and scalar-timestep exports all work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { loadWithDevice, type Device, type Log, type OnnxModel, type Provider, type RunTimer } from './ort';
import { loadTokenizer, type Tokenizer } from './tokenizer';
import { SD_TRAINING_SCHEDULE, type SamplerName, type Spacing, type TrainingSchedule } from './schedules';

export const COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;

const vaeConfigSchema = z.looseObject({
  scaling_factor: z.number().positive().optional(),
  block_out_channels: z.array(z.number().int().positive()).min(1).optional(),
  latent_channels: z.number().int().positive().optional(),
  /** [3][5] map from an unscaled latent pixel (+1) to RGB in [-1,1]; tiny-pix2pix ships one for previews */
  latent_to_rgb: z.array(z.array(z.number()).length(5)).length(3).optional(),
});
const unetConfigSchema = z.looseObject({
  in_channels: z.number().int().optional(),
  out_channels: z.number().int().optional(),
  sample_size: z.number().int().positive().optional(),
});
const schedulerConfigSchema = z.looseObject({
  _class_name: z.string().optional(),
  num_train_timesteps: z.number().int().positive().optional(),
  beta_start: z.number().positive().optional(),
  beta_end: z.number().positive().optional(),
  beta_schedule: z.enum(['scaled_linear', 'linear']).optional(),
  steps_offset: z.number().int().nonnegative().optional(),
  timestep_spacing: z.enum(['linspace', 'leading', 'trailing']).optional(),
  prediction_type: z.literal('epsilon').optional(),
});
const modelIndexSchema = z.looseObject({ native_size: z.number().int().positive().optional() });

export interface ModelInfo {
  dir: string;
  name: string;
  scalingFactor: number;
  /** pixels per latent pixel (8 for SD) */
  vaeScaleFactor: number;
  /** the size the model was trained at (pixels, square) */
  nativeSize: number;
  /** image sides must be multiples of this (VAE factor x UNet downsampling) */
  sizeMultiple: number;
  latentToRgb: number[][] | null;
  training: TrainingSchedule;
  defaultSampler: SamplerName;
  defaultSpacing: Spacing;
  precision: 'float32' | 'float16';
  provider: Provider;
}

function readJson<T>(file: string, schema: z.ZodType<T>): T | null {
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: field '${issue.path.join('.')}' ${issue.message}`);
  }
  return parsed.data;
}

function samplerFromClass(className: string | undefined): SamplerName {
  if (className === 'EulerDiscreteScheduler') return 'euler';
  if (className === 'DDIMScheduler') return 'ddim';
  return 'euler_ancestral'; // what timbrooks/instruct-pix2pix ships
}

function expectSpec(model: OnnxModel, name: string, kind: 'input' | 'output', rank: number, channels?: number): void {
  const spec = kind === 'input' ? model.input(name) : model.output(name);
  const names = (kind === 'input' ? model.inputs : model.outputs).map((s) => s.name);
  if (!spec) throw new Error(`${model.file}: expected ${kind} tensor '${name}', found [${names.join(', ')}]`);
  if (spec.shape.length !== rank) {
    throw new Error(`${model.file}: ${kind} '${name}' has rank ${spec.shape.length} ([${spec.shape}]), expected ${rank}`);
  }
  if (channels !== undefined && typeof spec.shape[1] === 'number' && spec.shape[1] !== channels) {
    throw new Error(`${model.file}: ${kind} '${name}' has ${spec.shape[1]} channels, expected ${channels}`);
  }
}

/**
 * A loaded InstructPix2Pix model: tokenizer plus four ONNX sessions behind Float32Array adapters.
 * Layouts are NCHW; latents handed to `unet`/`decode` are per the comments.
 */
export class Pix2PixModel {
  private constructor(
    readonly info: ModelInfo,
    readonly tokenizer: Tokenizer,
    private readonly textEncoder: OnnxModel,
    private readonly unetModel: OnnxModel,
    private readonly vaeEncoder: OnnxModel,
    private readonly vaeDecoder: OnnxModel,
    private readonly log: Log,
  ) {}

  static async load(dir: string, opts: { device: Device; timer: RunTimer; log: Log; threads?: number }): Promise<Pix2PixModel> {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`model folder not found: ${dir}`);
    for (const c of COMPONENTS) {
      const file = path.join(dir, c, 'model.onnx');
      if (!fs.existsSync(file)) throw new Error(`model folder ${dir} is incomplete: missing ${c}/model.onnx`);
    }
    const vaeConfig =
      readJson(path.join(dir, 'vae_decoder', 'config.json'), vaeConfigSchema) ??
      readJson(path.join(dir, 'vae_encoder', 'config.json'), vaeConfigSchema) ??
      readJson(path.join(dir, 'vae', 'config.json'), vaeConfigSchema) ??
      {};
    const unetConfig = readJson(path.join(dir, 'unet', 'config.json'), unetConfigSchema) ?? {};
    const sched = readJson(path.join(dir, 'scheduler', 'scheduler_config.json'), schedulerConfigSchema) ?? {};
    const index = readJson(path.join(dir, 'model_index.json'), modelIndexSchema) ?? {};
    if (unetConfig.in_channels !== undefined && unetConfig.in_channels !== 8) {
      throw new Error(
        `${path.join(dir, 'unet', 'config.json')}: in_channels is ${unetConfig.in_channels}; an InstructPix2Pix UNet takes 8 (4 noisy + 4 image latent channels)`,
      );
    }
    const tokenizer = loadTokenizer(path.join(dir, 'tokenizer'));

    // The first session decides the provider (auto falls back once, loudly); the rest follow it.
    const first = await loadWithDevice(path.join(dir, 'unet', 'model.onnx'), opts.device, opts.timer, opts.log, opts.threads);
    const device: Device = first.provider;
    const [textEncoder, vaeEncoder, vaeDecoder] = await Promise.all(
      (['text_encoder', 'vae_encoder', 'vae_decoder'] as const).map((c) =>
        loadWithDevice(path.join(dir, c, 'model.onnx'), device, opts.timer, opts.log, opts.threads),
      ),
    );
    expectSpec(textEncoder, 'input_ids', 'input', 2);
    expectSpec(textEncoder, 'last_hidden_state', 'output', 3);
    expectSpec(first, 'sample', 'input', 4, 8);
    expectSpec(first, 'encoder_hidden_states', 'input', 3);
    expectSpec(first, 'out_sample', 'output', 4, 4);
    const t = first.input('timestep');
    if (!t) throw new Error(`${first.file}: expected input tensor 'timestep', found [${first.inputs.map((s) => s.name)}]`);
    if (t.shape.length > 1) throw new Error(`${first.file}: input 'timestep' has rank ${t.shape.length}, expected 0 or 1`);
    expectSpec(vaeDecoder, 'latent_sample', 'input', 4, 4);
    expectSpec(vaeDecoder, 'sample', 'output', 4, 3);
    expectSpec(vaeEncoder, 'sample', 'input', 4, 3);
    const encOut = vaeEncoder.output('latent_parameters') ?? vaeEncoder.output('latent_sample');
    if (!encOut) {
      throw new Error(`${vaeEncoder.file}: expected output 'latent_parameters' or 'latent_sample', found [${vaeEncoder.outputs.map((s) => s.name)}]`);
    }
    if (encOut.name === 'latent_sample') {
      opts.log(`WARNING: ${vaeEncoder.file} outputs 'latent_sample', which some exporters sample at random; re-encoded sources may vary slightly between runs`);
    }

    const blocks = vaeConfig.block_out_channels?.length ?? 4;
    const vaeScaleFactor = 2 ** (blocks - 1);
    const unetDownsampling = 2 ** Math.max(0, ((unetConfig as { block_out_channels?: number[] }).block_out_channels?.length ?? 4) - 1);
    const info: ModelInfo = {
      dir,
      name: path.basename(path.resolve(dir)),
      scalingFactor: vaeConfig.scaling_factor ?? 0.18215,
      vaeScaleFactor,
      nativeSize: index.native_size ?? (unetConfig.sample_size ? unetConfig.sample_size * vaeScaleFactor : 512),
      sizeMultiple: vaeScaleFactor * unetDownsampling,
      latentToRgb: vaeConfig.latent_to_rgb ?? null,
      training: {
        numTrainTimesteps: sched.num_train_timesteps ?? SD_TRAINING_SCHEDULE.numTrainTimesteps,
        betaStart: sched.beta_start ?? SD_TRAINING_SCHEDULE.betaStart,
        betaEnd: sched.beta_end ?? SD_TRAINING_SCHEDULE.betaEnd,
        betaSchedule: sched.beta_schedule ?? SD_TRAINING_SCHEDULE.betaSchedule,
        stepsOffset: sched.steps_offset ?? SD_TRAINING_SCHEDULE.stepsOffset,
      },
      defaultSampler: samplerFromClass(sched._class_name),
      defaultSpacing: sched.timestep_spacing ?? (samplerFromClass(sched._class_name) === 'ddim' ? 'leading' : 'linspace'),
      precision: first.input('sample')!.type === 'float16' ? 'float16' : 'float32',
      provider: first.provider,
    };
    return new Pix2PixModel(info, tokenizer, textEncoder, first, vaeEncoder, vaeDecoder, opts.log);
  }

  /** Text states [B, 77, D] for each prompt. */
  async encodeText(prompts: string[]): Promise<{ data: Float32Array; dims: number[] }> {
    const L = this.tokenizer.maxLength;
    const ids = new Int32Array(prompts.length * L);
    prompts.forEach((p, i) => ids.set(this.tokenizer.encode(p), i * L));
    const out = await this.textEncoder.run({ input_ids: { data: ids, dims: [prompts.length, L] } }, ['last_hidden_state']);
    return out.last_hidden_state;
  }

  /**
   * Predicted noise [B,4,h,w] for sample [B,8,h,w] (noisy latent already divided by sqrt(sigma^2+1), then the
   * unscaled image latent) at one timestep; text states [B,77,D].
   */
  async unet(sample: Float32Array, dims: number[], timestep: number, text: Float32Array, textDims: number[]): Promise<Float32Array> {
    const spec = this.unetModel.input('timestep')!;
    const batch = dims[0];
    // [] (optimum >= 1.24), [1] or [B] (diffusers): one value per declared slot; the UNet broadcasts
    const tDims = spec.shape.length === 0 ? [] : spec.shape[0] === 1 ? [1] : [batch];
    const tLen = tDims.length === 0 ? 1 : tDims[0];
    const out = await this.unetModel.run(
      {
        sample: { data: sample, dims },
        timestep: { data: new Float32Array(tLen).fill(timestep), dims: tDims },
        encoder_hidden_states: { data: text, dims: textDims },
      },
      ['out_sample'],
    );
    return out.out_sample.data;
  }

  /** Posterior mean (unscaled latent) [B,4,h,w] of images [B,3,H,W] in [-1,1]. */
  async encode(images: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const outName = this.vaeEncoder.output('latent_parameters') ? 'latent_parameters' : 'latent_sample';
    const out = (await this.vaeEncoder.run({ sample: { data: images, dims } }, [outName]))[outName];
    const [b, c, h, w] = out.dims;
    if (c === 4) return out;
    if (c !== 8) throw new Error(`${this.vaeEncoder.file}: '${outName}' has ${c} channels, expected 4 or 8`);
    const mean = new Float32Array(b * 4 * h * w); // channels 0..3 of [mean || logvar]
    for (let i = 0; i < b; i++) mean.set(out.data.subarray(i * 8 * h * w, i * 8 * h * w + 4 * h * w), i * 4 * h * w);
    return { data: mean, dims: [b, 4, h, w] };
  }

  /** Images [B,3,H,W] in about [-1,1] from unscaled latents [B,4,h,w]. */
  async decode(latents: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    return (await this.vaeDecoder.run({ latent_sample: { data: latents, dims } }, ['sample'])).sample;
  }

  /** Every tensor of the four components, for contract checks and `models verify`. */
  describe(): Record<string, { inputs: OnnxModel['inputs']; outputs: OnnxModel['outputs'] }> {
    const d = (m: OnnxModel) => ({ inputs: m.inputs, outputs: m.outputs });
    return {
      text_encoder: d(this.textEncoder),
      unet: d(this.unetModel),
      vae_encoder: d(this.vaeEncoder),
      vae_decoder: d(this.vaeDecoder),
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.textEncoder, this.unetModel, this.vaeEncoder, this.vaeDecoder].map((m) => m.release()));
    this.log(`released model ${this.info.name}`);
  }
}
