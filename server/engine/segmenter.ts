/**
 * Masks from words (iEdit's localisation): a text-conditioned segmenter with CLIPSeg's ONNX interface turns a
 * phrase ("the circle", "the background") into a soft mask at the layer's size.
 *
 * A segmenter folder is what transformers' CLIPSeg ONNX export holds: `model.onnx` (or `onnx/model.onnx`) with
 * inputs `input_ids`, `pixel_values`, `attention_mask` and output `logits` [B, S, S] (or [S, S]),
 * `preprocessor_config.json` (ViTImageProcessor: size, mean, std, bilinear resample) and the tokenizer files.
 * The shipped `models/tiny-clipseg` has that layout, so a real CLIPSeg export drops in with `--segmenter DIR`.
 *
 * Steps, each the same as transformers' CLIPSegProcessor + CLIPSegForImageSegmentation in Python:
 *   RGB -> PIL bilinear resize to the model's size (8-bit, antialiased) -> rescale, normalise -> pixel_values
 *   phrase -> ids up to and including EOS (attention all ones) -> ORT -> logits
 *   logits -> bilinear resize to the layer's size (half-pixel centres, torch's align_corners=False) -> sigmoid,
 * and for an edit, the region where that probability is at least one half (regionMask).
 * onnxruntime-node's run blocks the calling thread: the tiny model's whole mask takes about 7 ms for a 128 px
 * layer and 18 ms for 320x224 (busy 2-core machine); a full CLIPSeg (a ViT at 352 px) takes longer, not measured here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { RgbaImage } from '../imaging/image';
import { resizeMask } from '../imaging/image';
import { loadWithDevice, type Device, type Log, type OnnxModel } from './ort';
import { loadTokenizer, type Tokenizer } from './tokenizer';

/** A mask with fewer pixels at or above 0.5 than this fraction of the layer names nothing (tools/segmenter/eval_segmenter.py). */
export const EMPTY_MASK_FRACTION = 0.002;

/** A phrase the segmenter cannot use (empty, or words it does not know): the client's to fix. */
export class SegmenterInputError extends Error {}

const preprocessorSchema = z.object({
  do_resize: z.boolean().default(true),
  do_rescale: z.boolean().default(true),
  do_normalize: z.boolean().default(true),
  rescale_factor: z.number().positive().default(1 / 255),
  image_mean: z.array(z.number()).length(3),
  image_std: z.array(z.number().positive()).length(3),
  /** PIL's resample code: 2 = bilinear (what CLIPSeg uses) */
  resample: z.literal(2, { error: (iss) => `resample must be 2 (bilinear, as CLIPSeg's), got ${JSON.stringify(iss.input)}` }).default(2),
  size: z.object({ height: z.number().int().positive(), width: z.number().int().positive() }, {
    error: 'size must be {height, width} (CLIPSeg: {"height": 352, "width": 352})',
  }),
});
export type Preprocessor = z.infer<typeof preprocessorSchema>;

// --------------------------------------------------------------------------------------------- pure maths

/**
 * PIL's 8-bit bilinear resampling along one axis (Resample.c: precompute_coeffs + normalize_coeffs_8bpc):
 * the triangle filter stretched by the downscale factor (antialiasing), coefficients in 22-bit fixed point,
 * each output rounded and clipped to a byte. Returns, per output index, the first input index and its weights.
 */
export function pilBilinearCoefficients(inSize: number, outSize: number): { start: Int32Array; weights: Int32Array[] } {
  const PRECISION_BITS = 32 - 8 - 2;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1 * filterScale;
  const start = new Int32Array(outSize);
  const weights: Int32Array[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(Math.max(xmax, 0));
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) / filterScale);
      k[x] = t < 1 ? 1 - t : 0;
      ww += k[x];
    }
    const fixed = new Int32Array(k.length);
    for (let x = 0; x < k.length; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      fixed[x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    weights.push(fixed);
  }
  return { start, weights };
}

/** RGB bytes [h*w*3] resized like PIL's `Image.resize((nw, nh), BILINEAR)`: horizontal pass, then vertical, bytes between. */
export function pilBilinearResize(rgb: Uint8Array, w: number, h: number, nw: number, nh: number): Uint8Array {
  if (w === nw && h === nh) return rgb;
  const half = 1 << 21;
  const byte = (v: number) => Math.min(255, Math.max(0, v >> 22));
  let src = rgb;
  let sw = w;
  if (nw !== w) {
    const { start, weights } = pilBilinearCoefficients(w, nw);
    const out = new Uint8Array(nw * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < nw; x++) {
        const k = weights[x];
        for (let c = 0; c < 3; c++) {
          let ss = half;
          for (let i = 0; i < k.length; i++) ss += src[(y * sw + start[x] + i) * 3 + c] * k[i];
          out[(y * nw + x) * 3 + c] = byte(ss);
        }
      }
    }
    src = out;
    sw = nw;
  }
  if (nh !== h) {
    const { start, weights } = pilBilinearCoefficients(h, nh);
    const out = new Uint8Array(nw * nh * 3);
    for (let y = 0; y < nh; y++) {
      const k = weights[y];
      for (let x = 0; x < nw; x++) {
        for (let c = 0; c < 3; c++) {
          let ss = half;
          for (let i = 0; i < k.length; i++) ss += src[((start[y] + i) * sw + x) * 3 + c] * k[i];
          out[(y * nw + x) * 3 + c] = byte(ss);
        }
      }
    }
    src = out;
  }
  return src;
}

