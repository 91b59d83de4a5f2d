/**
 * A corpus of malformed and hostile requests against the real server process. Each must get a 4xx whose
 * message says what is wrong; afterwards the server is still healthy, still edits, and no document changed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore } from '../../server/store';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const LISTENING = /^layerloop listening on http:\/\/[^\s]+:(\d+) /m;
const MIB = 1024 * 1024;
const ZERO_UUID = '00000000-0000-4000-8000-000000000000';

interface Reply {
  status: number;
  /** the error message, from {error: string} (plain routes) or {error: {message}} (tRPC) */
  message: string;
  headers: Record<string, string | string[] | undefined>;
}

function messageOf(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } };
    if (typeof body.error === 'string') return body.error;
    return body.error?.message ?? '';
  } catch {
    return '';
  }
}

let base = '';

async function request(method: string, pathAndQuery: string, opts: { headers?: Record<string, string>; body?: Uint8Array | string | FormData } = {}): Promise<Reply> {
  const res = await fetch(`${base}${pathAndQuery}`, { method, headers: opts.headers, body: opts.body });
  const text = await res.text();
  return { status: res.status, message: messageOf(text), headers: Object.fromEntries(res.headers.entries()) };
}

/**
 * A subscription over SSE: the stream itself is 200 (EventSource cannot read an error body), and tRPC sends
 * the error as a `serialized-error` event carrying its HTTP status, which is what this reports.
 */
