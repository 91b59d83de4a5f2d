/**
 * One edit from the command line, on the shipped model by default:
 *
 *   npm run edit -- --image test/fixtures/shapes-128.png --instruction "make the circle blue" --out edit.png
 *   npm run edit -- --from edit.png --instruction "make the square green" --out edit2.png   # latent iteration
 *
 * Each result is written as PNG plus `<out>.latent.json` (the stored latent and its geometry); `--from` a
 * previous result continues from that latent instead of re-encoding its pixels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Pix2PixModel } from '../engine/models';
import { edit, DEFAULT_EDIT_OPTIONS, type EditSource, type Locality, type StoredLatent } from '../engine/pipeline';
import { decodeImage, encodePng, maskFromImage, resizeMask } from '../imaging/image';
import type { SamplerName } from '../engine/schedules';

const DEFAULT_MODEL = path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix');

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

const usage = `usage: npm run edit -- (--image IN.png | --from PREVIOUS.png) --instruction "TEXT" [options]
  --out FILE          result PNG (default edit.png); variations get -1, -2 ... suffixes
  --mask FILE         grayscale mask (white = may change); same size as the image or it is resized
  --model DIR         model folder (default models/tiny-pix2pix)
  --device D          auto | cuda | cpu (default auto)
  --steps N           denoising steps (default ${DEFAULT_EDIT_OPTIONS.steps})
  --text-scale X      instruction guidance (default ${DEFAULT_EDIT_OPTIONS.textScale})
  --image-scale X     image guidance (default ${DEFAULT_EDIT_OPTIONS.imageScale})
  --locality M        guidance | blend | both (default ${DEFAULT_EDIT_OPTIONS.locality})
  --spread X          0 (the mask exactly) .. 1 (whole image) (default 0)
  --strength X        (0,1]: below 1 starts from the noised source (default 1)
  --sampler S         euler_ancestral | euler | ddim (default euler_ancestral)
  --variations N      results to make (default 1)
  --seed N            random seed (default 0)`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        image: { type: 'string' },
        from: { type: 'string' },
        instruction: { type: 'string' },
        out: { type: 'string', default: 'edit.png' },
        mask: { type: 'string' },
        model: { type: 'string', default: DEFAULT_MODEL },
        device: { type: 'string', default: 'auto' },
        steps: { type: 'string' },
        'text-scale': { type: 'string' },
        'image-scale': { type: 'string' },
        locality: { type: 'string' },
        spread: { type: 'string' },
        strength: { type: 'string' },
        sampler: { type: 'string' },
        variations: { type: 'string' },
        seed: { type: 'string' },
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

  const num = (key: string, schema: z.ZodNumber) => {
    if (values[key] === undefined) return undefined;
    const parsed = schema.safeParse(Number(values[key]));
    if (!parsed.success) fail(`--${key}: ${parsed.error.issues[0].message} (got ${values[key]})`);
    return parsed.data;
  };
  const options = {
    steps: num('steps', z.number().int().min(1).max(200)),
    textScale: num('text-scale', z.number().min(0).max(30)),
    imageScale: num('image-scale', z.number().min(0).max(10)),
    spread: num('spread', z.number().min(0).max(1)),
    strength: num('strength', z.number().gt(0).max(1)),
    variations: num('variations', z.number().int().min(1).max(16)),
    seed: num('seed', z.number().int().min(0)),
    locality: values.locality as Locality | undefined,
    sampler: values.sampler as SamplerName | undefined,
  };
  if (options.locality && !['guidance', 'blend', 'both'].includes(options.locality)) fail('--locality must be guidance, blend or both');
  if (options.sampler && !['euler_ancestral', 'euler', 'ddim'].includes(options.sampler)) fail('--sampler must be euler_ancestral, euler or ddim');
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));

  const image = await decodeImage(fs.readFileSync(input));
  let source: EditSource = { kind: 'pixels', image };
  if (values.from) {
    const latentFile = `${values.from}.latent.json`;
    if (!fs.existsSync(latentFile)) fail(`--from ${values.from}: no ${latentFile} beside it (was it written by this command?)`);
    const parsed = storedLatentSchema.safeParse(JSON.parse(fs.readFileSync(latentFile, 'utf8')));
    if (!parsed.success) fail(`${latentFile}: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
    const latent: StoredLatent = { ...parsed.data, data: Float32Array.from(parsed.data.data) };
    source = { kind: 'latent', image, latent };
  }
  let mask: Float32Array | null = null;
  if (values.mask) {
    const m = await decodeImage(fs.readFileSync(values.mask as string));
    mask = resizeMask(maskFromImage(m), m.width, m.height, image.width, image.height);
  }

  const log = (line: string) => process.stderr.write(line + '\n');
  const timer = { onnxMs: 0, calls: 0 };
  const started = performance.now();
  const model = await Pix2PixModel.load(values.model as string, { device: device.data, timer, log });
  log(`model ${model.info.name} on ${model.info.provider} (${model.info.precision}), native ${model.info.nativeSize}px`);
  const result = await edit(model, source, [{ instruction: values.instruction as string, mask }], defined, {
    onProgress: (p) => process.stderr.write(`\rstep ${p.step}/${p.totalSteps}`),
  });
  process.stderr.write('\n');
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
  log(`conditioning from ${result.conditioning}; ${Math.round(performance.now() - started)} ms total, ${Math.round(timer.onnxMs)} ms in onnxruntime`);
  await model.release();
}

main().catch((err) => fail((err as Error).message));