/** An RGBA image as CLIPSeg's `pixel_values` [1, 3, H, W] (alpha is ignored, as CLIPSegProcessor does for RGB input). */
export function pixelValues(image: RgbaImage, pre: Preprocessor): { data: Float32Array; width: number; height: number } {
  const n = image.width * image.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = image.data[i * 4 + c];
  const width = pre.do_resize ? pre.size.width : image.width;
  const height = pre.do_resize ? pre.size.height : image.height;
  const resized = pilBilinearResize(rgb, image.width, image.height, width, height);
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // the processor works in float32: x * factor, then (x - mean) / std
    const mean = Math.fround(pre.image_mean[c]);
    const std = Math.fround(pre.image_std[c]);
    const factor = Math.fround(pre.rescale_factor);
    for (let i = 0; i < plane; i++) {
      let v = pre.do_rescale ? Math.fround(resized[i * 3 + c] * factor) : resized[i * 3 + c];
      if (pre.do_normalize) v = Math.fround(Math.fround(v - mean) / std);
      data[c * plane + i] = v;
    }
  }
  return { data, width, height };
}

/** Logits [h*w] at the model's size -> soft mask at the layer's size: bilinear on the logits, then sigmoid. */
export function logitsToMask(logits: Float32Array, w: number, h: number, nw: number, nh: number): Float32Array {
  const resized = resizeMask(logits, w, h, nw, nh);
  const out = new Float32Array(resized.length);
  for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-resized[i]));
  return out;
}

/**
 * The region a phrase names, as an edit mask: 1 where the segmenter's probability is at least one half, else 0.
 * The probabilities are confidences, not how much to change: a less confident segmenter puts 0.8-0.95 inside a
 * shape it found, and as blend weights that leaves the edit partly undone (models/tiny-clipseg/EVAL.md, notes).
 * Edge softness is the engine's (spread, feathered compositing), as for a drawn mask.
 */
export function regionMask(probabilities: Float32Array): Float32Array {
  const out = new Float32Array(probabilities.length);
  for (let i = 0; i < out.length; i++) out[i] = probabilities[i] >= 0.5 ? 1 : 0;
  return out;
}

/** The share of the mask at or above one half, 0..1. */
export function maskCoverage(mask: Float32Array): number {
  let on = 0;
  for (const v of mask) if (v >= 0.5) on++;
  return mask.length === 0 ? 0 : on / mask.length;
}

/** True when fewer than EMPTY_MASK_FRACTION of the pixels are at or above 0.5: the phrase named nothing here. */
export function maskIsEmpty(mask: Float32Array): boolean {
  return maskCoverage(mask) < EMPTY_MASK_FRACTION;
}

/** Intersection over union of two masks thresholded at one half (1 when both are empty). */
export function maskIoU(a: Float32Array, b: Float32Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] >= 0.5;
    const y = b[i] >= 0.5;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** The token ids up to and including the first EOS (what CLIPSegProcessor sends unpadded). */
export function phraseIds(tokenizer: Tokenizer, phrase: string): Int32Array {
  const eos = tokenizer.encode('')[1];
  const ids = tokenizer.encode(phrase);
  const end = ids.indexOf(eos, 1);
  return ids.subarray(0, end + 1);
}

// --------------------------------------------------------------------------------------------- the folder

/** The id a word-level tokenizer gives words outside its vocabulary, or null (byte-level BPE knows every word). */
function unknownTokenId(dir: string): number | null {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) return null;
  const parsed = z
    .object({ model: z.object({ type: z.string(), unk_token: z.string().nullish(), vocab: z.record(z.string(), z.number()).or(z.array(z.unknown())) }) })
    .safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) return null;
  const { model } = parsed.data;
  if (model.type !== 'WordLevel' || !model.unk_token || Array.isArray(model.vocab)) return null;
  return model.vocab[model.unk_token] ?? null;
}

export interface SegmenterInfo {
  /** the folder's `_name_or_path`, else its directory */
  name: string;
  /** the model's input size */
  width: number;
  height: number;
}

