/**
 * README's "Masks from words" example, run as written (dist/cli/edit.js for `npm run edit --`, outputs moved to a
 * temporary folder): the mask from "the circle" covers the circle, the circle turns blue and nothing outside the
 * mask changes; words naming nothing in the image stop with exit 2 and a message, writing no result.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeImage, maskFromImage, type RgbaImage } from '../../server/imaging/image';
import { loadHeldout, meanColour, nearestColour } from '../../bench/lib/heldout';
import { readmeEditCommands } from '../support/readme';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'edit.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-mask-text-cli-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Runs the CLI with README's arguments, output files redirected into `work`. */
function run(args: string[]): { code: number | null; stderr: string } {
  const moved = args.map((a, i) => (['--out', '--mask-out'].includes(args[i - 1]) ? path.join(work, a) : a));
  const r = spawnSync(process.execPath, [CLI, '--device', 'cpu', ...moved], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

const read = async (file: string): Promise<RgbaImage> => decodeImage(fs.readFileSync(file));

it('README: the mask from "the circle" covers the circle, the circle turns blue, nothing outside the mask changes', async () => {
  const [first, second] = readmeEditCommands('## Masks from words');
  expect(first).toEqual(expect.arrayContaining(['--mask-text', 'the circle', '--mask-out', 'circle-mask.png']));
  const r = run(first);
  expect([r.code, r.stderr]).toEqual([0, expect.stringContaining('wrote')]);

  const mask = maskFromImage(await read(path.join(work, 'circle-mask.png')));
  const drawn = maskFromImage(await read(path.join(FIXTURES, 'shapes-128-circle-mask.png')));
  let inter = 0;
  let union = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] >= 0.5 && drawn[i] >= 0.5) inter++;
    if (mask[i] >= 0.5 || drawn[i] >= 0.5) union++;
  }
  expect(inter / union).toBeGreaterThanOrEqual(0.8);

  const source = await read(path.join(FIXTURES, 'shapes-128.png'));
  const out = await read(path.join(work, 'edit.png'));
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 0) for (let c = 0; c < 3; c++) expect(out.data[i * 4 + c]).toBe(source.data[i * 4 + c]);
  }
  const { palette } = await loadHeldout();
  const inside = Float32Array.from(mask, (v, i) => (v >= 0.99 && drawn[i] >= 0.99 ? 1 : 0));
  expect(nearestColour(meanColour(out, inside), palette)).toBe('blue');

  expect(second).toEqual(expect.arrayContaining(['--mask-text', 'the diamond']));
  const refused = run(second);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('error: --mask-text "the diamond" matches nothing in this image (the mask came out empty): name something it shows, or pass --mask');
  expect(refused.stderr).not.toContain('wrote'); // no result, no mask file
}, 60_000);

it('refuses --mask with --mask-text, and unknown words, naming the flag', () => {
  const image = path.join(FIXTURES, 'shapes-128.png');
  const both = run(['--image', image, '--instruction', 'x', '--mask', path.join(FIXTURES, 'shapes-128-circle-mask.png'), '--mask-text', 'the circle']);
  expect([both.code, both.stderr.trim()]).toEqual([2, 'error: give --mask or --mask-text, not both']);
  const unknown = run(['--image', image, '--instruction', 'x', '--mask-text', 'the hexagon']);
  expect([unknown.code, unknown.stderr.trim()]).toEqual([2, 'error: --mask-text: the segmenter does not know "hexagon": use words it knows, or draw a mask']);
});
