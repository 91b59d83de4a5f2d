/**
 * One edit from the command line, on the shipped model by default:
 *
 *   npm run edit -- --image test/fixtures/shapes-128.png --instruction "make the circle blue" --out edit.png
 *   npm run edit -- --from edit.png --instruction "make the square green" --out edit2.png   # latent iteration
 *   npm run edit -- --image test/fixtures/shapes-128.png --instruction "make the circle blue" --mask-text "the circle"
 *
 * Each result is written as PNG plus `<out>.latent.json` (the stored latent and its geometry); `--from` a
 * previous result continues from that latent instead of re-encoding its pixels. The edit options are parsed by
 * the protocol's own schema (shared/protocol.ts), so the CLI accepts exactly what the server does.
 *
 * For checks against a reference implementation: `--init-noise FILE` replaces the initial noise and
 * `--latent-out FILE` writes the final latent, both little-endian float32 in the layouts README.md lists per family.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_EDIT_OPTIONS, EDIT_OPTION_BOUNDS, LOCALITIES, SAMPLERS, editOptionsSchema, type EditOptionsInput } from '../../shared/protocol';
import { editImage, type EditSource, type StoredLatent } from '../edit/edit-image';
import { loadModel } from '../engine/families';
import { localEngine } from '../engine/local';
import { seededNoise, startingWith } from '../engine/rng';
import { Segmenter, SegmenterInputError, maskIsEmpty } from '../engine/segmenter';
import { decodeImage, encodePng, maskFromImage, maskToImage, resizeMask, type RgbaImage } from '../imaging/image';

const DEFAULT_MODEL = path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix');
const DEFAULT_SEGMENTER = path.resolve(__dirname, '..', '..', 'models', 'tiny-clipseg');

const storedLatentSchema = z.object({
  format: z.literal('layerloop.latent.v1'),
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  geometry: z.object({
    x: z.number().int(),
    y: z.number().int(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    workWidth: z.number().int().positive(),
    workHeight: z.number().int().positive(),
  }),
  data: z.array(z.number()),
});

/** One flag per edit option; `satisfies` makes a new schema option a compile error here until it has a flag. */
const OPTION_FLAGS = {
  steps: { flag: 'steps', kind: 'number', help: 'denoising steps' },
  textScale: { flag: 'text-scale', kind: 'number', help: "instruction guidance (default: the model family's, InstructPix2Pix 7.5, FLUX.2 [klein] 4)" },
  imageScale: { flag: 'image-scale', kind: 'number', help: 'image guidance' },
  sampler: { flag: 'sampler', kind: 'string', help: `${SAMPLERS.join(' | ')} (default: the model's scheduler)` },
  locality: { flag: 'locality', kind: 'string', help: LOCALITIES.join(' | ') },
  spread: { flag: 'spread', kind: 'number', help: '0 (the mask exactly) .. 1 (whole image)' },
  strength: { flag: 'strength', kind: 'number', help: '1 starts from noise; lower starts from the noised source' },
  variations: { flag: 'variations', kind: 'number', help: 'results to make' },
  seed: { flag: 'seed', kind: 'number', help: 'random seed; variation k uses seed + k' },
  progressiveShrink: { flag: 'progressive-shrink', kind: 'boolean', help: "Blended Latent Diffusion's mask shrinking: true | false" },
  previewEvery: { flag: 'preview-every', kind: 'number', help: 'unused here (previews are for the server)' },
} as const satisfies Record<keyof EditOptionsInput, { flag: string; kind: 'number' | 'string' | 'boolean'; help: string }>;

type OptionKey = keyof typeof OPTION_FLAGS;
const optionKeys = Object.keys(OPTION_FLAGS) as OptionKey[];

function optionHelp(key: OptionKey): string {
  const { flag, help } = OPTION_FLAGS[key];
  const bounds = EDIT_OPTION_BOUNDS[key as keyof typeof EDIT_OPTION_BOUNDS];
  const range = bounds ? ` [${bounds.min}..${bounds.max}]` : '';
  const value = DEFAULT_EDIT_OPTIONS[key];
  const fallback = value === undefined ? '' : ` (default ${value})`;
  return `  --${flag.padEnd(19)} ${help}${range}${fallback}`;
}

