/**
 * The four ONNX components of an InstructPix2Pix folder in the diffusers/optimum layout (engine.md section 2),
 * behind Float32Array adapters that take every dtype and shape from the sessions' metadata, so fp32, fp16,
 * int64-timestep and scalar-timestep exports all work. Tensor names and layouts live here and nowhere else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepBatcher, concatBatch, splitBatch, type BatchLane } from '../batching';
import { loadWithDevice, type Device, type Log, type OnnxModel, type RunTimer, type TensorSpec } from '../ort';

export const COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;

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

/** One UNet call: sample [b, 8, h, w], one timestep for its b elements, text states [b, L, D]. */
export interface UnetFeed {
  sample: Float32Array;
  dims: number[];
  timestep: number;
  text: Float32Array;
  textDims: number[];
}

/** Layouts are NCHW; the latents handed to `unet`/`decode` are as each method says. */
export class Pix2PixSessions {
  /** shares UNet calls between edits sampling at once; null = each call runs alone (batch 1) */
  private readonly batcher: StepBatcher<UnetFeed, Float32Array> | null;

  private constructor(
    private readonly textEncoder: OnnxModel,
    private readonly unetModel: OnnxModel,
    private readonly vaeEncoder: OnnxModel,
    private readonly vaeDecoder: OnnxModel,
    batch: number,
  ) {
    this.batcher = batch > 1 ? new StepBatcher((feeds) => this.runUnet(feeds), batch) : null;
  }

  /**
   * Loads and checks the four components; the UNet's session decides the provider, the rest follow it.
   * `batch`: most edits whose UNet calls share one run (1 or absent: none share).
   */
  static async load(dir: string, opts: { device: Device; timer: RunTimer; log: Log; threads?: number; batch?: number }): Promise<Pix2PixSessions> {
    for (const c of COMPONENTS) {
      const file = path.join(dir, c, 'model.onnx');
      if (!fs.existsSync(file)) throw new Error(`model folder ${dir} is incomplete: missing ${c}/model.onnx`);
    }
    // The first session decides the provider (auto falls back once, loudly); the rest follow it.
    const unet = await loadWithDevice(path.join(dir, 'unet', 'model.onnx'), opts.device, opts.timer, opts.log, opts.threads);
    const [textEncoder, vaeEncoder, vaeDecoder] = await Promise.all(
      (['text_encoder', 'vae_encoder', 'vae_decoder'] as const).map((c) =>
        loadWithDevice(path.join(dir, c, 'model.onnx'), unet.provider, opts.timer, opts.log, opts.threads),
      ),
    );
    expectSpec(textEncoder, 'input_ids', 'input', 2);
    expectSpec(textEncoder, 'last_hidden_state', 'output', 3);
    expectSpec(unet, 'sample', 'input', 4, 8);
    expectSpec(unet, 'encoder_hidden_states', 'input', 3);
    expectSpec(unet, 'out_sample', 'output', 4, 4);
    const t = unet.input('timestep');
    if (!t) throw new Error(`${unet.file}: expected input tensor 'timestep', found [${unet.inputs.map((s) => s.name)}]`);
    if (t.shape.length > 1) throw new Error(`${unet.file}: input 'timestep' has rank ${t.shape.length}, expected 0 or 1`);
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
    return new Pix2PixSessions(textEncoder, unet, vaeEncoder, vaeDecoder, opts.batch ?? 1);
  }

  get provider(): OnnxModel['provider'] {
    return this.unetModel.provider;
  }

  get precision(): 'float32' | 'float16' {
    return this.unetModel.input('sample')!.type === 'float16' ? 'float16' : 'float32';
  }

  /** Text states [B, L, D] for token ids [B, L]. */
  async encodeText(ids: Int32Array, dims: [number, number]): Promise<{ data: Float32Array; dims: number[] }> {
    const out = await this.textEncoder.run({ input_ids: { data: ids, dims } }, ['last_hidden_state']);
    return out.last_hidden_state;
  }

  /**
   * Predicted noise [B,4,h,w] for sample [B,8,h,w] (noisy latent already divided by sqrt(sigma^2+1), then the
   * unscaled image latent) at one timestep; text states [B,77,D]. With batching on, the call may share one run
   * with other edits' calls (see batchKey).
   */
  async unet(sample: Float32Array, dims: number[], timestep: number, text: Float32Array, textDims: number[]): Promise<Float32Array> {
    const feed: UnetFeed = { sample, dims, timestep, text, textDims };
    if (!this.batcher) return (await this.runUnet([feed]))[0];
    return this.batcher.call(this.batchKey(feed), feed);
  }

  /** An edit's membership in the shared UNet runs while it samples (a no-op without batching). */
  joinBatch(): BatchLane {
    return this.batcher?.join() ?? { leave: () => {} };
  }

  /** Whether the export takes a timestep per batch element ([B], a symbolic dim) rather than one for all. */
  private get timestepPerElement(): boolean {
    const shape = this.unetModel.input('timestep')!.shape;
    return shape.length === 1 && shape[0] !== 1;
  }

  /**
   * Calls with equal keys can share a run and each get exactly its own result: the UNet treats batch elements
   * independently (convolutions, per-sample group norm, per-sample attention), so only the per-element shapes
   * must agree, i.e. the latent grid (working size) and the text states', and, where the export takes one
   * timestep for the whole batch, the timestep. Sampler, step count and guidance do not matter: each call's
   * elements stay contiguous, in its own guidance layout.
   */
  private batchKey(feed: UnetFeed): string {
    const shapes = `${feed.dims.slice(1).join('x')}|${feed.textDims.slice(1).join('x')}`;
    return this.timestepPerElement ? shapes : `${shapes}|t=${feed.timestep}`;
  }

  /** One UNet run for feeds of equal per-element shapes, stacked on the batch axis; outputs split back. */
  private async runUnet(feeds: readonly UnetFeed[]): Promise<Float32Array[]> {
    const spec = this.unetModel.input('timestep')!;
    const rows = feeds.map((f) => f.dims[0]);
    const batch = rows.reduce((n, r) => n + r, 0);
    const [, channels, h, w] = feeds[0].dims;
    // [] (optimum >= 1.24), [1] or [B] (diffusers): one value per declared slot; the UNet broadcasts
    const tDims = spec.shape.length === 0 ? [] : spec.shape[0] === 1 ? [1] : [batch];
    const timesteps = new Float32Array(tDims.length === 0 ? 1 : tDims[0]);
    if (tDims[0] === batch) {
      let at = 0;
      feeds.forEach((f, k) => timesteps.fill(f.timestep, at, (at += rows[k])));
    } else {
      timesteps.fill(feeds[0].timestep); // the batch key made every feed's timestep equal
    }
    const [, seqLen, dim] = feeds[0].textDims;
    const out = await this.unetModel.run(
      {
        sample: { data: concatBatch(feeds.map((f) => f.sample)), dims: [batch, channels, h, w] },
        timestep: { data: timesteps, dims: tDims },
        encoder_hidden_states: { data: concatBatch(feeds.map((f) => f.text)), dims: [batch, seqLen, dim] },
      },
      ['out_sample'],
    );
    const [, outChannels, oh, ow] = out.out_sample.dims;
    return splitBatch(out.out_sample.data, rows, outChannels * oh * ow);
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
  describe(): Record<string, { inputs: TensorSpec[]; outputs: TensorSpec[] }> {
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
  }
}
