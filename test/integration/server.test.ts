/**
 * The real server process (dist/server/main.js, built by `npm run build`) over real HTTP on 127.0.0.1, driven
 * by the typed tRPC client the plugins will use (httpLink for queries and mutations, httpSubscriptionLink
 * over SSE for jobs.watch, with the `eventsource` ponyfill since Node 20 has no EventSource).
 *
 * The model may be retrained at any time: nothing here depends on specific pixels, only on behaviour, shapes,
 * states and ids. Edits are cheap (4-8 steps) except where a job must stay busy (queue-full, cancel).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createTRPCClient, httpSubscriptionLink, TRPCClientError } from '@trpc/client';
import { EventSource } from 'eventsource';
import sharp from 'sharp';
import type { AppRouter } from '../../server/api/router';
import { openStore } from '../../server/store';
import type { EditRequestInput, JobEvent, JobSnapshot } from '../../shared/protocol';
import { ROOT, MAIN, makeClient, startServer, type Client, type ServerProcess } from '../support/server';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const TOKEN = 'test-token-0123456789';

// ------------------------------------------------------------------------------------------ helpers


async function expectTRPCError(p: Promise<unknown>, code: string, message: RegExp): Promise<TRPCClientError<AppRouter>> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TRPCClientError);
    const e = err as TRPCClientError<AppRouter>;
    expect(e.data?.code).toBe(code);
    expect(e.message).toMatch(message);
    return e;
  }
  throw new Error(`expected a ${code} error`);
}

async function upload(url: string, body: Uint8Array, contentType: string, query = '', token?: string): Promise<{ sha256: string; width: number; height: number }> {
  const res = await fetch(`${url}/v1/blobs${query}`, {
    method: 'PUT',
    headers: { 'Content-Type': contentType, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body,
  });
  const json = (await res.json()) as { sha256: string; width: number; height: number; error?: string };
  if (!res.ok) throw new Error(`upload failed (${res.status}): ${json.error}`);
  return json;
}

async function rawRgba(file: string | Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function waitForJob(client: Client, jobId: string, until: (s: JobSnapshot) => boolean = (s) => s.finishedAt !== null, timeoutMs = 60_000): Promise<JobSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await client.jobs.get.query({ jobId });
    if (until(snap)) return snap;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${snap.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runEdit(client: Client, request: EditRequestInput): Promise<{ jobId: string; seed: number; snap: JobSnapshot }> {
  const { jobId, seed } = await client.edits.create.mutate(request);
  const snap = await waitForJob(client, jobId);
  if (snap.state !== 'succeeded') throw new Error(`job ${jobId} ended ${snap.state}: ${snap.error}`);
  return { jobId, seed, snap };
}

function watch(client: Client, input: { jobId: string; lastEventId?: string }): Promise<JobEvent[]> {
  return new Promise((resolve, reject) => {
    const events: JobEvent[] = [];
    const sub = client.jobs.watch.subscribe(input, {
      onData: (tracked) => {
        events.push(tracked.data);
        if (['succeeded', 'failed', 'cancelled'].includes(tracked.data.type)) {
          sub.unsubscribe();
          resolve(events);
        }
      },
      onError: (err) => {
        sub.unsubscribe();
        reject(err);
      },
    });
  });
}

const instruction = (text: string, maskSha256: string | null = null) => [{ instruction: text, maskSha256 }];

// ------------------------------------------------------------------------------------------ the open server

describe('layerloop server (no token)', () => {
  let server: ServerProcess;
  let client: Client;
  let documentId: string;
  let sourceSha: string;
  let maskSha: string;
  let cancelledJobId: string;
  const succeededJobIds: string[] = [];

  beforeAll(async () => {
    server = await startServer();
    client = makeClient(server.url);
  });

  afterAll(async () => {
    const { code } = await server.stop();
    expect(code).toBe(0);
    // the store recorded what the queue did, and is consistent
    const store = await openStore(server.dataDir);
    try {
      const jobs = await store.edits.listJobs();
      expect(jobs.filter((j) => j.state === 'queued' || j.state === 'running')).toEqual([]);
      for (const id of succeededJobIds) {
        const job = jobs.find((j) => j.id === id);
        expect(job?.state).toBe('succeeded');
        expect(job?.resultNodeIds.length).toBeGreaterThan(0);
      }
      if (cancelledJobId) expect(jobs.find((j) => j.id === cancelledJobId)?.state).toBe('cancelled');
      expect(await store.edits.integrityCheck()).toEqual([]);
    } finally {
      await store.close();
      fs.rmSync(server.dataDir, { recursive: true, force: true });
    }
  });

  it('reports health: version, model, provider, queue', async () => {
    const health = await client.health.query();
    expect(health.status).toBe('ok');
    expect(health.version).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    expect(health.model.name).toBe('tiny-pix2pix');
    expect(health.model.provider).toBe('cpu');
    expect(health.queue).toMatchObject({ queued: 0, running: 0 });
    expect(health.authRequired).toBe(false);
  });

  it('stores uploads canonically: the PNG and raw RGBA of the same pixels get the same sha256', async () => {
    const png = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
    const fromPng = await upload(server.url, png, 'image/png');
    const raw = await rawRgba(png);
    const fromRaw = await upload(server.url, raw.data, 'application/octet-stream', `?width=${raw.width}&height=${raw.height}`);
    expect(fromPng).toMatchObject({ width: 128, height: 128 });
    expect(fromRaw.sha256).toBe(fromPng.sha256);
    sourceSha = fromPng.sha256;
    maskSha = (await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128-circle-mask.png')), 'image/png')).sha256;
  });

  it('serves blobs as immutable PNGs with an ETag, 304 when unchanged, 404/400 for unknown or malformed ids', async () => {
    const res = await fetch(`${server.url}/v1/blobs/${sourceSha}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = res.headers.get('etag');
    expect(etag).toContain(sourceSha);
    expect((await rawRgba(Buffer.from(await res.arrayBuffer()))).width).toBe(128);
    const again = await fetch(`${server.url}/v1/blobs/${sourceSha}`, { headers: { 'If-None-Match': etag! } });
    expect(again.status).toBe(304);
    const missing = await fetch(`${server.url}/v1/blobs/${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/no blob/);
    const bad = await fetch(`${server.url}/v1/blobs/..%2F..%2Fetc%2Fpasswd`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/64 lowercase hex/);
  });

  it('answers CORS for the Figma iframe (null) and its own pages only; other web pages get 403', async () => {
    const res = await fetch(`${server.url}/trpc/edits.create`, {
      method: 'OPTIONS',
      headers: { Origin: 'null', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type', 'Access-Control-Request-Private-Network': 'true' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('null');
    expect(res.headers.get('access-control-allow-private-network')).toBe('true');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Content-Type/);
    const own = await fetch(`${server.url}/trpc/health`, { headers: { Origin: server.url } });
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-allow-origin')).toBe(server.url);
    // any other page the user visits: no CORS headers, and nothing runs
    for (const origin of ['https://www.figma.com', 'https://evil.example', 'http://127.0.0.1:1']) {
      const get = await fetch(`${server.url}/trpc/health`, { headers: { Origin: origin } });
      expect(get.status).toBe(403);
      expect(get.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${server.url}/v1/blobs`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Private-Network': 'true' } });
      expect(preflight.status).toBe(403);
      expect(preflight.headers.get('access-control-allow-private-network')).toBeNull();
    }
    const form = await fetch(`${server.url}/trpc/documents.open`, { method: 'POST', headers: { Origin: 'https://evil.example', 'Content-Type': 'text/plain' }, body: '{"host":"web","hostDocumentKey":"csrf"}' });
    expect(form.status).toBe(403);
    expect(((await form.json()) as { error: string }).error).toMatch(/--allow-origin https:\/\/evil\.example/);
  });

  it('opens documents: the same host key gives the same id', async () => {
    const first = await client.documents.open.mutate({ host: 'figma', hostDocumentKey: 'file-1:page-1' });
    const again = await client.documents.open.mutate({ host: 'figma', hostDocumentKey: 'file-1:page-1' });
    expect(first.created).toBe(true);
    expect(again).toEqual({ documentId: first.documentId, created: false });
    documentId = first.documentId;
    await expectTRPCError(client.documents.history.query({ documentId: '00000000-0000-4000-8000-000000000000' }), 'NOT_FOUND', /no document/);
    await expectTRPCError(client.documents.open.mutate({ host: 'gimp' as 'figma', hostDocumentKey: 'x' }), 'BAD_REQUEST', /host must be one of/);
  });

  it('edits from a source, continues three times from the results (latent), and branches', async () => {
    const first = await runEdit(client, {
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: instruction('make the circle blue', maskSha),
      options: { steps: 4 },
    });
    succeededJobIds.push(first.jobId);
    expect(first.snap.result?.editIds).toHaveLength(1);
    const chain = [first.snap.result!.editIds[0]];
    let resultSha = first.snap.result!.resultSha256s[0];
    for (let i = 0; i < 3; i++) {
      const next = await runEdit(client, {
        documentId,
        parent: { kind: 'edit', editId: chain[chain.length - 1], pixelsSha256: resultSha },
        regions: instruction(`step ${i}: make the circle green`, maskSha),
        options: { steps: 4, seed: 100 + i },
      });
      expect(next.seed).toBe(100 + i);
      succeededJobIds.push(next.jobId);
      chain.push(next.snap.result!.editIds[0]);
      resultSha = next.snap.result!.resultSha256s[0];
    }
    const branch = await runEdit(client, {
      documentId,
      parent: { kind: 'edit', editId: chain[0] },
      regions: instruction('make the square red'),
      options: { steps: 4 },
    });
    succeededJobIds.push(branch.jobId);

    const { nodes } = await client.documents.history.query({ documentId });
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const root = nodes.find((n) => n.kind === 'source' && n.parentId === null)!;
    expect(root.resultImageSha256).toBe(sourceSha);
    expect(byId.get(chain[0])).toMatchObject({ parentId: root.id, kind: 'edit', conditioning: 'pixels', instruction: 'make the circle blue' });
    for (let i = 1; i < chain.length; i++) {
      const node = byId.get(chain[i])!;
      expect(node.parentId).toBe(chain[i - 1]);
      expect(node.conditioning).toBe('latent');
      expect(node.seed).toBe(100 + i - 1);
      expect(node.sourceImageSha256).toBe(byId.get(chain[i - 1])!.resultImageSha256);
      expect(node.latent?.shape).toHaveLength(3);
      expect(node.regions).toEqual([{ instruction: `step ${i - 1}: make the circle green`, maskSha256: maskSha }]);
    }
    const branchNode = byId.get(branch.snap.result!.editIds[0])!;
    expect(branchNode.parentId).toBe(chain[0]);
    expect(nodes.filter((n) => n.parentId === chain[0]).map((n) => n.id).sort()).toEqual([chain[1], branchNode.id].sort());
    // a parent always comes before its children
    nodes.forEach((n, i) => n.parentId && expect(nodes.findIndex((p) => p.id === n.parentId)).toBeLessThan(i));
    // results are served
    const res = await fetch(`${server.url}/v1/blobs/${resultSha}`);
    expect(res.status).toBe(200);
    expect((await rawRgba(Buffer.from(await res.arrayBuffer()))).width).toBe(128);
  });

  it('re-encodes pixels when the layer was painted on (pixelsSha256 differs from the result)', async () => {
    const base = await runEdit(client, { documentId, parent: { kind: 'source', imageSha256: sourceSha }, regions: instruction('make it blue'), options: { steps: 4 } });
    succeededJobIds.push(base.jobId);
    const editId = base.snap.result!.editIds[0];
    const res = await fetch(`${server.url}/v1/blobs/${base.snap.result!.resultSha256s[0]}`);
    const img = await rawRgba(Buffer.from(await res.arrayBuffer()));
    for (let y = 10; y < 20; y++) for (let x = 10; x < 20; x++) img.data.set([255, 0, 255, 255], (y * img.width + x) * 4); // a brush stroke
    const painted = await upload(server.url, img.data, 'application/octet-stream', `?width=${img.width}&height=${img.height}`);
    expect(painted.sha256).not.toBe(base.snap.result!.resultSha256s[0]);
    const next = await runEdit(client, {
      documentId,
      parent: { kind: 'edit', editId, pixelsSha256: painted.sha256 },
      regions: instruction('make it red'),
      options: { steps: 4 },
    });
    succeededJobIds.push(next.jobId);
    const { nodes } = await client.documents.history.query({ documentId });
    const node = nodes.find((n) => n.id === next.snap.result!.editIds[0])!;
    expect(node.conditioning).toBe('pixels');
    expect(node.sourceImageSha256).toBe(painted.sha256);
    // the painted pixels are recorded as a re-synced source node under the edit they were painted on
    const resynced = nodes.find((n) => n.id === node.parentId)!;
    expect(resynced).toMatchObject({ kind: 'source', parentId: editId, resultImageSha256: painted.sha256 });
  });

  it('makes variations (3 results, seeds seed..seed+2) and two-region edits', async () => {
    const v = await runEdit(client, {
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: instruction('make the circle blue', maskSha),
      options: { steps: 4, variations: 3 },
    });
    succeededJobIds.push(v.jobId);
    expect(v.snap.result!.editIds).toHaveLength(3);
    expect(v.snap.result!.resultSha256s).toHaveLength(3);
    const { nodes } = await client.documents.history.query({ documentId });
    const made = v.snap.result!.editIds.map((id) => nodes.find((n) => n.id === id)!);
    expect(made.map((n) => n.variation)).toEqual([0, 1, 2]);
    expect(made.map((n) => n.seed)).toEqual([v.seed, v.seed + 1, v.seed + 2]);
    expect(new Set(made.map((n) => n.parentId)).size).toBe(1);

    const mask = await rawRgba(path.join(FIXTURES, 'shapes-128-circle-mask.png'));
    for (let i = 0; i < mask.data.length; i += 4) for (let c = 0; c < 3; c++) mask.data[i + c] = 255 - mask.data[i + c];
    const background = await upload(server.url, mask.data, 'application/octet-stream', `?width=${mask.width}&height=${mask.height}`);
    const r = await runEdit(client, {
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: [
        { instruction: 'make the circle blue', maskSha256: maskSha },
        { instruction: 'make the background dark', maskSha256: background.sha256 },
      ],
      options: { steps: 4 },
    });
    succeededJobIds.push(r.jobId);
    const node = (await client.documents.history.query({ documentId })).nodes.find((n) => n.id === r.snap.result!.editIds[0])!;
    expect(node.regions.map((x) => x.maskSha256)).toEqual([maskSha, background.sha256]);
    expect(node.instruction).toBe('make the circle blue | make the background dark');

    // an empty instruction keeps its region as it is
    const keep = await runEdit(client, {
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: [
        { instruction: 'make the circle blue', maskSha256: maskSha },
        { instruction: '', maskSha256: background.sha256 },
      ],
      options: { steps: 4 },
    });
    succeededJobIds.push(keep.jobId);
    const kept = (await client.documents.history.query({ documentId })).nodes.find((n) => n.id === keep.snap.result!.editIds[0])!;
    expect(kept.regions.map((x) => x.instruction)).toEqual(['make the circle blue', '']);
    expect(kept.instruction).toBe('make the circle blue');
  });

  it('refuses bad edits with 4xx messages that say what to fix', async () => {
    const big = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-320x224.png')), 'image/png');
    await expectTRPCError(
      client.edits.create.mutate({ documentId, parent: { kind: 'source', imageSha256: sourceSha }, regions: instruction('x', big.sha256) }),
      'BAD_REQUEST',
      /mask is 320x224 but the image is 128x128/,
    );
    await expectTRPCError(
      client.edits.create.mutate({ documentId, parent: { kind: 'source', imageSha256: 'f'.repeat(64) }, regions: instruction('x') }),
      'NOT_FOUND',
      /upload the image with PUT \/v1\/blobs/,
    );
    await expectTRPCError(
      client.edits.create.mutate({ documentId, parent: { kind: 'edit', editId: '00000000-0000-4000-8000-000000000000' }, regions: instruction('x') }),
      'NOT_FOUND',
      /is not an edit of document/,
    );
    await expectTRPCError(
      client.edits.create.mutate({ documentId, parent: { kind: 'source', imageSha256: sourceSha }, regions: instruction('x'), options: { steps: 1000 } }),
      'BAD_REQUEST',
      /options\.steps must be an integer between 1 and 100, got 1000/,
    );
    await expectTRPCError(client.jobs.get.query({ jobId: '00000000-0000-4000-8000-000000000000' }), 'NOT_FOUND', /no job/);
  });

  it('streams a job over SSE: queued, started, progress, preview, succeeded, seq increasing; resumes after lastEventId', async () => {
    const { jobId } = await client.edits.create.mutate({
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: instruction('make the circle blue'),
      options: { steps: 8, previewEvery: 2 },
    });
    succeededJobIds.push(jobId);
    const events = await watch(client, { jobId });
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('queued');
    expect(types[1]).toBe('started');
    expect(types[types.length - 1]).toBe('succeeded');
    expect(types).toContain('progress');
    expect(types).toContain('preview');
    expect(types.indexOf('progress')).toBeLessThan(types.indexOf('preview'));
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const preview = events.find((e) => e.type === 'preview');
    expect(preview?.type === 'preview' && preview.dataUrl.startsWith('data:image/png;base64,')).toBe(true);
    const last = events[events.length - 1];
    expect(last.type === 'succeeded' && last.editIds.length).toBe(1);

    const resumed = await watch(client, { jobId, lastEventId: String(seqs[3]) });
    expect(resumed.map((e) => e.seq)).toEqual(seqs.slice(4));
  });

  it('serves polling clients: jobs.get with previewAfterStep leaves out previews they already have', async () => {
    const { jobId } = await client.edits.create.mutate({
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: instruction('make the square blue'),
      options: { steps: 8, previewEvery: 2 },
    });
    succeededJobIds.push(jobId);
    const done = await waitForJob(client, jobId);
    expect(done.state).toBe('succeeded');
    expect(done.progress).toMatchObject({ step: 8, totalSteps: 8 });
    expect(done.previewStep).toBe(6);
    expect(done.previewDataUrl).toMatch(/^data:image\/png;base64,/);
    expect(done.lastSeq).toBeGreaterThan(8);
    const again = await client.jobs.get.query({ jobId, previewAfterStep: done.previewStep! });
    expect(again.previewDataUrl).toBeNull();
    expect(again.result).toEqual(done.result);
  });

  it('cancels a running job', async () => {
    const { jobId } = await client.edits.create.mutate({
      documentId,
      parent: { kind: 'source', imageSha256: sourceSha },
      regions: instruction('make everything purple'),
      options: { steps: 100, variations: 4, previewEvery: 0 },
    });
    cancelledJobId = jobId;
    await waitForJob(client, jobId, (s) => s.state === 'running' && (s.progress?.step ?? 0) > 0);
    const answer = await client.jobs.cancel.mutate({ jobId });
    expect(answer.cancelled).toBe(true);
    const done = await waitForJob(client, jobId);
    expect(done.state).toBe('cancelled');
    expect(done.result).toBeNull();
    expect((await client.jobs.cancel.mutate({ jobId })).cancelled).toBe(false);
    await expectTRPCError(client.jobs.cancel.mutate({ jobId: '00000000-0000-4000-8000-000000000000' }), 'NOT_FOUND', /no job/);
  });

  it('lists models: the loaded one and the other folders under models/', async () => {
    const { loaded, models } = await client.models.list.query();
    expect(loaded.name).toBe('tiny-pix2pix');
    expect(models.find((m) => m.loaded)?.name).toBe('tiny-pix2pix');
    expect(models.map((m) => m.name)).toEqual(expect.arrayContaining(['tiny-pix2pix']));
  });
});

// ------------------------------------------------------------------------------------------ token, queue limit

describe('layerloop server with --token, --max-queue 1 and --queue-wait 0', () => {
  let server: ServerProcess;
  let client: Client;

  beforeAll(async () => {
    // --queue-wait 0: a full queue answers 429 at once instead of letting the request wait its turn
    server = await startServer({ args: ['--token', TOKEN, '--max-queue', '1', '--queue-wait', '0'] });
    client = makeClient(server.url, TOKEN);
  });
  afterAll(async () => {
    expect((await server.stop()).code).toBe(0);
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('requires the Bearer token for everything but health (401 with a message)', async () => {
    const anonymous = makeClient(server.url);
    expect((await anonymous.health.query()).authRequired).toBe(true);
    await expectTRPCError(anonymous.documents.open.mutate({ host: 'web', hostDocumentKey: 'k' }), 'UNAUTHORIZED', /Authorization: Bearer/);
    await expectTRPCError(makeClient(server.url, 'wrong-token-000').models.list.query(), 'UNAUTHORIZED', /requires a token/);
    const png = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
    const put = await fetch(`${server.url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: png });
    expect(put.status).toBe(401);
    expect(((await put.json()) as { error: string }).error).toMatch(/Authorization: Bearer/);
    const uploaded = await upload(server.url, png, 'image/png', '', TOKEN);
    expect((await fetch(`${server.url}/v1/blobs/${uploaded.sha256}`)).status).toBe(401);
    expect((await fetch(`${server.url}/v1/blobs/${uploaded.sha256}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const preflight = await fetch(`${server.url}/v1/blobs`, { method: 'OPTIONS', headers: { Origin: 'null', 'Access-Control-Request-Method': 'PUT' } });
    expect(preflight.status).toBe(204);
  });

  it('answers 429 with Retry-After when the queue is full, and streams with the token', async () => {
    const { documentId } = await client.documents.open.mutate({ host: 'photoshop', hostDocumentKey: 'doc-q' });
    const png = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
    const { sha256 } = await upload(server.url, png, 'image/png', '', TOKEN);
    const long: EditRequestInput = {
      documentId,
      parent: { kind: 'source', imageSha256: sha256 },
      regions: instruction('make it stormy'),
      options: { steps: 100, variations: 4, previewEvery: 0 },
    };
    const running = await client.edits.create.mutate(long);
    await waitForJob(client, running.jobId, (s) => s.state === 'running');
    const waiting = await client.edits.create.mutate(long);
    expect(waiting.position).toBe(0);

    const refused = await fetch(`${server.url}/trpc/edits.create`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(long),
    });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await refused.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/queue is full/);
    await expectTRPCError(client.edits.create.mutate(long), 'TOO_MANY_REQUESTS', /try again in about \d+ s/);

    // the waiting job is cancelled at once; its stream (with the token) ends with 'cancelled'
    const stream = watch(client, { jobId: waiting.jobId });
    expect((await client.jobs.cancel.mutate({ jobId: waiting.jobId })).state).toBe('cancelled');
    const events = await stream;
    expect(events[0].type).toBe('queued');
    expect(events[events.length - 1].type).toBe('cancelled');
    await client.jobs.cancel.mutate({ jobId: running.jobId });
    expect((await waitForJob(client, running.jobId)).state).toBe('cancelled');
    // room again
    const after = await client.edits.create.mutate({ ...long, options: { steps: 4 } });
    expect((await waitForJob(client, after.jobId)).state).toBe('succeeded');

    // EventSource in a browser cannot send headers: the token may come as a connection param instead
    const viaParams = createTRPCClient<AppRouter>({
      links: [httpSubscriptionLink({ url: `${server.url}/trpc`, EventSource, connectionParams: { token: TOKEN } })],
    });
    const replay = await watch(viaParams as unknown as Client, { jobId: after.jobId });
    expect(replay[replay.length - 1].type).toBe('succeeded');
    const anonymous = createTRPCClient<AppRouter>({ links: [httpSubscriptionLink({ url: `${server.url}/trpc`, EventSource })] });
    await expectTRPCError(watch(anonymous as unknown as Client, { jobId: after.jobId }), 'UNAUTHORIZED', /Authorization: Bearer/);
    // ... for subscriptions only: a token in a URL leaks into proxy logs, so queries and mutations refuse it there
    const params = `connectionParams=${encodeURIComponent(JSON.stringify({ token: TOKEN }))}`;
    const query = await fetch(`${server.url}/trpc/jobs.get?input=${encodeURIComponent(JSON.stringify({ jobId: after.jobId }))}&${params}`);
    expect(query.status).toBe(401);
    const mutation = await fetch(`${server.url}/trpc/documents.open?${params}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"host":"web","hostDocumentKey":"url-token"}' });
    expect(mutation.status).toBe(401);
    expect(((await mutation.json()) as { error: { message: string } }).error.message).toMatch(/Authorization: Bearer/);
  });
});

// ------------------------------------------------------------------------------------------ refusing to start

describe('layerloop server configuration', () => {
  it('refuses to listen on a non-loopback address without a token', async () => {
    const proc = spawn(process.execPath, [MAIN, '--host', '0.0.0.0', '--port', '0'], { cwd: ROOT, env: { ...process.env, LAYERLOOP_TOKEN: '' } });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(err).toMatch(/--token/);
  });
});
