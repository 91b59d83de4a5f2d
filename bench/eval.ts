/**
 * A model's EVAL.md figures measured through the TypeScript engine (the product's path, the exported ONNX files):
 * the held-out shapes-world cases tools/tiny-model/evaluate.py scores, edited globally (no mask), scored the same
 * way: empty-instruction PSNR, recolour / background / remove success and PSNR outside the edit, VAE round trip.
 *
 *   python tools/tiny-model/make_heldout_fixtures.py --eval-set --out /tmp/eval-cases    (240 cases, seed 20261124)
 *   npm run bench:eval -- --model models/tiny-flux2-klein --cases /tmp/eval-cases [--steps N] [--text-scale S]
 *       [--write models/tiny-flux2-klein/EVAL.md]
 *
 * --steps defaults to the product's (20), --text-scale to the model family's; --write rewrites the file's figures and
 * keeps everything below its notes marker.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_EDIT_OPTIONS } from '../shared/protocol';
import { editImage } from '../server/edit/edit-image';
import { loadModel } from '../server/engine/families';
import { localEngine } from '../server/engine/local';
import { SAMPLERS } from '../server/engine/samplers';
import { fromModelTensor, toModelTensor, type RgbaImage } from '../server/imaging/image';
import { benchArgs, round } from './lib/args';
import { loadHeldout, mean, meanColour, nearestColour, psnr } from './lib/heldout';

const NOTES_MARKER = '<!-- notes: kept by evaluate.py -->';

interface Row {
  op: string;
  psnrInput: number;
  psnrOutside: number;
  psnrTargetInside: number | null;
  success: boolean | null;
}

async function main(): Promise<void> {
  const args = benchArgs({ model: '', cases: '', steps: 0, textScale: -1, imageScale: 1.5, write: '', limit: 0 });
  if (!args.model || !args.cases) throw new Error('--model DIR and --cases DIR are required (see the header of bench/eval.ts)');
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(path.resolve(args.model), { device: 'cpu', timer, log: (l) => process.stderr.write(l + '\n') });
  const engine = localEngine(model, timer);
  const { info } = model;
  const steps = args.steps || DEFAULT_EDIT_OPTIONS.steps;
  // left out of the request unless given: the engine applies the family's default, as for an API client
  const textScale = args.textScale >= 0 ? args.textScale : undefined;
  const { palette, cases: all } = await loadHeldout(path.resolve(args.cases));
  const cases = args.limit ? all.slice(0, args.limit) : all;
  const started = performance.now();
  const rows: Row[] = [];
  const vae: number[] = [];
  for (const [k, c] of cases.entries()) {
    vae.push(psnr(await roundTrip(model, c.source), c.source));
    const v = (await editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask: null }], { steps, ...(textScale !== undefined && { textScale }), imageScale: args.imageScale, seed: k })).variations[0];
    const out = v.image;
    const row: Row = {
      op: c.op,
      psnrInput: psnr(out, c.source),
      psnrOutside: psnr(out, c.source, (i) => c.mask[i] === 0),
      psnrTargetInside: c.op === 'identity' ? null : psnr(out, c.target, c.mask),
      success: null,
    };
    // the same tests as evaluate.py: the interior's mean colour against the palette
    if (c.op === 'recolour' || c.op === 'background') row.success = nearestColour(meanColour(out, c.interior), palette) === c.colour;
    if (c.op === 'remove') row.success = nearestColour(meanColour(out, c.interior), palette) !== nearestColour(meanColour(c.source, c.interior), palette);
    rows.push(row);
    if ((k + 1) % 20 === 0) process.stderr.write(`${k + 1}/${cases.length} cases, ${round((performance.now() - started) / 1000, 1)} s\n`);
  }
  await model.release();
  const of = (op: string) => rows.filter((r) => r.op === op);
  const rate = (op: string) => of(op).filter((r) => r.success).length / Math.max(1, of(op).length);
  const avg = (op: string, key: 'psnrInput' | 'psnrOutside' | 'psnrTargetInside') => mean(of(op).map((r) => r[key] ?? NaN));
  const summary = {
    benchmark: 'eval',
    model: info.name,
    family: info.family,
    cases: rows.length,
    steps,
    textScale: textScale ?? info.defaultTextScale,
    vae_roundtrip_psnr: mean(vae),
    identity_psnr: avg('identity', 'psnrInput'),
    recolour_success: rate('recolour'),
    recolour_outside_psnr: avg('recolour', 'psnrOutside'),
    recolour_target_psnr_inside: avg('recolour', 'psnrTargetInside'),
    background_success: rate('background'),
    background_outside_psnr: avg('background', 'psnrOutside'),
    remove_success: rate('remove'),
    remove_outside_psnr: avg('remove', 'psnrOutside'),
    remove_target_psnr_inside: avg('remove', 'psnrTargetInside'),
    seconds: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  if (args.write) writeEval(args.write, summary, `npm run bench:eval -- ${process.argv.slice(2).join(' ')}`);
}

/** The model's VAE round trip of one image at its own size: encode (as an edit's conditioning does), decode. */
async function roundTrip(model: Awaited<ReturnType<typeof loadModel>>, image: RgbaImage): Promise<RgbaImage> {
  const f = model.info.latentFactor;
  const grid = { channels: model.info.latentChannels, height: image.height / f, width: image.width / f };
  const schedule = model.schedule(SAMPLERS[model.info.defaultSampler], 1, grid);
  const c = await model.condition({ kind: 'image', image: { data: toModelTensor(image), width: image.width, height: image.height } }, [''], grid, schedule);
  const d = await model.decode(c.source, grid);
  return fromModelTensor(d.data, d.width, d.height);
}

