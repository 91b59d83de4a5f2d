/**
 * The segmenter (masks from words) against the Python reference: transformers' ViTImageProcessor and tokenizer
 * read from the same folder, onnxruntime, torch's bilinear resize and a sigmoid
 * (tools/segmenter/make_segmenter_fixtures.py -> test/fixtures/segmenter). The pure steps are checked on their
 * own too: PIL's 8-bit bilinear resize byte for byte, the framing of the phrase, the empty-mask rule.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EMPTY_MASK_FRACTION,
  Segmenter,
  SegmenterInputError,
  logitsToMask,
  maskCoverage,
  maskIoU,
  maskIsEmpty,
  phraseIds,
  pilBilinearResize,
  regionMask,
} from '../../../server/engine/segmenter';
import { loadTokenizer } from '../../../server/engine/tokenizer';
import { decodeImage } from '../../../server/imaging/image';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-clipseg');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'segmenter');

interface Case {
  name: string;
  image: string;
  phrase: string;
  logits: [number, number];
  mask: [number, number];
  maskPixelsOn: number;
}

const cases = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'cases.json'), 'utf8')) as { cases: Case[] }).cases;

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function readF16(file: string): Float32Array {
  const b = fs.readFileSync(file);
  const out = new Float32Array(b.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = halfToFloat(b.readUInt16LE(i * 2));
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function rgbOf(file: string): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const img = await decodeImage(fs.readFileSync(file));
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = img.data[i * 4 + c];
  return { rgb, width: img.width, height: img.height };
}

describe('segmenter maths', () => {
  test("the resize is PIL's 8-bit bilinear, byte for byte (downscale with antialiasing, both axes)", async () => {
    const src = await rgbOf(path.join(ROOT, 'test', 'fixtures', 'shapes-320x224.png'));
    const ref = await rgbOf(path.join(FIXTURES, 'resized-320x224.png'));
    const out = pilBilinearResize(src.rgb, src.width, src.height, ref.width, ref.height);
    expect(out.length).toBe(ref.rgb.length);
    let differing = 0;
    for (let i = 0; i < out.length; i++) if (out[i] !== ref.rgb[i]) differing++;
    expect(differing).toBe(0);
  });

  test('logits are resized (half-pixel bilinear) before the sigmoid', () => {
    // 1x2 logits [0, ln 3] -> 1x4: samples at 0, 0.25, 0.75, 1 of the way from the first to the second
    const mask = logitsToMask(Float32Array.from([0, Math.log(3)]), 2, 1, 4, 1);
    const at = (t: number) => 1 / (1 + Math.exp(-t * Math.log(3)));
    expect(Array.from(mask).map((v) => +v.toFixed(6))).toEqual([at(0), at(0.25), at(0.75), at(1)].map((v) => +v.toFixed(6)));
  });

  test("an edit's region is where the probability is at least one half", () => {
    expect(Array.from(regionMask(Float32Array.from([0, 0.49, 0.5, 0.8, 1])))).toEqual([0, 0, 1, 1, 1]);
  });

  test('a mask is empty below EMPTY_MASK_FRACTION of its pixels at or above 0.5', () => {
    const n = 10_000;
    const limit = Math.ceil(EMPTY_MASK_FRACTION * n);
    const mask = new Float32Array(n).fill(0.49);
    expect(maskIsEmpty(mask)).toBe(true);
    mask.fill(0.5, 0, limit - 1);
    expect(maskIsEmpty(mask)).toBe(true);
    mask[limit - 1] = 0.5;
    expect(maskIsEmpty(mask)).toBe(false);
  });

  test('coverage and IoU count pixels at or above one half', () => {
    const a = Float32Array.from([0.5, 0.9, 0.49, 0, 1, 0]);
    const b = Float32Array.from([1, 0, 0.7, 0, 0.5, 0]);
    expect(maskCoverage(a)).toBeCloseTo(3 / 6, 10);
    expect(maskIoU(a, b)).toBeCloseTo(2 / 4, 10); // both at 0 and 4; either at 0, 1, 2, 4
    expect(maskIoU(new Float32Array(4), new Float32Array(4))).toBe(1);
    expect(maskCoverage(new Float32Array(0))).toBe(0);
  });

  test('a phrase is sent unpadded: BOS, its words, EOS', () => {
    const tokenizer = loadTokenizer(MODEL);
    const vocab = (JSON.parse(fs.readFileSync(path.join(MODEL, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
    expect(Array.from(phraseIds(tokenizer, 'The Red circle'))).toEqual([vocab['<|startoftext|>'], vocab.the, vocab.red, vocab.circle, vocab['<|endoftext|>']]);
  });
});

describe('Segmenter (models/tiny-clipseg) against the transformers + onnxruntime reference', () => {
  let segmenter: Segmenter;
  beforeAll(async () => {
    segmenter = await Segmenter.load(MODEL, { device: 'cpu' });
  });
  afterAll(async () => {
    await segmenter.release();
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s: logits within 1e-4, the mask within 1e-3', async (_name, c) => {
    const image = await decodeImage(fs.readFileSync(path.join(ROOT, c.image)));
    const logits = await segmenter.logits(image, c.phrase);
    expect([logits.height, logits.width]).toEqual(c.logits);
    expect(maxAbsDiff(logits.data, readF32(path.join(FIXTURES, `${c.name}-logits.f32`)))).toBeLessThan(1e-4);
    const mask = await segmenter.segment(image, c.phrase);
    expect(mask.length).toBe(c.mask[0] * c.mask[1]);
    expect(maxAbsDiff(mask, readF16(path.join(FIXTURES, `${c.name}-mask.f16`)))).toBeLessThan(1e-3);
  });

  test('what the folder says: its name and input size', () => {
    expect(segmenter.info).toEqual({ name: 'layerloop/tiny-clipseg', width: 128, height: 128 });
  });

  test('an empty phrase, or words outside the vocabulary, are refused with what to fix', async () => {
    const image = await decodeImage(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-128.png')));
    await expect(segmenter.segment(image, '   ')).rejects.toThrow(new SegmenterInputError('the phrase is empty: say what to edit, e.g. "the circle"'));
    await expect(segmenter.segment(image, 'the hexagon thing')).rejects.toThrow(
      'the segmenter does not know "hexagon", "thing": use words it knows, or draw a mask',
    );
    expect(segmenter.unknownWords('the BLUE square')).toEqual([]);
    expect(segmenter.unknownWords('the circle, the circle!')).toEqual([',', '!']);
  });

  test('a folder without a CLIPSeg model is refused, naming what is missing', async () => {
    await expect(Segmenter.load(path.join(ROOT, 'models', 'tiny-pix2pix'))).rejects.toThrow(/no segmenter here: expected model\.onnx or onnx\/model\.onnx/);
  });
});

describe("an export of transformers' own CLIPSegForImageSegmentation (random weights, shrunk) drops in", () => {
  // tools/segmenter/make_clipseg_variant.py: the real architecture, onnx/model.onnx, a ViTImageProcessor config
  const VARIANT = path.join(ROOT, 'test', 'fixtures', 'clipseg-variant');
  test('its logits match onnxruntime in Python within 1e-4 (the tokenizer there pads to 77; here the phrase goes unpadded)', async () => {
    const reference = JSON.parse(fs.readFileSync(path.join(VARIANT, 'reference.json'), 'utf8')) as { image: string; phrase: string; logits: number[] };
    const segmenter = await Segmenter.load(VARIANT, { device: 'cpu' });
    try {
      expect(segmenter.info).toMatchObject({ width: 64, height: 64 });
      const image = await decodeImage(fs.readFileSync(path.join(ROOT, reference.image)));
      const logits = await segmenter.logits(image, reference.phrase);
      expect([1, logits.height, logits.width]).toEqual(reference.logits);
      expect(maxAbsDiff(logits.data, readF32(path.join(VARIANT, 'reference-logits.f32')))).toBeLessThan(1e-4);
      expect((await segmenter.segment(image, reference.phrase)).length).toBe(image.width * image.height);
    } finally {
      await segmenter.release();
    }
  });
});
