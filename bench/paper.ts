/**
 * The paper table, on held-out shapes-world cases:
 *  1. EMILIE (Fig. 2 / App. B): ten successive empty-instruction edits, PSNR to the original after each,
 *     image iteration (decode, re-encode each round) vs latent iteration (continue from the stored latent).
 *  2. Locality: a masked recolour in each mode (guidance / blend / both, and no locality as a baseline):
 *     how much changes outside the mask before compositing, and whether the shape took the colour.
 *  3. Blended Latent Diffusion's thin-mask claim: a thin band across the shape, with and without progressive
 *     mask shrinking, at the model's native 128 px with soft latent masks (as before) and at a 256 px working
 *     size with BLD's binarised latent masks (threshold 0.5), with the whole shape as a control.
 *  4. Large layers: the cases at 4x the native size with a fine texture, edited globally and masked; sharpness
 *     inside the shape, PSNR where the instruction should change nothing, whether the recolour happened, and
 *     outlines left behind by removals, for the naive upsampling, plain detail transfer and the guided transfer
 *     the product uses (server/edit/detail.ts).
 *
 *   npm run bench:paper [-- --write] [--sections 1,2,3,4] [--model DIR] [--steps N]
 *   (--write rewrites the model's paper section of bench/RESULTS.md; tiny-pix2pix by default; text guidance is
 *   the model family's default)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LOCALITIES } from '../shared/protocol';
import { pasteMask } from '../server/edit/compose';
import { addDetail, gateDetail, highFrequencies, lumaPlane, structureGate, textureAmplitude, upsampleWithDetail } from '../server/edit/detail';
import { editImage, type EditSource, type EditVariation } from '../server/edit/edit-image';
import type { Geometry } from '../server/edit/geometry';
import { loadModel } from '../server/engine/families';
import { localEngine, type TensorEngine } from '../server/engine/local';
import { binarizeMask, downsampleMask } from '../server/engine/masks';
import { compositeInto, cropImage, resizeImage, resizeMask, type RgbaImage } from '../server/imaging/image';
import { benchArgs, round } from './lib/args';
import { loadHeldout, meanColour, mean, nearestColour, psnr, type HeldoutCase } from './lib/heldout';
import { largeCase, outlineBand, outlineLeft, sharpness } from './lib/large';

const ROUNDS = 10;
type Palette = Record<string, [number, number, number]>;

/** A band `rows` pixels tall across the middle of the shape's interior, starting at row `from(mid)`. */
function band(interior: Float32Array, width: number, rows: number, from: (mid: number) => number): Float32Array {
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < interior.length; i++) {
    if (interior[i] > 0.5) {
      const y = Math.floor(i / width);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  const start = from(Math.round((y0 + y1) / 2));
  const out = new Float32Array(interior.length);
  for (let i = 0; i < out.length; i++) {
    const y = Math.floor(i / width);
    if (interior[i] > 0.5 && y >= start && y < start + rows) out[i] = 1;
  }
  return out;
}

function doubled(m: Float32Array, w: number): Float32Array {
  const out = new Float32Array(m.length * 4);
  for (let y = 0; y < (m.length / w) * 2; y++) for (let x = 0; x < w * 2; x++) out[y * w * 2 + x] = m[Math.floor(y / 2) * w + Math.floor(x / 2)];
  return out;
}

const binaryLabel = (setting: string) => (setting.includes('binary') ? 'binarised at 0.5' : 'soft (area average)');

async function thinMasks(engine: TensorEngine, recolour: HeldoutCase[], palette: Palette, steps: number) {
  const rows = [];
  for (const setting of ['native-soft', 'large-soft', 'large-binary', 'large-binary-control'] as const) {
    for (const progressiveShrink of [false, true]) {
      let hits = 0;
      const inside: number[] = [];
      const latentCells: number[] = [];
      for (const [k, c] of recolour.entries()) {
        let image = c.source;
        let mask: Float32Array;
        let workSide = 128;
        if (setting === 'native-soft') {
          mask = band(c.interior, 128, 6, (mid) => mid - 3); // as before: 6 px, under one 8 px latent row
        } else {
          image = await resizeImage(c.source, 256, 256);
          const interior = doubled(c.interior, 128);
          workSide = 256;
          // 6 px inside one latent row (rows 8j+1 .. 8j+6): that row binarises to 1, the thinnest mask BLD keeps
          mask = setting === 'large-binary-control' ? interior : band(interior, 256, 6, (mid) => 8 * Math.floor(mid / 8) + 1);
        }
        const binaryMasks = setting === 'large-binary' || setting === 'large-binary-control';
        const latent = downsampleMask(mask, workSide, workSide, 8);
        latentCells.push((binaryMasks ? binarizeMask(latent) : latent).reduce((a, b) => a + (b > 0 ? 1 : 0), 0));
        const v = (
          await editImage(engine, { kind: 'pixels', image }, [{ instruction: c.instruction, mask }], { steps, seed: k, locality: 'blend', progressiveShrink }, {}, { workSide, binaryMasks })
        ).variations[0];
        if (nearestColour(meanColour(v.image, mask), palette) === c.colour) hits++;
        inside.push(psnr(v.image, image, mask));
      }
      rows.push({
        setting,
        workingSize: setting === 'native-soft' ? 128 : 256,
        latentMasks: binaryLabel(setting),
        mask: setting === 'large-binary-control' ? 'whole shape (control)' : '6 px band',
        progressiveShrink,
        cases: recolour.length,
        meanLatentCellsInMask: round(mean(latentCells), 1),
        success: round(hits / recolour.length, 3),
        maskPsnrToSource: round(mean(inside), 2),
      });
    }
  }
  return rows;
}

type Method = 'naive' | 'plain' | 'gated' | 'guided';
const METHODS: readonly Method[] = ['naive', 'plain', 'gated', 'guided'];

/**
 * The ways back to the source's size from a decoded working image: naive resampling, plain detail transfer,
 * detail through the structure gate alone (nothing where it closes), and the product's (the gate, with
 * texture-sized detail kept where it closes).
 */
async function upsamplings(source: RgbaImage, work: RgbaImage, g: Geometry, mask: Float32Array | null): Promise<Record<Method, RgbaImage>> {
  const crop = cropImage(source, g.x, g.y, g.width, g.height);
  const cropWork = await resizeImage(crop, g.workWidth, g.workHeight);
  const up = await resizeImage(work, g.width, g.height);
  const detail = highFrequencies(crop, await resizeImage(cropWork, g.width, g.height));
  const t = textureAmplitude(detail);
  const gate = resizeMask(structureGate(lumaPlane(work), lumaPlane(cropWork), g.workWidth, g.workHeight), g.workWidth, g.workHeight, g.width, g.height);
  return {
    naive: compositeInto(source, up, g.x, g.y, mask),
    plain: compositeInto(source, addDetail(up, detail, t), g.x, g.y, mask),
    gated: compositeInto(source, addDetail(up, gateDetail(Float32Array.from(detail), gate, 0), t), g.x, g.y, mask),
    guided: compositeInto(source, await upsampleWithDetail(work, crop, cropWork), g.x, g.y, mask),
  };
}

export interface LargeRow {
  edit: string;
  method: Method;
  cases: number;
  /** Laplacian variance inside the shape, result / source (/ target for the oracle rows) */
  sharpness: number;
  /** PSNR to the source where the instruction should change nothing (model rows), to the target (oracle rows) */
  psnr: number | null;
  recolourTook: number | null;
  /** oracle removals: the old outline's contrast left in a ring around the removed shape */
  outlineLeft: number | null;
}

async function largeLayers(engine: TensorEngine, cases: HeldoutCase[], palette: Palette, steps: number, factor: number) {
  const recolour = cases.filter((c) => c.op === 'recolour');
  const removal = cases.filter((c) => c.op === 'remove');
  const side = recolour[0].source.width * factor;
  const rows: LargeRow[] = [];
  const perMethod = <T>(make: () => T): Record<Method, T> => ({ naive: make(), plain: make(), gated: make(), guided: make() });
  const collect = () => ({ sharp: perMethod((): number[] => []), psnr: perMethod((): number[] => []), left: perMethod((): number[] => []), hits: perMethod(() => 0) });
  let composeMs = 0;

  // the model's own edits, global and masked
  for (const scope of ['global', 'masked'] as const) {
    const m = collect();
    for (const [k, c] of recolour.entries()) {
      const big = largeCase(c, factor, k);
      const started = performance.now();
      const result = await editImage(engine, { kind: 'pixels', image: big.source }, [{ instruction: c.instruction, mask: scope === 'global' ? null : big.mask }], { steps, seed: k });
      composeMs += performance.now() - started - result.timings.totalMs;
      const mask = pasteMask([scope === 'global' ? null : big.mask], null, 0, side, side, result.geometry);
      const images = await upsamplings(big.source, result.variations[0].decoded, result.geometry, mask);
      const reference = sharpness(big.source, big.interior);
      for (const method of METHODS) {
        m.sharp[method].push(sharpness(images[method], big.interior) / reference);
        if (scope === 'global') m.psnr[method].push(psnr(images[method], big.source, (i) => big.mask[i] === 0));
        if (nearestColour(meanColour(images[method], big.interior), palette) === c.colour) m.hits[method]++;
      }
    }
    for (const method of METHODS) {
      rows.push({
        edit: `model, ${scope} recolour`,
        method,
        cases: recolour.length,
        sharpness: round(mean(m.sharp[method]), 3),
        psnr: scope === 'global' ? round(mean(m.psnr[method]), 2) : null,
        recolourTook: round(m.hits[method] / recolour.length, 3),
        outlineLeft: null,
      });
    }
  }

  // a perfect edit at the working size (the target, resampled): how close each way gets to the target at full size
  for (const [name, group] of [['recolour', recolour], ['removal', removal]] as const) {
    const m = collect();
    for (const [k, c] of group.entries()) {
      const big = largeCase(c, factor, 100 + k);
      const g: Geometry = { x: 0, y: 0, width: side, height: side, workWidth: c.source.width, workHeight: c.source.height };
      const images = await upsamplings(big.source, await resizeImage(big.target, g.workWidth, g.workHeight), g, null);
      const ring = outlineBand(big.interior, side, 2 * factor);
      const reference = sharpness(big.target, big.interior);
      for (const method of METHODS) {
        m.sharp[method].push(sharpness(images[method], big.interior) / reference);
        m.psnr[method].push(psnr(images[method], big.target));
        m.left[method].push(outlineLeft(images[method], big.clean, ring));
      }
    }
    for (const method of METHODS) {
      rows.push({
        edit: `perfect ${name} at the working size`,
        method,
        cases: group.length,
        sharpness: round(mean(m.sharp[method]), 3),
        psnr: round(mean(m.psnr[method]), 2),
        recolourTook: null,
        outlineLeft: name === 'removal' ? round(mean(m.left[method]), 3) : null,
      });
    }
  }
  return { size: `${side}x${side}`, factor, rows, composeMsPerEdit: round(composeMs / (2 * recolour.length), 1) };
}

async function main(): Promise<void> {
  const args = benchArgs({ model: path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix'), steps: 20, write: false, iterationImages: 8, sections: '1,2,3,4', factor: 4 });
  const sections = new Set(String(args.sections).split(',').map(Number));
  if (args.write && (!sections.has(1) || !sections.has(2))) throw new Error('--write needs sections 1 and 2 at least');
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(args.model, { device: 'cpu', timer, log: (l) => process.stderr.write(l + '\n') });
  const engine = localEngine(model, timer);
  const { palette, cases } = await loadHeldout();
  const recolour = cases.filter((c) => c.op === 'recolour');
  const started = performance.now();

  // 1. iteration
  let iteration = null;
  const sources = cases.filter((c) => c.op === 'identity' || c.op === 'recolour').slice(0, args.iterationImages);
  if (sections.has(1)) {
    const perRound = { image: Array.from({ length: ROUNDS }, () => [] as number[]), latent: Array.from({ length: ROUNDS }, () => [] as number[]) };
    for (const [k, c] of sources.entries()) {
      for (const mode of ['image', 'latent'] as const) {
        let source: EditSource = { kind: 'pixels', image: c.source };
        for (let r = 0; r < ROUNDS; r++) {
          const v: EditVariation = (await editImage(engine, source, [{ instruction: '', mask: null }], { steps: args.steps, seed: 1000 * k + r })).variations[0];
          perRound[mode][r].push(psnr(v.image, c.source));
          source = mode === 'latent' ? { kind: 'latent', image: v.image, latent: v.latent } : { kind: 'pixels', image: v.image };
        }
      }
    }
    iteration = Array.from({ length: ROUNDS }, (_, r) => ({ round: r + 1, imageIterationPsnr: round(mean(perRound.image[r]), 2), latentIterationPsnr: round(mean(perRound.latent[r]), 2) }));
  }

  // 2. locality modes
  const locality = [];
  if (sections.has(2)) {
    for (const mode of ['none', 'guidance', 'blend', 'both'] as const) {
      const outside: number[] = [];
      let hits = 0;
      for (const [k, c] of recolour.entries()) {
        const mask = mode === 'none' ? null : c.mask;
        const v = (await editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask }], { steps: args.steps, seed: k, locality: (mode === 'none' ? 'both' : mode) as (typeof LOCALITIES)[number] })).variations[0];
        outside.push(psnr(v.decoded, c.source, (i) => c.mask[i] === 0));
        if (nearestColour(meanColour(v.image, c.interior), palette) === c.colour) hits++;
      }
      locality.push({ mode, cases: recolour.length, outsidePsnrBeforeCompositing: round(mean(outside), 2), successInside: round(hits / recolour.length, 3) });
    }
  }

  // 3. thin masks, 4. large layers
  const thinMask = sections.has(3) ? await thinMasks(engine, recolour, palette, args.steps) : [];
  const large = sections.has(4) ? await largeLayers(engine, cases, palette, args.steps, args.factor) : null;
  await model.release();

  const report = {
    benchmark: 'paper-table',
    model: model.info.name,
    family: model.info.family,
    sampler: model.info.defaultSampler,
    distilled: /distilled/.test(model.info.scheduleSummary),
    steps: args.steps,
    // the requests leave the text scale out: the family's default applies
    guidance: { text: model.info.defaultTextScale, image: 1.5 },
    seconds: round((performance.now() - started) / 1000, 1),
    iteration: iteration && { images: sources.length, rounds: ROUNDS, perRound: iteration },
    locality,
    thinMask,
    largeLayers: large,
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (args.write) writeResults(report);
}

type Report = {
  model: string;
  family: string;
  sampler: string;
  distilled: boolean;
  guidance: { text: number; image: number };
  iteration: { images: number; perRound: { round: number; imageIterationPsnr: number; latentIterationPsnr: number }[] } | null;
  locality: { mode: string; cases: number; outsidePsnrBeforeCompositing: number; successInside: number }[];
  thinMask: Awaited<ReturnType<typeof thinMasks>>;
  largeLayers: Awaited<ReturnType<typeof largeLayers>> | null;
  seconds: number;
  steps: number;
};

/**
 * Rewrites this model's part of bench/RESULTS.md: between `<!-- paper:start -->` and `<!-- paper:end -->` for the
 * default tiny-pix2pix, between `<!-- paper:NAME:start -->` and `<!-- paper:NAME:end -->` for any other model
 * (placed after the default's table and its notes the first time); sections not run are left out.
 */
function writeResults(r: Report): void {
  const file = path.resolve(__dirname, '..', '..', 'bench', 'RESULTS.md');
  const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)} %` : '');
  const large = r.largeLayers;
  const isDefault = r.model === 'tiny-pix2pix';
  const [start, end] = isDefault ? ['<!-- paper:start -->', '<!-- paper:end -->'] : [`<!-- paper:${r.model}:start -->`, `<!-- paper:${r.model}:end -->`];
  const guidance = r.distilled
    ? 'distilled (one transformer call per step, no classifier-free guidance)'
    : r.family === 'InstructPix2Pix' ? `guidance ${r.guidance.text} / ${r.guidance.image}` : `guidance ${r.guidance.text}`;
  const sampler = r.sampler === 'euler_ancestral' ? 'Euler ancestral' : r.sampler === 'euler' ? 'Euler (flow matching)' : r.sampler;
  const lines = [
    start,
    isDefault ? '## Paper table (`npm run bench:paper -- --write`)' : `## Paper table, ${r.model} (${r.family}) (\`npm run bench:paper -- --model models/${r.model} --write --sections ${[1, 2, r.thinMask.length ? 3 : 0, large ? 4 : 0].filter(Boolean).join(',')}\`)`,
    '',
    `${isDefault ? 'Tiny model' : r.model}, CPU, ${r.steps} ${sampler} steps, ${guidance}, held-out cases from \`test/fixtures/heldout\`; took ${r.seconds} s.`,
    '',
    `### 1. Ten successive empty-instruction edits (EMILIE's latent iteration), mean PSNR to the original over ${r.iteration!.images} images`,
    '',
    '| round | image iteration (decode + re-encode) | latent iteration |',
    '|---|---|---|',
    ...r.iteration!.perRound.map((x) => `| ${x.round} | ${x.imageIterationPsnr} dB | ${x.latentIterationPsnr} dB |`),
    '',
    `### 2. Masked recolour by locality mode (${r.locality[0]?.cases} cases)`,
    '',
    '| mode | PSNR outside the mask, before compositing | shape took the named colour |',
    '|---|---|---|',
    ...r.locality.map((x) => `| ${x.mode === 'none' ? 'no mask (global)' : x.mode} | ${x.outsidePsnrBeforeCompositing} dB | ${pct(x.successInside)} |`),
    '',
    'After compositing, pixels outside the mask are bit-identical in every mode (tested in `test/integration/engine.test.ts`).',
    ...(r.thinMask.length
      ? [
          '',
          `### 3. Thin masks (Blended Latent Diffusion's claim; blend mode, ${r.thinMask[0]?.cases} recolour cases)`,
          '',
          '| working size | latent masks | mask | latent cells in the mask (mean) | progressive shrinking | took the named colour | PSNR of the mask area to the source |',
          '|---|---|---|---|---|---|---|',
          ...r.thinMask.map((x) => `| ${x.workingSize} px | ${x.latentMasks} | ${x.mask} | ${x.meanLatentCellsInMask} | ${x.progressiveShrink ? 'on (7, 5, 3, mask)' : 'off'} | ${pct(x.success)} | ${x.maskPsnrToSource} dB |`),
        ]
      : []),
    ...(large
      ? [
          '',
          `### 4. Large layers (${large.size}, ${large.factor}x the native side, with a +-12-level texture; held-out cases scaled up)`,
          '',
          '| edit | back to full size | sharpness in the shape (Laplacian variance, / source or / target) | PSNR (where nothing should change, or to the target) | recolour took | removed outline left |',
          '|---|---|---|---|---|---|',
          ...large.rows.map((x) => `| ${x.edit} | ${x.method} | ${x.sharpness} | ${x.psnr === null ? 'exact outside the mask' : `${x.psnr} dB`} | ${x.recolourTook === null ? '' : pct(x.recolourTook)} | ${x.outlineLeft ?? ''} |`),
          '',
          `Compositing with the guided detail took ${large.composeMsPerEdit} ms per ${large.size} edit on top of the engine (in the image workers, off the main thread).`,
        ]
      : []),
    end,
  ].join('\n');
  const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const block = new RegExp(`${escape(start)}[\\s\\S]*${escape(end)}`);
  let next: string;
  if (block.test(existing)) next = existing.replace(block, () => lines);
  else if (!isDefault && existing.includes('<!-- paper:end -->')) {
    // after the default table and the notes under it: before the next section heading
    const after = existing.indexOf('\n## ', existing.indexOf('<!-- paper:end -->'));
    const at = after < 0 ? existing.length : after + 1;
    next = `${existing.slice(0, at).trimEnd()}\n\n${lines}\n\n${existing.slice(at)}`;
  }
  else next = existing.trimEnd() + '\n\n' + lines + '\n';
  fs.writeFileSync(file, next);
  process.stderr.write(`updated ${file}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
