/**
 * The four ONNX components of a klein folder written by tools/export/export_model.py, behind Float32Array adapters.
 * Tensor names and layouts live here and nowhere else:
 *   text_encoder  input_ids, attention_mask int64 [B, T] -> prompt_embeds [B, T, L*D]
 *   transformer   hidden_states [B, N, 128], encoder_hidden_states [B, T, L*D], timestep [B] (sigma),
 *                 img_ids int64 [N, 4], txt_ids int64 [T, 4] -> velocity [B, N, 128]
 *   vae_encoder   sample [B, 3, H, W] -> latent [B, 128, H/16, W/16] (normalised, patchified)
 *   vae_decoder   latent [B, 128, h, w] -> sample [B, 3, 16h, 16w]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadWithDevice, type Device, type Log, type OnnxModel, type RunTimer, type TensorSpec } from '../ort';

export const KLEIN_COMPONENTS = ['text_encoder', 'transformer', 'vae_encoder', 'vae_decoder'] as const;

function expectTensor(model: OnnxModel, name: string, kind: 'input' | 'output', rank: number): void {
  const spec = kind === 'input' ? model.input(name) : model.output(name);
  const names = (kind === 'input' ? model.inputs : model.outputs).map((s) => s.name);
  if (!spec) throw new Error(`${model.file}: expected ${kind} tensor '${name}', found [${names.join(', ')}] (export it with tools/export/export_model.py)`);
  if (spec.shape.length !== rank) throw new Error(`${model.file}: ${kind} '${name}' has rank ${spec.shape.length} ([${spec.shape}]), expected ${rank}`);
}

export class KleinSessions {
  private constructor(
    private readonly textEncoder: OnnxModel,
    private readonly transformerModel: OnnxModel,
    private readonly vaeEncoder: OnnxModel,
    private readonly vaeDecoder: OnnxModel,
  ) {}

  static async load(dir: string, opts: { device: Device; timer: RunTimer; log: Log; threads?: number }): Promise<KleinSessions> {
    for (const c of KLEIN_COMPONENTS) {
      if (!fs.existsSync(path.join(dir, c, 'model.onnx'))) throw new Error(`model folder ${dir} is incomplete: missing ${c}/model.onnx`);
    }
    const transformer = await loadWithDevice(path.join(dir, 'transformer', 'model.onnx'), opts.device, opts.timer, opts.log, opts.threads);
    const [textEncoder, vaeEncoder, vaeDecoder] = await Promise.all(
      (['text_encoder', 'vae_encoder', 'vae_decoder'] as const).map((c) => loadWithDevice(path.join(dir, c, 'model.onnx'), transformer.provider, opts.timer, opts.log, opts.threads)),
    );
    expectTensor(textEncoder, 'input_ids', 'input', 2);
    expectTensor(textEncoder, 'attention_mask', 'input', 2);
    expectTensor(textEncoder, 'prompt_embeds', 'output', 3);
    for (const [name, rank] of [['hidden_states', 3], ['encoder_hidden_states', 3], ['timestep', 1], ['img_ids', 2], ['txt_ids', 2]] as const) {
      expectTensor(transformer, name, 'input', rank);
    }
    expectTensor(transformer, 'velocity', 'output', 3);
    expectTensor(vaeEncoder, 'sample', 'input', 4);
    expectTensor(vaeEncoder, 'latent', 'output', 4);
    expectTensor(vaeDecoder, 'latent', 'input', 4);
    expectTensor(vaeDecoder, 'sample', 'output', 4);
    return new KleinSessions(textEncoder, transformer, vaeEncoder, vaeDecoder);
  }

  get provider(): OnnxModel['provider'] {
    return this.transformerModel.provider;
  }

  get precision(): 'float32' | 'float16' {
    return this.transformerModel.input('hidden_states')!.type === 'float16' ? 'float16' : 'float32';
  }

  /** Prompt features [B, T, L*D] for ids and attention mask [B, T]. */
  async encodeText(ids: Int32Array, mask: Int32Array, dims: [number, number]): Promise<{ data: Float32Array; dims: number[] }> {
    const out = await this.textEncoder.run({ input_ids: { data: ids, dims }, attention_mask: { data: mask, dims } }, ['prompt_embeds']);
    return out.prompt_embeds;
  }

  /** Velocity [B, N, C] of tokens [B, N, C] at sigma `timestep` (one per batch element). */
  async transformer(
    tokens: Float32Array, dims: [number, number, number], text: Float32Array, textDims: number[], timestep: Float32Array, imgIds: Int32Array, txtIds: Int32Array,
  ): Promise<Float32Array> {
    const out = await this.transformerModel.run(
      {
        hidden_states: { data: tokens, dims },
        encoder_hidden_states: { data: text, dims: textDims },
        timestep: { data: timestep, dims: [dims[0]] },
        img_ids: { data: imgIds, dims: [imgIds.length / 4, 4] },
        txt_ids: { data: txtIds, dims: [txtIds.length / 4, 4] },
      },
      ['velocity'],
    );
    return out.velocity.data;
  }

  /** The normalised, patchified latent [B, 128, H/16, W/16] of images [B, 3, H, W] in [-1, 1]. */
  async encode(images: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    return (await this.vaeEncoder.run({ sample: { data: images, dims } }, ['latent'])).latent;
  }

  /** Images [B, 3, 16h, 16w] in about [-1, 1] of normalised, patchified latents [B, 128, h, w]. */
  async decode(latents: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    return (await this.vaeDecoder.run({ latent: { data: latents, dims } }, ['sample'])).sample;
  }

  describe(): Record<string, { inputs: TensorSpec[]; outputs: TensorSpec[] }> {
    const d = (m: OnnxModel) => ({ inputs: m.inputs, outputs: m.outputs });
    return { text_encoder: d(this.textEncoder), transformer: d(this.transformerModel), vae_encoder: d(this.vaeEncoder), vae_decoder: d(this.vaeDecoder) };
  }

  async release(): Promise<void> {
    await Promise.all([this.textEncoder, this.transformerModel, this.vaeEncoder, this.vaeDecoder].map((m) => m.release()));
  }
}
