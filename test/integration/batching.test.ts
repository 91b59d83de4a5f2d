/**
 * Cross-request batching on the shipped tiny model (CPU): concurrent edits that share the UNet's runs give each
 * exactly its solo result (final latents and decoded pixels within 1e-5), whatever their seeds, instructions,
 * masks, samplers or strengths; cancelling one leaves the others' results unchanged; the worker (the server's
 * engine) runs several edits at once with --batch; and so does the real embedded server, with the same result
 * images as the edits run one by one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { editOptions } from '../../server/edit/edit-image';
import { Engine } from '../../server/engine/engine';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine, type TensorEngine } from '../../server/engine/local';
import type { RunTimer } from '../../server/engine/ort';
import { Pix2PixSessions } from '../../server/engine/pix2pix/sessions';
import type { EngineInput, EngineResult } from '../../server/engine/pipeline';
import { EditCancelledError } from '../../server/engine/sample';
import { decodeImage, maskFromImage } from '../../server/imaging/image';
import type { EditOptionsInput, EditRequestInput } from '../../shared/protocol';
import { instruction, makeClient, runEdit, startServer, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');
const FIXTURE = path.join(ROOT, 'test', 'fixtures');
const quiet = () => {};
const SIDE = 128;

/** The engine's view of a 128x128 RGBA picture: planes in [-1, 1]. */
function planes(rgba: Uint8Array | Uint8ClampedArray): Float32Array {
  const n = SIDE * SIDE;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = rgba[i * 4 + c] / 127.5 - 1;
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Each variation's latent and decoded image equal the solo result's within 1e-5. */
function expectSameResult(batched: EngineResult, solo: EngineResult): void {
  expect(batched.variations.map((v) => v.seed)).toEqual(solo.variations.map((v) => v.seed));
  batched.variations.forEach((v, k) => {
    expect(maxDiff(v.latent, solo.variations[k].latent)).toBeLessThanOrEqual(1e-5);
    expect(maxDiff(v.decoded.data, solo.variations[k].decoded.data)).toBeLessThanOrEqual(1e-5);
  });
}

const unetCalls = (timer: RunTimer) => Object.entries(timer.perFile ?? {}).find(([file]) => file.includes(`unet${path.sep}`))?.[1].calls ?? 0;

describe('cross-request batching (tiny model, CPU)', () => {
  let soloModel: ModelAdapter;
  let batchModel: ModelAdapter;
  let solo: TensorEngine;
  let batched: TensorEngine;
  const soloTimer: RunTimer = { onnxMs: 0, calls: 0, perFile: {} };
  const batchTimer: RunTimer = { onnxMs: 0, calls: 0, perFile: {} };
  let inputs: EngineInput[];

  beforeAll(async () => {
    soloModel = await loadModel(MODEL, { device: 'cpu', timer: soloTimer, log: quiet });
    batchModel = await loadModel(MODEL, { device: 'cpu', timer: batchTimer, log: quiet, batch: 4 });
    solo = localEngine(soloModel, soloTimer);
    batched = localEngine(batchModel, batchTimer);
    const image = { kind: 'image' as const, image: { data: planes((await decodeImage(fs.readFileSync(path.join(FIXTURE, 'shapes-128.png')))).data), width: SIDE, height: SIDE } };
    const circle = maskFromImage(await decodeImage(fs.readFileSync(path.join(FIXTURE, 'shapes-128-circle-mask.png'))));
    const square = new Float32Array(SIDE * SIDE).map((_, i) => (i % SIDE < 64 && i < SIDE * 64 ? 1 : 0));
    const input = (regions: EngineInput['regions'], options: EditOptionsInput): EngineInput => ({ width: SIDE, height: SIDE, start: image, regions, options: editOptions(options) });
    inputs = [
      input([{ instruction: 'make the circle blue', mask: circle }], { steps: 6, seed: 1 }),
      input([{ instruction: 'make the square red', mask: square }, { instruction: 'make it green', mask: null }], { steps: 6, seed: 2, variations: 2 }),
      input([{ instruction: 'make it night', mask: null }], { steps: 8, seed: 3, strength: 0.6, sampler: 'euler' }),
    ];
  });
  afterAll(async () => {
    await soloModel?.release();
    await batchModel?.release();
  });

  it('gives each of three concurrent edits its solo result, in fewer UNet runs', async () => {
    const alone: EngineResult[] = [];
    for (const input of inputs) alone.push((await solo.edit(input)).result);
    const callsBefore = unetCalls(batchTimer);
    const together = await Promise.all(inputs.map((input) => batched.edit(input)));
    together.forEach(({ result }, k) => expectSameResult(result, alone[k]));
    // 6 + 6 + (8 x 0.6 -> 4) steps alone; shared runs need at most the longest edit's steps plus a catch-up
    const shared = unetCalls(batchTimer) - callsBefore;
    expect(unetCalls(soloTimer)).toBe(16);
    expect(shared).toBeLessThanOrEqual(8);
  });

  it('cancelling one batched edit leaves the others exactly as they are alone', async () => {
    const alone = await Promise.all([solo.edit(inputs[0]), solo.edit(inputs[2])]);
    const abort = new AbortController();
    let steps = 0;
    const cancelled = batched.edit(inputs[1], {
      signal: abort.signal,
      onProgress: () => {
        if (++steps === 2) abort.abort();
      },
    });
    const others = Promise.all([batched.edit(inputs[0]), batched.edit(inputs[2])]);
    await expect(cancelled).rejects.toThrow(EditCancelledError);
    const [a, c] = await others;
    expectSameResult(a.result, alone[0].result);
    expectSameResult(c.result, alone[1].result);
    expect(steps).toBe(2);
  });

  it('edits at another working size run beside the others, never in their runs, with their solo results', async () => {
    const small: EngineInput = { width: 64, height: 64, start: { kind: 'latent', latent: new Float32Array(4 * 8 * 8).fill(0.3) }, regions: [{ instruction: 'make it red', mask: null }], options: editOptions({ steps: 5, seed: 9 }) };
    const alone = [(await solo.edit(inputs[0])).result, (await solo.edit(small)).result];
    const before = unetCalls(batchTimer);
    const together = await Promise.all([batched.edit(inputs[0]), batched.edit(small)]);
    together.forEach(({ result }, k) => expectSameResult(result, alone[k]));
    expect(unetCalls(batchTimer) - before).toBe(6 + 5);
  });

  it('a lone edit with batching on runs the same UNet calls as without', async () => {
    const before = unetCalls(batchTimer);
    const one = await batched.edit(inputs[0]);
    expect(unetCalls(batchTimer) - before).toBe(6);
    expectSameResult(one.result, (await solo.edit(inputs[0])).result);
  });

  it('the engine worker runs edits concurrently with batch > 1 and matches the solo results', async () => {
    const engine = await Engine.start({ modelDir: MODEL, device: 'cpu', log: quiet, threads: 1, batch: 3 });
    try {
      const alone: EngineResult[] = [];
      for (const input of inputs) alone.push((await solo.edit(input)).result);
      const progress: string[] = [];
      const together = await Promise.all(inputs.map((input, k) => engine.edit(input, { onProgress: (p) => progress.push(`${k}:${p.step}`) })));
      together.forEach(({ result }, k) => expectSameResult(result, alone[k]));
      // the edits ran at once: the second one's first step came before the first one's last
      expect(progress.indexOf('1:1')).toBeLessThan(progress.indexOf('0:6'));
    } finally {
      await engine.close();
    }
  });
});

describe('the embedded server with --batch 3', () => {
  let server: ServerProcess;
  let client: Client;
  let requests: EditRequestInput[];

  beforeAll(async () => {
    server = await startServer({ args: ['--batch', '3'] });
    client = makeClient(server.url);
    const sha = (await upload(server.url, fs.readFileSync(path.join(FIXTURE, 'shapes-128.png')))).sha256;
    const edits = [
      ['make the circle blue', 1],
      ['make the square red', 2],
      ['make it snowy', 3],
    ] as const;
    requests = await Promise.all(
      edits.map(async ([text, seed]) => ({
        documentId: (await client.documents.open.mutate({ host: 'web', hostDocumentKey: `batching-${seed}` })).documentId,
        parent: { kind: 'source' as const, imageSha256: sha },
        regions: instruction(text),
        options: { steps: 12, seed, previewEvery: 4 },
      })),
    );
  });
  afterAll(async () => {
    expect((await server.stop()).code).toBe(0);
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('runs three edits at once, each with its own progress and previews, with the results they get alone', async () => {
    const created = await Promise.all(requests.map((r) => client.edits.create.mutate(r)));
    const together = await Promise.all(created.map((c) => waitForJob(client, c.jobId)));
    for (const snap of together) expect(snap).toMatchObject({ state: 'succeeded', progress: { step: 12, totalSteps: 12 }, previewStep: 8 });
    // they overlapped: every one started before any finished
    expect(Math.max(...together.map((s) => s.startedAt!))).toBeLessThan(Math.min(...together.map((s) => s.finishedAt!)));
    const alone = [];
    for (const r of requests) alone.push((await runEdit(client, r)).snap);
    expect(together.map((s) => s.result!.resultSha256s)).toEqual(alone.map((s) => s.result!.resultSha256s));
  });
});

describe('an export that takes one timestep for the whole batch', () => {
  it('shares a run only between calls at the same timestep, and each call gets its own outputs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-batching-'));
    fs.cpSync(MODEL, dir, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'onnx-variants', 'unet-timestep-scalar.onnx'), path.join(dir, 'unet', 'model.onnx'));
    const timer: RunTimer = { onnxMs: 0, calls: 0 };
    const sessions = await Pix2PixSessions.load(dir, { device: 'cpu', timer, log: quiet, batch: 4 });
    try {
      // the fixture UNet echoes its timestep into every output value
      const call = (t: number) => sessions.unet(new Float32Array(3 * 8 * 2 * 2), [3, 8, 2, 2], t, new Float32Array(3 * 77 * 64), [3, 77, 64]);
      const lanes = [sessions.joinBatch(), sessions.joinBatch()];
      const same = await Promise.all([call(10), call(10)]);
      expect(timer.calls).toBe(1);
      for (const out of same) expect(Array.from(out)).toEqual(new Array(3 * 4 * 2 * 2).fill(10));
      const apart = await Promise.all([call(10), call(20)]);
      expect(timer.calls).toBe(3);
      expect(apart.map((out) => [out.length, new Set(out).size, out[0]])).toEqual([
        [48, 1, 10],
        [48, 1, 20],
      ]);
      lanes.forEach((lane) => lane.leave());
    } finally {
      await sessions.release();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
