/**
 * The shared client (shared/client/client.ts, what both plugins and the playground run) against the real server
 * process (dist/server/main.js, built by `npm run build`) over Node's fetch: the wire contract, follow() over SSE
 * (a fetch stream, the token as a connection param) and by polling, to the same events, and the messages the
 * panels show for auth and network failures.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createClient, type FetchLike } from '../../shared/client';
import type { JobEvent } from '../../shared/protocol';
import { pngSize } from '../../plugin-figma/src/geometry';

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

/** Node's fetch, recording every request */
function recordingFetch(): { fetch: FetchLike; requests: { method: string; url: string; headers: Record<string, string> }[] } {
  const requests: { method: string; url: string; headers: Record<string, string> }[] = [];
  return {
    requests,
    fetch: (u, init) => {
      requests.push({ method: init.method, url: u, headers: init.headers });
      return fetch(u, { method: init.method, headers: init.headers, body: init.body, signal: init.signal as AbortSignal | undefined });
    },
  };
}

const makeApi = (options: { serverUrl?: string; token?: string; transport?: 'sse' | 'poll'; fetch?: FetchLike } = {}) =>
  createClient({ serverUrl: options.serverUrl ?? url, token: options.token ?? TOKEN, fetch: options.fetch ?? recordingFetch().fetch, transport: options.transport ?? 'sse', pollMs: 100 });

const png = { contentType: 'image/png' } as const;

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('the plugin client against the real server', () => {
  it('opens the document, uploads, edits with a mask, follows over SSE, downloads, continues, lists history', async () => {
    const recorder = recordingFetch();
    const api = makeApi({ serverUrl: `${url}/`, fetch: recorder.fetch });
    expect(await api.health()).toMatchObject({ authRequired: true, model: { provider: 'cpu' } });
    const documentId = await api.openDocument('figma', KEY);
    expect(await api.openDocument('figma', KEY)).toBe(documentId);

    const image = await api.putImage(IMAGE, png);
    const mask = await api.putImage(MASK, png);
    expect(image).toMatchObject({ width: 128, height: 128 });
    const created = await api.createEdit({
      documentId,
      parent: { kind: 'source', imageSha256: image.sha256 },
      regions: [{ instruction: 'make the circle blue', maskSha256: mask.sha256 }],
      options: { steps: 6, previewEvery: 2, seed: 3 },
    });
    expect(created).toMatchObject({ documentId, seed: 3 });
    recorder.requests.length = 0;
    const events = await collect(api.follow(created.jobId));
    // one event stream, no polling: the token rides in its connection params (and the header)
    expect(recorder.requests.map((r) => r.url.replace(url, '').replace(/\?.*/, ''))).toEqual(['/trpc/jobs.watch']);
    expect(recorder.requests[0].url).toContain(`connectionParams=${encodeURIComponent(JSON.stringify({ token: TOKEN }))}`);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('queued');
    expect(types).toContain('progress');
    expect(types).toContain('preview');
    const done = events.at(-1)!;
    if (done.type !== 'succeeded') throw new Error(`job ended ${done.type}`);
    const result = await api.getBlob(done.resultSha256s[0]);
    expect(pngSize(result)).toEqual({ width: 128, height: 128 });

    // a result layer exported unchanged: its hash is the stored result's
    const pixels = await api.putImage(result, png);
    expect(pixels.sha256).toBe(done.resultSha256s[0]);
    const next = await api.createEdit({
      documentId,
      parent: { kind: 'edit', editId: done.editIds[0], pixelsSha256: pixels.sha256 },
      regions: [{ instruction: 'make the background red', maskSha256: null }],
      options: { steps: 4, variations: 2 },
    });
    const second = (await collect(api.follow(next.jobId))).at(-1)!;
    expect(second).toMatchObject({ type: 'succeeded' });
    const history = await api.history(documentId);
    expect(history.filter((n) => n.kind === 'edit').map((n) => [n.instruction, n.variation])).toEqual([
      ['make the circle blue', 0],
      ['make the background red', 0],
      ['make the background red', 1],
    ]);
  });

  it('by polling (the Photoshop panel: no streams) it follows the same job to the same end, token in the header only', async () => {
    const recorder = recordingFetch();
    const poller = makeApi({ transport: 'poll', fetch: recorder.fetch });
    const streamer = makeApi();
    const documentId = await poller.openDocument('photoshop', KEY);
    const image = await poller.putImage(IMAGE, png);
    const created = await poller.createEdit({ documentId, parent: { kind: 'source', imageSha256: image.sha256 }, regions: [{ instruction: 'remove the circle', maskSha256: null }], options: { steps: 4, seed: 9 } });
    const [polled, streamed] = await Promise.all([collect(poller.follow(created.jobId)), collect(streamer.follow(created.jobId))]);
    expect(polled.at(-1)).toMatchObject({ type: 'succeeded', editIds: [expect.any(String)] });
    expect(polled.at(-1)).toEqual(streamed.at(-1));
    for (const r of recorder.requests) {
      expect(r.url).not.toContain(TOKEN);
      expect(r.headers.Authorization).toBe(`Bearer ${TOKEN}`);
    }
    expect(recorder.requests.some((r) => r.url.includes('/trpc/jobs.get?'))).toBe(true);
  });

  it('cancels a running job', async () => {
    const api = makeApi();
    const documentId = await api.openDocument('figma', KEY);
    const image = await api.putImage(IMAGE, png);
    const created = await api.createEdit({ documentId, parent: { kind: 'source', imageSha256: image.sha256 }, regions: [{ instruction: 'make the square green', maskSha256: null }], options: { steps: 100, previewEvery: 0 } });
    const seen: string[] = [];
    for await (const e of api.follow(created.jobId)) {
      seen.push(e.type);
      if (e.type === 'progress' && e.step === 2) await api.cancelJob(created.jobId);
    }
    expect(seen.at(-1)).toBe('cancelled');
  });

  it('says what to do about a missing token, a bad request and an unreachable server', async () => {
    const noToken = makeApi({ token: '' });
    await expect(noToken.openDocument('figma', KEY)).rejects.toMatchObject({ kind: 'auth', message: expect.stringContaining('Paste your personal token') });
    await expect(noToken.putImage(IMAGE, png)).rejects.toMatchObject({ kind: 'auth' });
    const api = makeApi();
    await expect(api.getBlob('0'.repeat(64))).rejects.toMatchObject({ kind: 'not-found', message: expect.stringContaining('upload it with PUT /v1/blobs') });
    await expect(api.putImage(new Uint8Array([1, 2, 3]), png)).rejects.toMatchObject({ kind: 'bad-request' });
    await expect(api.getJob('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ kind: 'not-found', code: 'NOT_FOUND' });
    await expect(collect(makeApi({ transport: 'poll' }).follow('00000000-0000-4000-8000-000000000000'))).rejects.toMatchObject({ kind: 'not-found', message: expect.stringMatching(/^The server no longer knows this edit/) });
    const gone = makeApi({ serverUrl: 'http://127.0.0.1:9', token: '' });
    await expect(gone.health()).rejects.toMatchObject({ kind: 'network', message: expect.stringContaining("Can't reach the layerloop server at http://127.0.0.1:9") });
  });
});