const usage = `usage: npm run edit -- (--image IN.png | --from PREVIOUS.png) --instruction "TEXT" [options]
  --out FILE            result PNG (default edit.png); variations get -1, -2 ... suffixes
  --mask FILE           grayscale mask (white = may change); same size as the image or it is resized
  --reference FILE      an image the instruction refers to (repeatable; families that read reference images: FLUX.2 klein)
  --mask-text WORDS     the mask from words ("the circle", "the background"), made by the segmenter
  --mask-out FILE       write the mask --mask-text made, as a grayscale PNG (what will change)
  --segmenter DIR       segmenter for --mask-text: a CLIPSeg ONNX export (default models/tiny-clipseg)
  --model DIR           model folder (default models/tiny-pix2pix)
  --device D            auto | cuda | cpu (default auto)
  --work-side N         working area as the side of an equal-area square (default: the model's native size)
  --init-noise FILE     the initial noise, little-endian float32 in the layout of diffusers' latents= (README)
  --latent-out FILE     write the final latents, little-endian float32 as diffusers' output_type="latent" (README)
${optionKeys.map(optionHelp).join('\n')}`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function readF32(file: string): Float32Array {
  const buf = fs.readFileSync(file);
  if (buf.byteLength % 4 !== 0) fail(`${file}: ${buf.byteLength} bytes is not a whole number of float32 values`);
  const out = new Float32Array(buf.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** The flags' edit options, through the protocol's schema; errors name the flag. */
function parseOptions(values: Record<string, string | boolean | string[] | undefined>): EditOptionsInput {
  const raw: Record<string, unknown> = {};
  for (const key of optionKeys) {
    const { flag, kind } = OPTION_FLAGS[key];
    const value = values[flag];
    if (value === undefined) continue;
    raw[key] = kind === 'number' ? Number(value) : kind === 'boolean' ? (value === 'true' ? true : value === 'false' ? false : value) : value;
  }
  const parsed = editOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    fail(parsed.error.issues.map((issue) => `--${OPTION_FLAGS[issue.path[0] as OptionKey]?.flag ?? String(issue.path[0])}: ${issue.message}`).join('\n'));
  }
  return parsed.data;
}

/** The soft mask the words name in the image; fails (exit 2) when they name nothing, rather than editing everything. */
async function maskFromWords(dir: string, image: RgbaImage, words: string, device: 'auto' | 'cuda' | 'cpu'): Promise<Float32Array> {
  const segmenter = await Segmenter.load(dir, { device, log: (line) => process.stderr.write(line + '\n') });
  try {
    const mask = await segmenter.region(image, words);
    if (maskIsEmpty(mask)) fail(`--mask-text "${words}" matches nothing in this image (the mask came out empty): name something it shows, or pass --mask`);
    return mask;
  } catch (err) {
    if (err instanceof SegmenterInputError) fail(`--mask-text: ${err.message}`);
    throw err;
  } finally {
    await segmenter.release();
  }
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        image: { type: 'string' },
        from: { type: 'string' },
        instruction: { type: 'string' },
        out: { type: 'string', default: 'edit.png' },
        mask: { type: 'string' },
        reference: { type: 'string', multiple: true },
        'mask-text': { type: 'string' },
        'mask-out': { type: 'string' },
        segmenter: { type: 'string', default: DEFAULT_SEGMENTER },
        model: { type: 'string', default: DEFAULT_MODEL },
        device: { type: 'string', default: 'auto' },
        'work-side': { type: 'string' },
        'init-noise': { type: 'string' },
        'latent-out': { type: 'string' },
        ...Object.fromEntries(optionKeys.map((k) => [OPTION_FLAGS[k].flag, { type: 'string' as const }])),
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${usage}`);
  }
  if (values.help) {
    process.stdout.write(usage + '\n');
    return;
  }
  const input = (values.image ?? values.from) as string | undefined;
  if (!input || values.instruction === undefined) fail(`--image (or --from) and --instruction are required\n${usage}`);
  if (!fs.existsSync(input)) fail(`no such image: ${input}`);
  const device = z.enum(['auto', 'cuda', 'cpu']).safeParse(values.device);
  if (!device.success) fail(`--device must be auto, cuda or cpu (got ${values.device})`);
  const workSide = values['work-side'] === undefined ? 0 : Number(values['work-side']);
  if (!Number.isInteger(workSide) || workSide < 0 || workSide > 2048) fail(`--work-side must be an integer in [0, 2048] (0 = native), got ${values['work-side']}`);
  if (values.mask !== undefined && values['mask-text'] !== undefined) fail('give --mask or --mask-text, not both');
  if (values['mask-out'] !== undefined && values['mask-text'] === undefined) fail('--mask-out writes the mask --mask-text makes: give --mask-text too');
  const options = parseOptions(values);

  const image = await decodeImage(fs.readFileSync(input));
  const referenceFiles = (values.reference ?? []) as string[];
  for (const file of referenceFiles) if (!fs.existsSync(file)) fail(`--reference: no such image: ${file}`);
  const references = await Promise.all(referenceFiles.map(async (file) => decodeImage(fs.readFileSync(file))));
  let source: EditSource = { kind: 'pixels', image, references };
  if (values.from) {
    const latentFile = `${values.from}.latent.json`;
    if (!fs.existsSync(latentFile)) fail(`--from ${values.from}: no ${latentFile} beside it (was it written by this command?)`);
    const parsed = storedLatentSchema.safeParse(JSON.parse(fs.readFileSync(latentFile, 'utf8')));
    if (!parsed.success) fail(`${latentFile}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
    const latent: StoredLatent = { ...parsed.data, data: Float32Array.from(parsed.data.data) };
    source = { kind: 'latent', image, latent, references };
  }
  let mask: Float32Array | null = null;
  if (values.mask) {
    const m = await decodeImage(fs.readFileSync(values.mask as string));
    mask = resizeMask(maskFromImage(m), m.width, m.height, image.width, image.height);
  }
  if (values['mask-text'] !== undefined) {
    mask = await maskFromWords(values.segmenter as string, image, values['mask-text'] as string, device.data);
    if (values['mask-out']) {
      fs.writeFileSync(values['mask-out'] as string, await encodePng(maskToImage(mask, image.width, image.height)));
      process.stderr.write(`wrote ${values['mask-out']}\n`);
    }
  }
  // --init-noise: variation k's initial draw is the file's k-th block, its later draws (ancestral steps) seeded
  const initNoise = values['init-noise'] === undefined ? null : readF32(values['init-noise'] as string);
  const variations = options.variations ?? DEFAULT_EDIT_OPTIONS.variations;
  if (initNoise && initNoise.length % variations !== 0) fail(`--init-noise: ${initNoise.length} values do not split into ${variations} variations`);
  const per = initNoise ? initNoise.length / variations : 0;

  const log = (line: string) => process.stderr.write(line + '\n');
  const timer = { onnxMs: 0, calls: 0 };
  const started = performance.now();
  const model = await loadModel(values.model as string, { device: device.data, timer, log });
  const { info } = model;
  log(`model ${info.name} (${info.family}) on ${info.provider} (${info.precision}), native ${info.nativeSize}px`);
  const { reference } = model;
  let result;
  try {
    result = await editImage(localEngine(model, timer), source, [{ instruction: values.instruction as string, mask }], options, {
      onProgress: (p) => process.stderr.write(`\rstep ${p.step}/${p.totalSteps}`),
      noise: initNoise ? (k, seed, grid) => startingWith(reference.toNoise(initNoise.subarray(k * per, (k + 1) * per), grid), seededNoise(seed)) : undefined,
    }, { workSide });
  } catch (err) {
    fail(values['init-noise'] ? `${(err as Error).message} (--init-noise ${values['init-noise']})` : (err as Error).message);
  }
  process.stderr.write('\n');
  const { geometry } = result;
  log(`working size ${geometry.workWidth}x${geometry.workHeight} (crop ${geometry.width}x${geometry.height}+${geometry.x}+${geometry.y})`);
  const out = values.out as string;
  for (const [k, v] of result.variations.entries()) {
    const file = k === 0 ? out : out.replace(/(\.png)?$/i, `-${k}.png`);
    fs.writeFileSync(file, await encodePng(v.image));
    fs.writeFileSync(
      `${file}.latent.json`,
      JSON.stringify({ format: 'layerloop.latent.v1', height: v.latent.height, width: v.latent.width, geometry: v.latent.geometry, data: Array.from(v.latent.data) }),
    );
    log(`wrote ${file} (seed ${v.seed})`);
  }
  if (values['latent-out']) {
    const latents = result.variations.map((v) => reference.fromLatent(v.latent.data, { channels: info.latentChannels, height: v.latent.height, width: v.latent.width }));
    const bytes = Buffer.alloc(latents.reduce((n, l) => n + l.length * 4, 0));
    let at = 0;
    for (const l of latents) for (const value of l) at = bytes.writeFloatLE(value, at);
    fs.writeFileSync(values['latent-out'] as string, bytes);
    const { height, width } = result.variations[0].latent;
    const shape = reference.latentShape({ channels: info.latentChannels, height, width });
    log(`wrote ${values['latent-out']}: [${[latents.length, ...shape].join(', ')}] float32`);
  }
  log(`conditioning from ${result.conditioning}; ${Math.round(performance.now() - started)} ms total, ${Math.round(timer.onnxMs)} ms in onnxruntime`);
  await model.release();
}

main().catch((err) => fail((err as Error).message));
