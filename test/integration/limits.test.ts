/**
 * Bounded resources of the real server: upload bytes in flight (503 + Retry-After beyond the budget), event
 * streams per job and per client (429 before the stream starts), the connection cap and the header timeout.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { MAX_STREAMS_PER_CLIENT, MAX_STREAMS_PER_JOB } from '../../server/api/stream-slots';
import { HEADERS_TIMEOUT_MS, MAX_CONNECTIONS } from '../../server/http/app';
import { UPLOAD_BUDGET_BYTES } from '../../server/http/upload-budget';
import { MAX_UPLOAD_BYTES } from '../../shared/protocol';
import { FIXTURES, instruction, makeClient, startServer, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

let server: ServerProcess;
let client: Client;
let port: number;

beforeAll(async () => {
  server = await startServer({ args: ['--max-queue', '16', '--max-queue-per-document', '16'] });
  client = makeClient(server.url);
  port = Number(new URL(server.url).port);
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});

/** An upload that declares `bytes` and sends them slowly (a little now, the rest never), holding its share of the budget. */
function slowUpload(bytes: number): { req: http.ClientRequest; answered: Promise<number> } {
  const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/v1/blobs?width=4096&height=4096', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes) } });
  const answered = new Promise<number>((resolve) => {
    req.on('response', (res) => resolve(res.statusCode ?? 0));
    req.on('error', () => resolve(-1));
  });
  req.write(Buffer.alloc(1024));
  return { req, answered };
}

/** A raw SSE subscription to jobs.watch; resolves with its first event or error (it stays open until `close`). */
function openStream(jobId: string): Promise<{ first: string; close: () => void }> {
  return new Promise((resolve, reject) => {
    const input = encodeURIComponent(JSON.stringify({ jobId }));
    const req = http.get({ host: '127.0.0.1', port, path: `/trpc/jobs.watch?input=${input}`, headers: { Accept: 'text/event-stream' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
        if (/^(id|event: serialized-error)/m.test(text) && text.endsWith('\n\n')) resolve({ first: text, close: () => req.destroy() });
      });
    });
    req.on('error', reject);
  });
}

const httpStatusOf = (frame: string) => Number(/"httpStatus":(\d+)/.exec(frame)?.[1] ?? 0);

describe('upload bytes in flight', () => {
  it(`a third 64 MiB upload while two are being read gets 503 with Retry-After, at once; it fits again afterwards`, async () => {
    expect(UPLOAD_BUDGET_BYTES).toBe(2 * MAX_UPLOAD_BYTES);
    const held = [slowUpload(MAX_UPLOAD_BYTES), slowUpload(MAX_UPLOAD_BYTES)];
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    const third = await fetch(`${server.url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')) });
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(((await third.json()) as { error: string }).error).toMatch(/the server is busy with other uploads \(at most 128 MiB of them are read and stored at once\): try again in a moment/);
    expect(performance.now() - t0).toBeLessThan(2000);
    for (const h of held) h.req.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect((await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')))).sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('event streams', () => {
  it(`at most ${MAX_STREAMS_PER_JOB} per job and ${MAX_STREAMS_PER_CLIENT} per client; a refused one gets 429 with a message`, async () => {
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'streams' });
    const { sha256 } = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    const long = { documentId, parent: { kind: 'source' as const, imageSha256: sha256 }, regions: instruction('make it stormy'), options: { steps: 100, variations: 8, previewEvery: 0 } };
    const jobs: string[] = [];
    for (let i = 0; i < 5; i++) jobs.push((await client.edits.create.mutate(long)).jobId);
    const open: { close: () => void }[] = [];
    try {
      for (let i = 0; i < MAX_STREAMS_PER_JOB; i++) open.push(await openStream(jobs[0]));
      const refused = await openStream(jobs[0]);
      expect(httpStatusOf(refused.first)).toBe(429);
      expect(refused.first).toMatch(/already has 16 open event streams: close one, or poll jobs\.get instead/);
      refused.close();
      for (const jobId of jobs.slice(1, 4)) for (let i = 0; i < MAX_STREAMS_PER_JOB; i++) open.push(await openStream(jobId));
      expect(open).toHaveLength(MAX_STREAMS_PER_CLIENT);
      const tooMany = await openStream(jobs[4]);
      expect(httpStatusOf(tooMany.first)).toBe(429);
      expect(tooMany.first).toMatch(/this client already has 64 open event streams/);
      tooMany.close();
      // closing one frees its slot
      open.pop()!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await openStream(jobs[4]);
      expect(again.first).not.toMatch(/serialized-error/);
      open.push(again);
    } finally {
      for (const s of open) s.close();
      for (const jobId of jobs) await client.jobs.cancel.mutate({ jobId });
      await waitForJob(client, jobs[0]);
    }
  });
});

describe('connections', () => {
  it(`at most ${MAX_CONNECTIONS} open at once: more are closed at once, and the server still answers once they go`, async () => {
    const sockets: net.Socket[] = [];
    let closedEarly = 0;
    try {
      for (let i = 0; i < MAX_CONNECTIONS + 8; i++) {
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => {});
        socket.on('close', () => closedEarly++);
        sockets.push(socket);
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(closedEarly).toBeGreaterThanOrEqual(8);
      expect(closedEarly).toBeLessThan(20);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${server.url}/trpc/health`)).status).toBe(200);
  });

  it(`a client that has not sent its headers after ${HEADERS_TIMEOUT_MS / 1000} s is answered 408 and disconnected`, async () => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.on('data', (d) => (reply += d.toString()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /trpc/health HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // ... and never the blank line
    const t0 = performance.now();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(reply).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(reply).toMatch(/the request took too long to arrive: send the headers within 15 s/);
    expect(performance.now() - t0).toBeGreaterThan(HEADERS_TIMEOUT_MS - 1000);
    expect(performance.now() - t0).toBeLessThan(HEADERS_TIMEOUT_MS + 35_000); // node checks timeouts every 30 s
  }, 90_000);
});