async function sseError(proc: string, input: unknown): Promise<Reply> {
  const res = await fetch(`${base}/trpc/${proc}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers: { Accept: 'text/event-stream' } });
  const text = await res.text();
  const m = /event: serialized-error\ndata: (.*)\n/.exec(text);
  if (!m) return { status: res.status, message: '', headers: {} };
  const error = JSON.parse(m[1]) as { message: string; data: { httpStatus: number } };
  return { status: error.data.httpStatus, message: error.message, headers: {} };
}

const trpcPost = (proc: string, input: unknown) =>
  request('POST', `/trpc/${proc}`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input) });
/** `count` documents.open calls in one tRPC batch (POST /trpc/documents.open,documents.open,...?batch=1) */
const openBatch = (count: number) => {
  const input = Object.fromEntries(Array.from({ length: count }, (_, i) => [i, { host: 'web', hostDocumentKey: `batch-${i}` }]));
  return request('POST', `/trpc/${Array(count).fill('documents.open').join(',')}?batch=1`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input) });
};
const formData = (fields: Record<string, string>) => {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
};
const trpcGet = (proc: string, input: unknown) => request('GET', `/trpc/${proc}?input=${encodeURIComponent(JSON.stringify(input))}`);
const putBlob = (body: Uint8Array | string, contentType: string, query = '', headers: Record<string, string> = {}) =>
  request('PUT', `/v1/blobs${query}`, { headers: { 'Content-Type': contentType, ...headers }, body });

/** Raw bytes on a socket (for what fetch refuses to send); resolves with the reply's status line and body. */
function rawSocket(port: number, payload: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', reject);
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('close', () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, message: messageOf(data.slice(data.indexOf('\r\n\r\n') + 4)), headers: {} });
    });
  });
}

/** Streams `total` bytes (chunked, no Content-Length) and reports the reply, which may come before the end. */
function streamUpload(port: number, total: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/v1/blobs', headers: { 'Content-Type': 'image/png' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, message: messageOf(text), headers: res.headers }));
    });
    req.on('error', (err) => reject(err));
    const chunk = Buffer.alloc(MIB, 7);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** Starts an upload that promises 1 MB, sends a little, and hangs up. */
function abortedUpload(port: number): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/v1/blobs', headers: { 'Content-Type': 'image/png', 'Content-Length': String(MIB) } });
    req.on('error', () => resolve());
    req.write(Buffer.alloc(1000));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 100);
  });
}

// ------------------------------------------------------------------------------------------ fixtures

interface Fixture {
  port: number;
  documentId: string;
  otherDocumentId: string;
  otherEditId: string;
  latentSha: string;
  imageSha: string;
  maskSha: string;
  blackMaskSha: string;
  bigSha: string;
}

const fx = {} as Fixture;
let proc: ChildProcessWithoutNullStreams;
let dataDir: string;
let stderr = '';
let historyBefore = '';

function startServer(): Promise<number> {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-bad-input-'));
  proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir, '--device', 'cpu', '--max-queue', '2'], {
    cwd: ROOT,
    env: { ...process.env, LAYERLOOP_TOKEN: '', LAYERLOOP_HOST: '' },
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = LISTENING.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`server exited (${code}):\n${stderr}`)));
  });
}

async function ok<T>(reply: Promise<Response>): Promise<T> {
  const res = await reply;
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

async function trpcOk<T>(proc: string, input: unknown, method: 'GET' | 'POST' = 'POST'): Promise<T> {
  const url = method === 'GET' ? `${base}/trpc/${proc}?input=${encodeURIComponent(JSON.stringify(input))}` : `${base}/trpc/${proc}`;
  const init: RequestInit = method === 'GET' ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input) };
  return (await ok<{ result: { data: T } }>(fetch(url, init))).result.data;
}

async function uploadOk(body: Uint8Array, contentType = 'image/png', query = ''): Promise<string> {
  return (await ok<{ sha256: string }>(fetch(`${base}/v1/blobs${query}`, { method: 'PUT', headers: { 'Content-Type': contentType }, body }))).sha256;
}

async function waitSucceeded(jobId: string): Promise<{ editIds: string[] }> {
  for (let i = 0; i < 600; i++) {
    const snap = await trpcOk<{ state: string; result: { editIds: string[] } | null; error: string | null }>('jobs.get', { jobId }, 'GET');
    if (snap.state === 'succeeded') return snap.result!;
    if (snap.state === 'failed' || snap.state === 'cancelled') throw new Error(`job ${snap.state}: ${snap.error}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('job did not finish');
}

const histories = async () =>
  JSON.stringify([
    await trpcOk('documents.history', { documentId: fx.documentId }, 'GET'),
    await trpcOk('documents.history', { documentId: fx.otherDocumentId }, 'GET'),
  ]);

beforeAll(async () => {
  fx.port = await startServer();
  base = `http://127.0.0.1:${fx.port}`;
  fx.documentId = (await trpcOk<{ documentId: string }>('documents.open', { host: 'figma', hostDocumentKey: 'bad-input' })).documentId;
  fx.otherDocumentId = (await trpcOk<{ documentId: string }>('documents.open', { host: 'figma', hostDocumentKey: 'other' })).documentId;
  fx.imageSha = await uploadOk(fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
  fx.maskSha = await uploadOk(fs.readFileSync(path.join(FIXTURES, 'shapes-128-circle-mask.png')));
  fx.bigSha = await uploadOk(fs.readFileSync(path.join(FIXTURES, 'shapes-320x224.png')));
  fx.blackMaskSha = await uploadOk(Buffer.alloc(128 * 128 * 4, 0), 'application/octet-stream', '?width=128&height=128');
  // one real edit in the other document: its node and latent are hostile references for this document
  const { jobId } = await trpcOk<{ jobId: string }>('edits.create', {
    documentId: fx.otherDocumentId,
    parent: { kind: 'source', imageSha256: fx.imageSha },
    regions: [{ instruction: 'make the circle blue', maskSha256: null }],
    options: { steps: 2 },
  });
  fx.otherEditId = (await waitSucceeded(jobId)).editIds[0];
  const history = await trpcOk<{ nodes: { id: string; latent: { sha256: string } | null }[] }>('documents.history', { documentId: fx.otherDocumentId }, 'GET');
  fx.latentSha = history.nodes.find((n) => n.id === fx.otherEditId)!.latent!.sha256;
  historyBefore = await histories();
});

afterAll(async () => {
  if (proc.exitCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  const store = await openStore(dataDir);
  try {
    // only the setup edit and the final one became jobs: nothing in the corpus was recorded
    expect((await store.edits.listJobs()).map((j) => j.state)).toEqual(['succeeded', 'succeeded']);
    expect(await store.edits.integrityCheck()).toEqual([]);
  } finally {
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------ the corpus

const validEdit = () => ({
  documentId: fx.documentId,
  parent: { kind: 'source', imageSha256: fx.imageSha },
  regions: [{ instruction: 'make the circle blue', maskSha256: fx.maskSha }],
  options: { steps: 2 },
});
const editWith = (patch: (r: ReturnType<typeof validEdit>) => unknown) => () => trpcPost('edits.create', patch(validEdit()));
const withOptions = (options: Record<string, unknown>) => editWith((r) => ({ ...r, options }));

const png = () => fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));

const CASES: [string, () => Promise<Reply>, number, RegExp][] = [
  // ---- PUT /v1/blobs
  ['empty upload', () => putBlob('', 'image/png'), 400, /body is empty/],
  ['upload as text/plain', () => putBlob('hello', 'text/plain'), 415, /unsupported content type 'text\/plain'/],
  ['upload without a content type', () => request('PUT', '/v1/blobs', { body: png() }), 415, /unsupported content type/],
  ['garbage bytes labelled image/png', () => putBlob('definitely not a png', 'image/png'), 400, /not a readable image\/png/],
  ['a PNG labelled image/jpeg', () => putBlob(png(), 'image/jpeg'), 400, /content type says image\/jpeg but the bytes are png/],
  ['a truncated PNG', () => putBlob(png().subarray(0, 200), 'image/png'), 400, /corrupt or truncated|not a readable/],
  ['raw RGBA without a size', () => putBlob(Buffer.alloc(64), 'application/octet-stream'), 400, /need integer \?width=&height=/],
  ['raw RGBA of the wrong length', () => putBlob(Buffer.alloc(63), 'application/octet-stream', '?width=4&height=4'), 400, /must be 64 bytes/],
  ['raw RGBA 0 pixels wide', () => putBlob(Buffer.alloc(4), 'application/octet-stream', '?width=0&height=1'), 400, /at least 1x1/],
  ['raw RGBA with a negative width', () => putBlob(Buffer.alloc(4), 'application/octet-stream', '?width=-1&height=1'), 400, /at least 1x1/],
  ['raw RGBA with a non-numeric size', () => putBlob(Buffer.alloc(4), 'application/octet-stream', '?width=abc&height=1'), 400, /integer \?width=&height=/],
  ['raw RGBA too long a side', () => putBlob(Buffer.alloc(9000 * 4 * 2), 'application/octet-stream', '?width=9000&height=2'), 400, /at most 8192/],
  ['raw RGBA too narrow', () => putBlob(Buffer.alloc(900 * 10 * 4), 'application/octet-stream', '?width=900&height=10'), 400, /times the short side/],
  ['a declared body over the limit', () => rawSocket(fx.port, `PUT /v1/blobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: ${65 * MIB}\r\n\r\n`), 413, /at most 67108864/],
  ['a streamed body over the limit', () => streamUpload(fx.port, 65 * MIB), 413, /larger than 67108864 bytes/],
  ['a gzip-encoded upload', () => putBlob(png(), 'image/png', '', { 'Content-Encoding': 'gzip' }), 415, /Content-Encoding 'gzip'/],
  ['DELETE a blob', () => request('DELETE', `/v1/blobs/${fx.imageSha}`), 405, /not supported/],
  ['an upload from a web page the server does not serve', () => putBlob(png(), 'image/png', '', { Origin: 'https://evil.example' }), 403, /https:\/\/evil\.example.*--allow-origin/],
  ['GET the blob collection', () => request('GET', '/v1/blobs'), 405, /PUT the image bytes/],
  // ---- GET /v1/blobs/:sha256
  ['a blob id in uppercase', () => request('GET', `/v1/blobs/${fx.imageSha.toUpperCase()}`), 400, /64 lowercase hex/],
  ['a short blob id', () => request('GET', '/v1/blobs/abc123'), 400, /64 lowercase hex/],
  ['a path-traversal blob id', () => request('GET', '/v1/blobs/..%2F..%2F..%2Fetc%2Fpasswd'), 400, /not a blob id/],
  ['a NUL in the blob id', () => request('GET', '/v1/blobs/%00'), 400, /not a blob id/],
  ['an unknown blob', () => request('GET', `/v1/blobs/${'a'.repeat(64)}`), 404, /no blob/],
  // ---- other routes, HTTP-level garbage
  ['an unknown route', () => request('GET', '/admin'), 404, /no route GET \/admin/],
  ['POST to the home page', () => request('POST', '/'), 405, /use GET/],
  ['a malformed request line', () => rawSocket(fx.port, 'HELLO THERE\r\n\r\n'), 400, /malformed HTTP request/],
  ['oversized headers', () => rawSocket(fx.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`), 431, /headers are too large/],
  // ---- browser access: only the server's own pages, Figma's iframe (null) and --allow-origin origins
  ['a CORS preflight from another web page', () => request('OPTIONS', '/trpc/edits.create', { headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } }), 403, /not allowed/],
  ['a private-network preflight from another web page', () => request('OPTIONS', '/v1/blobs', { headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Private-Network': 'true' } }), 403, /not allowed/],
  ['a mutation from another web page', () => request('POST', '/trpc/documents.open', { headers: { Origin: 'http://localhost:9999', 'Content-Type': 'application/json' }, body: '{"host":"web","hostDocumentKey":"csrf"}' }), 403, /--allow-origin http:\/\/localhost:9999/],
  ['a blob read from another web page', () => request('GET', `/v1/blobs/${fx.imageSha}`, { headers: { Origin: 'https://evil.example' } }), 403, /not allowed/],
  ['a request for another host name (DNS rebinding)', () => rawSocket(fx.port, `GET /v1/blobs/${fx.imageSha} HTTP/1.1\r\nHost: evil.example:${fx.port}\r\nConnection: close\r\n\r\n`), 403, /addressed to this machine/],
  // ---- tRPC transport
  ['an unknown procedure', () => trpcGet('admin.dropTables', {}), 404, /No procedure found|not found/i],
  ['invalid JSON body', () => request('POST', '/trpc/documents.open', { headers: { 'Content-Type': 'application/json' }, body: '{"host":' }), 400, /not valid JSON/],
  ['invalid JSON in ?input', () => request('GET', '/trpc/documents.history?input=%7Bnope'), 400, /not valid JSON/],
  ['a query over POST', () => trpcPost('health', {}), 405, /Unsupported POST-request to query/],
  ['a mutation over GET', () => trpcGet('documents.open', { host: 'figma', hostDocumentKey: 'k' }), 405, /Unsupported GET-request to mutation/],
  ['a tRPC body over 1 MiB', () => trpcPost('documents.open', { host: 'figma', hostDocumentKey: 'x'.repeat(2 * MIB) }), 413, /larger than 1 MiB.*PUT \/v1\/blobs/],
  ['DELETE on a procedure', () => request('DELETE', '/trpc/documents.open'), 405, /DELETE \/trpc\/documents\.open is not supported: queries are GET, mutations POST/],
  ['a multipart form as a mutation', () => request('POST', '/trpc/documents.open', { body: formData({ host: 'figma', hostDocumentKey: 'form' }) }), 415, /^tRPC calls take JSON: send the input with Content-Type: application\/json/],
  ['a mutation as application/octet-stream', () => request('POST', '/trpc/documents.open', { headers: { 'Content-Type': 'application/octet-stream' }, body: '{}' }), 415, /Content-Type: application\/json/],
  ['a batch of 1000 calls', () => openBatch(1000), 400, /a batch may hold at most 10 calls/],
  ['a batch of 11 calls', () => openBatch(11), 400, /a batch may hold at most 10 calls/],
  // ---- documents
  ['documents.open without input', () => trpcPost('documents.open', {}), 400, /host must be one of/],
  ['documents.open with an unknown host', () => trpcPost('documents.open', { host: 'gimp', hostDocumentKey: 'k' }), 400, /host must be one of figma, photoshop, web, cli, got "gimp"/],
  ['documents.open with an empty key', () => trpcPost('documents.open', { host: 'figma', hostDocumentKey: '' }), 400, /hostDocumentKey must not be empty/],
  ['documents.open with a huge key', () => trpcPost('documents.open', { host: 'figma', hostDocumentKey: 'k'.repeat(10_000) }), 400, /at most 200 characters/],
  ['documents.open with an extra key', () => trpcPost('documents.open', { host: 'figma', hostDocumentKey: 'k', admin: true }), 400, /admin/],
  ['documents.open with __proto__', () => request('POST', '/trpc/documents.open', { headers: { 'Content-Type': 'application/json' }, body: '{"host":"figma","hostDocumentKey":"p","__proto__":{"polluted":1}}' }), 400, /__proto__|Unrecognized/],
  ['documents.open with a list', () => trpcPost('documents.open', [1, 2, 3]), 400, /expected object, received array/],
  ['documents.open with a lone surrogate in the key', () => trpcPost('documents.open', { host: 'figma', hostDocumentKey: 'file-\ud800' }), 400, /hostDocumentKey holds an unpaired UTF-16 surrogate/],
  ['documents.history of a non-uuid', () => trpcGet('documents.history', { documentId: "1' OR '1'='1" }), 400, /documentId must be a UUID/],
  ['documents.history of an unknown document', () => trpcGet('documents.history', { documentId: ZERO_UUID }), 404, /no document/],
  // ---- edits.create: shape
  ['an edit for an unknown document', editWith((r) => ({ ...r, documentId: ZERO_UUID })), 404, /no document/],
  ['an edit with no regions', editWith((r) => ({ ...r, regions: [] })), 400, /at least one/],
  ['an edit with 5 regions', editWith((r) => ({ ...r, regions: Array(5).fill(r.regions[0]) })), 400, /at most 4 regions/],
  ['an instruction of 501 characters', editWith((r) => ({ ...r, regions: [{ instruction: 'x'.repeat(501), maskSha256: null }] })), 400, /at most 500 characters/],
  ['an instruction that is a number', editWith((r) => ({ ...r, regions: [{ instruction: 42, maskSha256: null }] })), 400, /instruction must be a string/],
  ['only empty instructions', editWith((r) => ({ ...r, regions: [{ instruction: '   ', maskSha256: null }] })), 400, /every instruction is empty/],
  ['an instruction of zero-width characters only', editWith((r) => ({ ...r, regions: [{ instruction: '\u200b\u200c\u200d\u2060\ufeff', maskSha256: null }] })), 400, /every instruction is empty/],
  ['an instruction with a lone surrogate', editWith((r) => ({ ...r, regions: [{ instruction: 'make it \ud83d blue', maskSha256: null }] })), 400, /regions\[0\]\.instruction holds an unpaired UTF-16 surrogate/],
  ['a misspelt option', withOptions({ stpes: 4 }), 400, /stpes/],
  ['steps 0', withOptions({ steps: 0 }), 400, /steps must be an integer between 1 and 100, got 0/],
  ['steps 1.5', withOptions({ steps: 1.5 }), 400, /steps must be an integer/],
  ['steps as a string', withOptions({ steps: '10' }), 400, /steps must be an integer .* got "10"/],
  ['a negative text scale', withOptions({ textScale: -1 }), 400, /textScale must be a number between 0 and 30/],
  ['strength 0', withOptions({ strength: 0 }), 400, /strength must be a number greater than 0/],
  ['a strength that runs zero steps', withOptions({ strength: 0.01, steps: 20 }), 400, /options\.strength 0\.01 runs no denoising step at 20 steps: use a strength of at least 0\.05/],
  ['a negative seed', withOptions({ seed: -1 }), 400, /seed must be an integer/],
  ['a seed over 2^31-1', withOptions({ seed: 2 ** 31 }), 400, /seed must be an integer/],
  ['9 variations', withOptions({ variations: 9 }), 400, /variations must be an integer between 1 and 8/],
  ['an unknown sampler', withOptions({ sampler: 'dpm++' }), 400, /sampler must be one of/],
  ['a parent of an unknown kind', editWith((r) => ({ ...r, parent: { kind: 'layer', id: 1 } })), 400, /kind must be 'edit'.*or 'source'/],
  ['an uppercase image sha', editWith((r) => ({ ...r, parent: { kind: 'source', imageSha256: fx.imageSha.toUpperCase() } })), 400, /SHA-256 digest/],
  // ---- edits.create: references
  ['a source image that was never uploaded', editWith((r) => ({ ...r, parent: { kind: 'source', imageSha256: 'b'.repeat(64) } })), 404, /upload the image with PUT \/v1\/blobs/],
  ['a mask that was never uploaded', editWith((r) => ({ ...r, regions: [{ instruction: 'x', maskSha256: 'c'.repeat(64) }] })), 404, /regions\[0\]\.maskSha256: no blob/],
  ['a mask of the wrong size', editWith((r) => ({ ...r, regions: [{ instruction: 'x', maskSha256: fx.bigSha }] })), 400, /the mask is 320x224 but the image is 128x128/],
  ['an all-black mask', editWith((r) => ({ ...r, regions: [{ instruction: 'x', maskSha256: fx.blackMaskSha }] })), 400, /the mask is empty/],
  ['a latent blob as the mask', editWith((r) => ({ ...r, regions: [{ instruction: 'x', maskSha256: fx.latentSha }] })), 400, /is not an image/],
  ['a latent blob as the source', editWith((r) => ({ ...r, parent: { kind: 'source', imageSha256: fx.latentSha } })), 400, /is not an image/],
  ['an edit of another document as the parent', editWith((r) => ({ ...r, parent: { kind: 'edit', editId: fx.otherEditId } })), 404, /is not an edit of document/],
  ['an unknown edit as the parent', editWith((r) => ({ ...r, parent: { kind: 'edit', editId: ZERO_UUID } })), 404, /is not an edit of document/],
  ['painted pixels that were never uploaded', editWith((r) => ({ ...r, documentId: fx.otherDocumentId, parent: { kind: 'edit', editId: fx.otherEditId, pixelsSha256: 'd'.repeat(64) } })), 404, /parent\.pixelsSha256: no blob/],
  // ---- jobs
  ['jobs.get of a non-uuid', () => trpcGet('jobs.get', { jobId: 'job-1' }), 400, /jobId must be a UUID/],
  ['jobs.get of an unknown job', () => trpcGet('jobs.get', { jobId: ZERO_UUID }), 404, /no job/],
  ['jobs.get with a negative previewAfterStep', () => trpcGet('jobs.get', { jobId: ZERO_UUID, previewAfterStep: -1 }), 400, /previewAfterStep must be an integer/],
  ['jobs.cancel of an unknown job', () => trpcPost('jobs.cancel', { jobId: ZERO_UUID }), 404, /no job/],
  ['jobs.watch with a malformed lastEventId (SSE error event)', () => sseError('jobs.watch', { jobId: ZERO_UUID, lastEventId: 'abc' }), 400, /lastEventId must be a decimal event seq/],
  ['jobs.watch of an unknown job (SSE error event)', () => sseError('jobs.watch', { jobId: ZERO_UUID }), 404, /no job/],
];

describe('bad input: every malformed or hostile request gets a 4xx with a message', () => {
  it(`the corpus has at least 40 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES)('%s', async (_name, send, status, message) => {
    const reply = await send();
    expect(reply.status).toBe(status);
    expect(reply.message.length).toBeGreaterThan(0);
    expect(reply.message).toMatch(message);
  });

  it('survives a client that hangs up mid-upload', async () => {
    await abortedUpload(fx.port);
    await abortedUpload(fx.port);
    expect((await request('GET', '/trpc/health')).status).toBe(200);
  });

  it('afterwards: healthy, no document changed, nothing was queued, and it still edits', async () => {
    const health = await trpcOk<{ status: string; queue: { queued: number; running: number } }>('health', undefined, 'GET');
    expect(health.status).toBe('ok');
    expect(health.queue).toMatchObject({ queued: 0, running: 0 });
    expect(await histories()).toBe(historyBefore);
    expect(stderr).not.toMatch(/uncaught exception|unhandled rejection/);
    expect(proc.exitCode).toBeNull();
    const { documentId } = await trpcOk<{ documentId: string }>('documents.open', { host: 'web', hostDocumentKey: 'after' });
    const { jobId } = await trpcOk<{ jobId: string }>('edits.create', { ...validEdit(), documentId });
    expect((await waitSucceeded(jobId)).editIds).toHaveLength(1);
  });
});