function writeEval(file: string, s: Record<string, string | number>, command: string): void {
  const n = (k: string) => Number(s[k]);
  const db = (k: string) => `${n(k).toFixed(2)} dB`;
  const pct = (k: string) => `${(100 * n(k)).toFixed(1)} %`;
  const targets: [string, string, string, boolean][] = [
    ['Empty instruction reproduces the input (PSNR)', db('identity_psnr'), '>= 24 dB', n('identity_psnr') >= 24],
    ["Recolour: shape's colour nearest to the named one", pct('recolour_success'), '>= 80 %', n('recolour_success') >= 0.8],
    ['Recolour: PSNR outside the edited shape', db('recolour_outside_psnr'), '>= 22 dB', n('recolour_outside_psnr') >= 22],
    ['VAE round trip (PSNR)', db('vae_roundtrip_psnr'), '>= 28 dB', n('vae_roundtrip_psnr') >= 28],
  ];
  const extra: [string, string][] = [
    ['Recolour: PSNR to the target inside the shape', db('recolour_target_psnr_inside')],
    ['Background recolour: background colour nearest to the named one', pct('background_success')],
    ['Background recolour: PSNR of the shapes (outside the edit)', db('background_outside_psnr')],
    ["Remove: the shape's colour is gone from its area", pct('remove_success')],
    ['Remove: PSNR to the target inside the removed area', db('remove_target_psnr_inside')],
    ['Remove: PSNR outside the removed shape', db('remove_outside_psnr')],
  ];
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const notes = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER)) : '';
  const lines = [
    `# ${s.model} evaluation`,
    '',
    `Held-out shapes-world cases: ${s.cases} (recolour, background, remove, empty instruction in turn), the cases and targets of ` +
      `models/tiny-pix2pix/EVAL.md (tools/tiny-model/evaluate.py, seed 20261124, which no training run uses). Global edits (no mask), ` +
      `run through the exported ONNX files by the TypeScript engine (onnxruntime-node, CPU): ${s.family}, ${s.steps} steps, text scale ${s.textScale} ` +
      `(ignored by a distilled model), seed = case index. Took ${s.seconds} s on a 2-core machine shared with training runs.`,
    '',
    `Command (after \`python tools/tiny-model/make_heldout_fixtures.py --eval-set --out /tmp/eval-cases\`): \`${command}\``,
    '',
    '| target | measured | goal | met |',
    '|---|---|---|---|',
    ...targets.map(([name, v, goal, ok]) => `| ${name} | ${v} | ${goal} | ${ok ? 'yes' : 'NO'} |`),
    '',
    '| further figures | measured |',
    '|---|---|',
    ...extra.map(([name, v]) => `| ${name} | ${v} |`),
    '',
    'Raw figures:',
    '',
    '```json',
    JSON.stringify(s, null, 2),
    '```',
    '',
  ];
  fs.writeFileSync(file, lines.join('\n') + (notes ? '\n' + notes : ''));
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