export class Segmenter {
  private constructor(
    readonly info: SegmenterInfo,
    private readonly model: OnnxModel,
    private readonly tokenizer: Tokenizer,
    private readonly preprocessor: Preprocessor,
    private readonly unknownId: number | null,
  ) {}

  /** Load a CLIPSeg-layout folder; errors name the file and what is wrong. */
  static async load(dir: string, opts: { device?: Device; log?: Log } = {}): Promise<Segmenter> {
    const file = [join(dir, 'model.onnx'), join(dir, 'onnx', 'model.onnx')].find((f) => existsSync(f));
    if (!file) throw new Error(`${dir}: no segmenter here: expected model.onnx or onnx/model.onnx (a CLIPSeg ONNX export)`);
    const prePath = join(dir, 'preprocessor_config.json');
    if (!existsSync(prePath)) throw new Error(`${dir}: preprocessor_config.json is missing (CLIPSeg's ViTImageProcessor settings)`);
    const pre = preprocessorSchema.safeParse(JSON.parse(readFileSync(prePath, 'utf8')));
    if (!pre.success) throw new Error(`${prePath}: ${pre.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const tokenizer = loadTokenizer(dir);
    const model = await loadWithDevice(file, opts.device ?? 'cpu', { onnxMs: 0, calls: 0 }, opts.log ?? (() => {}));
    const names = ['input_ids', 'pixel_values', 'attention_mask'];
    const missing = names.filter((n) => !model.input(n));
    if (missing.length || !model.output('logits')) {
      await model.release();
      throw new Error(
        `${file}: not CLIPSeg's interface: needs inputs ${names.join(', ')} and output logits ` +
          `(has inputs ${model.inputs.map((s) => s.name).join(', ')}; outputs ${model.outputs.map((s) => s.name).join(', ')})`,
      );
    }
    const configPath = join(dir, 'config.json');
    const config = existsSync(configPath) ? z.object({ _name_or_path: z.string().optional() }).safeParse(JSON.parse(readFileSync(configPath, 'utf8'))) : null;
    const name = (config?.success && config.data._name_or_path) || dir;
    return new Segmenter({ name, width: pre.data.size.width, height: pre.data.size.height }, model, tokenizer, pre.data, unknownTokenId(dir));
  }

  /** The words of a phrase this segmenter's vocabulary lacks (always none for byte-level BPE, e.g. CLIP's). */
  unknownWords(phrase: string): string[] {
    if (this.unknownId === null) return [];
    const unk = this.unknownId;
    // words as a word-level tokenizer's Whitespace pre-tokenizer sees them: letters/digits, or punctuation runs
    const words = phrase.match(/[\p{L}\p{M}\p{Nd}_]+|[^\p{L}\p{M}\p{Nd}_\s]+/gu) ?? [];
    return [...new Set(words.filter((word) => phraseIds(this.tokenizer, word).includes(unk)))];
  }

  /** Raw logits [height*width] at the model's size (what the parity fixture records). */
  async logits(image: RgbaImage, phrase: string): Promise<{ data: Float32Array; width: number; height: number }> {
    const text = phrase.trim();
    if (text === '') throw new SegmenterInputError('the phrase is empty: say what to edit, e.g. "the circle"');
    const unknown = this.unknownWords(text);
    if (unknown.length) {
      throw new SegmenterInputError(`the segmenter does not know ${unknown.map((w) => `"${w}"`).join(', ')}: use words it knows, or draw a mask`);
    }
    const ids = phraseIds(this.tokenizer, text);
    const pixels = pixelValues(image, this.preprocessor);
    const out = await this.model.run(
      {
        input_ids: { data: ids, dims: [1, ids.length] },
        attention_mask: { data: new Int32Array(ids.length).fill(1), dims: [1, ids.length] },
        pixel_values: { data: pixels.data, dims: [1, 3, pixels.height, pixels.width] },
      },
      ['logits'],
    );
    const { data, dims } = out.logits;
    const [height, width] = dims.slice(-2);
    if (data.length !== height * width) throw new Error(`${this.info.name}: logits have dims [${dims}], expected [1, H, W] or [H, W]`);
    return { data, width, height };
  }

  /** CLIPSeg's probabilities [image.height*image.width] in [0, 1] that each pixel belongs to what `phrase` names. */
  async segment(image: RgbaImage, phrase: string): Promise<Float32Array> {
    const logits = await this.logits(image, phrase);
    return logitsToMask(logits.data, logits.width, logits.height, image.width, image.height);
  }

  /** The edit mask for `phrase` on `image` (regionMask of segment): what a region's maskText edits. */
  async region(image: RgbaImage, phrase: string): Promise<Float32Array> {
    return regionMask(await this.segment(image, phrase));
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}
