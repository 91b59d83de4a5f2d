/**
 * The Figma plugin's network client (plugin-figma/src/trpc-api.ts, what the UI iframe runs) against the real
 * server process (dist/server/main.js, built by `npm run build`): the wire contract, SSE with the token as a
 * connection param, the polling fallback, and the messages the panel shows for auth and network failures.
 * Node 20 has no EventSource: the `eventsource` ponyfill stands in for the browser's.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventSource } from 'eventsource';
import type { JobEvent } from '../../shared/protocol';
import { pngSize } from '../../plugin-figma/src/geometry';
import { createHttpApi } from '../../plugin-figma/src/trpc-api';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
const IMAGE = new Uint8Array(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-128.png')));
const MASK = new Uint8Array(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-128-circle-mask.png')));
const TOKEN = 'figma-test-token-0123';
const KEY = '44444444-4444-4444-8444-444444444444';

let url = '';
let stop: () => Promise<void> = async () => {};

beforeAll(async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-figma-'));
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir, '--device', 'cpu'], {
    cwd: ROOT,
    env: { ...process.env, LAYERLOOP_TOKEN: TOKEN, LAYERLOOP_HOST: '' },
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${err}`)), 60_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /layerloop listening on http:\/\/[^\s:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    });
    void exited.then(() => reject(new Error(`server exited before listening:\n${err}`)));
  });
  stop = async () => {
    proc.kill('SIGTERM');
    await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}, 90_000);

afterAll(() => stop());

afterEach(() => {
  delete (globalThis as { EventSource?: unknown }).EventSource;
});

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('the plugin client against the real server', () => {
  it('opens the document, uploads, edits with a mask, follows over SSE, downloads, continues, lists history', async () => {
    (globalThis as { EventSource?: unknown }).EventSource = EventSource;
    const api = createHttpApi({ serverUrl: `${url}/`, token: TOKEN });
    expect(await api.health()).toMatchObject({ authRequired: true });
    const documentId = await api.openDocument(KEY);
    expect(await api.openDocument(KEY)).toBe(documentId);

    const image = await api.putPng(IMAGE);
    const mask = await api.putPng(MASK);
    expect(image).toMatchObject({ width: 128, height: 128 });
    const created = await api.createEdit({
      documentId,
      parent: { kind: 'source', imageSha256: image.sha256 },
      regions: [{ instruction: 'make the circle blue', maskSha256: mask.sha256 }],
      options: { steps: 6, previewEvery: 2, seed: 3 },
    });
    expect(created).toMatchObject({ documentId, seed: 3 });
    const events = await collect(api.watchJob(created.jobId, new AbortController().signal));
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('queued');
    expect(types).toContain('progress');
    expect(types).toContain('preview');
    const done = events.at(-1)!;
    if (done.type !== 'succeeded') throw new Error(`job ended ${done.type}`);
    const result = await api.getBlob(done.resultSha256s[0]);
    expect(pngSize(result)).toEqual({ width: 128, height: 128 });

    // a result layer exported unchanged: its hash is the stored result's
    const pixels = await api.putPng(result);
    expect(pixels.sha256).toBe(done.resultSha256s[0]);
    const next = await api.createEdit({
      documentId,
      parent: { kind: 'edit', editId: done.editIds[0], pixelsSha256: pixels.sha256 },
      regions: [{ instruction: 'make the background red', maskSha256: null }],
      options: { steps: 4, variations: 2 },
    });
    const second = (await collect(api.watchJob(next.jobId, new AbortController().signal))).at(-1)!;
    expect(second).toMatchObject({ type: 'succeeded' });
    const history = await api.history(documentId);
    expect(history.filter((n) => n.kind === 'edit').map((n) => [n.instruction, n.variation])).toEqual([
      ['make the circle blue', 0],
      ['make the background red', 0],
      ['make the background red', 1],
    ]);
  });

  it('without EventSource it follows the job by polling, to the same end', async () => {
    const api = createHttpApi({ serverUrl: url, token: TOKEN, pollMs: 100 });
    const documentId = await api.openDocument(KEY);
    const image = await api.putPng(IMAGE);
    const created = await api.createEdit({ documentId, parent: { kind: 'source', imageSha256: image.sha256 }, regions: [{ instruction: 'remove the circle', maskSha256: null }], options: { steps: 4 } });
    const events = await collect(api.watchJob(created.jobId, new AbortController().signal));
    expect(events.at(-1)).toMatchObject({ type: 'succeeded', editIds: [expect.any(String)] });
  });

  it('cancels a running job', async () => {
    (globalThis as { EventSource?: unknown }).EventSource = EventSource;
    const api = createHttpApi({ serverUrl: url, token: TOKEN });
    const documentId = await api.openDocument(KEY);
    const image = await api.putPng(IMAGE);
    const created = await api.createEdit({ documentId, parent: { kind: 'source', imageSha256: image.sha256 }, regions: [{ instruction: 'make the square green', maskSha256: null }], options: { steps: 100, previewEvery: 0 } });
    const seen: string[] = [];
    for await (const e of api.watchJob(created.jobId, new AbortController().signal)) {
      seen.push(e.type);
      if (e.type === 'progress' && e.step === 2) await api.cancelJob(created.jobId);
    }
    expect(seen.at(-1)).toBe('cancelled');
  });

  it('says what to do about a missing token, a bad request and an unreachable server', async () => {
    const noToken = createHttpApi({ serverUrl: url, token: '' });
    await expect(noToken.openDocument(KEY)).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Paste the token') });
    await expect(noToken.putPng(IMAGE)).rejects.toMatchObject({ kind: 'auth' });
    const api = createHttpApi({ serverUrl: url, token: TOKEN });
    await expect(api.getBlob('0'.repeat(64))).rejects.toMatchObject({ kind: 'not-found', message: expect.stringContaining('upload it with PUT /v1/blobs') });
    await expect(api.putPng(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ kind: 'bad-request' });
    const gone = createHttpApi({ serverUrl: 'http://127.0.0.1:9', token: '' });
    await expect(gone.health()).rejects.toMatchObject({ kind: 'network', message: expect.stringContaining("Can't reach the layerloop server at http://127.0.0.1:9") });
  });
});
