/**
 * Crash safety of the server process: the real server is SIGKILLed at several points (mid-job with another job
 * waiting; right after a job succeeded; during an upload; while a job stores its results) and restarted on the
 * same data directory each time. After every restart: each completed edit is intact (history node, result and
 * latent blobs downloadable), interrupted jobs read as failed ("interrupted: ..."), the store's start-up
 * integrity check (health.store) found nothing, and the server goes on editing. At the end the store is opened
 * directly and checked with every blob rehashed.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import sharp from 'sharp';
import { openStore } from '../../server/store';
import { INTERRUPTED_QUEUED_ERROR, INTERRUPTED_RUNNING_ERROR } from '../../server/store/store';
import type { EditRequestInput } from '../../shared/protocol';
import { FIXTURES, instruction, makeClient, runEdit, startServer, tempDataDir, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

interface Completed {
  jobId: string;
  editId: string;
  resultSha256: string;
}

const dataDir = tempDataDir();
const completed: Completed[] = [];
let documentId: string;
let sourceSha: string;

afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function boot(): Promise<{ server: ServerProcess; client: Client }> {
  const server = await startServer({ dataDir });
  const client = makeClient(server.url);
  const health = await client.health.query();
  expect(health.store.integrityProblems).toBe(0);
  return { server, client };
}

async function kill(server: ServerProcess): Promise<void> {
  const { signal } = await server.stop('SIGKILL');
  expect(signal).toBe('SIGKILL');
}

async function download(url: string, sha256: string): Promise<Buffer> {
  const res = await fetch(`${url}/v1/blobs/${sha256}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Every edit that completed before a crash is still there: job, node, result image and latent. */
async function expectCompletedIntact(server: ServerProcess, client: Client): Promise<void> {
  const { nodes } = await client.documents.history.query({ documentId });
  for (const done of completed) {
    const job = await client.jobs.get.query({ jobId: done.jobId });
    expect(job.state).toBe('succeeded');
    expect(job.result?.editIds).toEqual([done.editId]);
    const node = nodes.find((n) => n.id === done.editId);
    expect(node).toMatchObject({ kind: 'edit', jobId: done.jobId, resultImageSha256: done.resultSha256 });
    expect(node!.parentId && nodes.some((n) => n.id === node!.parentId)).toBeTruthy();
    const meta = await sharp(await download(server.url, done.resultSha256)).metadata();
    expect([meta.width, meta.height]).toEqual([128, 128]);
    const latent = node!.latent!;
    expect(latent.dtype).toBe('float16');
    expect((await download(server.url, latent.sha256)).length).toBe(2 * latent.shape.reduce((a, b) => a * b, 1));
  }
}

const edit = (parent: EditRequestInput['parent'], text: string, steps: number, extra: Partial<EditRequestInput['options']> = {}): EditRequestInput => ({
  documentId,
  parent,
  regions: instruction(text),
  options: { steps, previewEvery: 0, ...extra },
});

async function record(client: Client, request: EditRequestInput): Promise<Completed> {
  const { jobId, snap } = await runEdit(client, request);
  const done = { jobId, editId: snap.result!.editIds[0], resultSha256: snap.result!.resultSha256s[0] };
  completed.push(done);
  return done;
}

describe('layerloop server killed with SIGKILL and restarted on the same data', () => {
  let runningJobId: string;
  let waitingJobId: string;
  let justSucceeded: Completed;
  let acknowledgedUpload: string;
  let storingJobId: string;

  it('1: mid-job, with another job waiting', async () => {
    const { server, client } = await boot();
    ({ documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'crash-test' }));
    sourceSha = (await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')))).sha256;
    await record(client, edit({ kind: 'source', imageSha256: sourceSha }, 'make the circle blue', 4));

    runningJobId = (await client.edits.create.mutate(edit({ kind: 'source', imageSha256: sourceSha }, 'make it stormy', 100, { variations: 4 }))).jobId;
    waitingJobId = (await client.edits.create.mutate(edit({ kind: 'source', imageSha256: sourceSha }, 'make it sunny', 4))).jobId;
    await waitForJob(client, runningJobId, (s) => s.state === 'running' && (s.progress?.step ?? 0) > 0);
    await kill(server);
  });

  it('2: right after a job succeeded', async () => {
    const { server, client } = await boot();
    await expectCompletedIntact(server, client);
    const running = await client.jobs.get.query({ jobId: runningJobId });
    expect(running).toMatchObject({ state: 'failed', error: INTERRUPTED_RUNNING_ERROR, result: null });
    const waiting = await client.jobs.get.query({ jobId: waitingJobId });
    expect(waiting).toMatchObject({ state: 'failed', error: INTERRUPTED_QUEUED_ERROR });

    const first = completed[0];
    const { jobId } = await client.edits.create.mutate(edit({ kind: 'edit', editId: first.editId }, 'make the square green', 4));
    const snap = await waitForJob(client, jobId, (s) => s.finishedAt !== null, 60_000, 5);
    await kill(server); // at once: the success was reported, so it must survive
    expect(snap.state).toBe('succeeded');
    justSucceeded = { jobId, editId: snap.result!.editIds[0], resultSha256: snap.result!.resultSha256s[0] };
    completed.push(justSucceeded);
  });

  it('3: during an upload (one acknowledged just before, one cut off mid-body)', async () => {
    const { server, client } = await boot();
    await expectCompletedIntact(server, client);
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.find((n) => n.id === justSucceeded.editId)).toMatchObject({ conditioning: 'latent', parentId: completed[0].editId });

    const mask = await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
    acknowledgedUpload = (await upload(server.url, mask)).sha256;

    // a 4 MiB raw upload: half the body is sent, then the server dies while reading it
    const total = 1024 * 1024 * 4;
    const req = http.request(`${server.url}/v1/blobs?width=1024&height=1024`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': total },
    });
    req.on('error', () => {}); // the connection dies with the server
    await new Promise<void>((resolve) => req.write(Buffer.alloc(total / 2, 0x7f), () => resolve()));
    await new Promise((r) => setTimeout(r, 50));
    await kill(server);
    req.destroy();
  });

  it('4: while a job stores its results', async () => {
    const { server, client } = await boot();
    await expectCompletedIntact(server, client);
    expect((await download(server.url, acknowledgedUpload)).length).toBeGreaterThan(0);

    storingJobId = (await client.edits.create.mutate(edit({ kind: 'edit', editId: justSucceeded.editId }, 'make the background red', 8))).jobId;
    // the last step is done: the engine decodes, then the runner writes blobs and commits the nodes
    await waitForJob(client, storingJobId, (s) => s.finishedAt !== null || (s.progress !== null && s.progress.step === s.progress.totalSteps), 60_000, 2);
    await kill(server);
  });

  it('5: after all that the store is consistent and the server edits on', async () => {
    const { server, client } = await boot();
    await expectCompletedIntact(server, client);

    // the job killed while storing either committed everything or nothing
    const storing = await client.jobs.get.query({ jobId: storingJobId });
    const { nodes } = await client.documents.history.query({ documentId });
    if (storing.state === 'succeeded') {
      completed.push({ jobId: storingJobId, editId: storing.result!.editIds[0], resultSha256: storing.result!.resultSha256s[0] });
      await expectCompletedIntact(server, client);
    } else {
      expect(storing).toMatchObject({ state: 'failed', error: INTERRUPTED_RUNNING_ERROR });
      expect(nodes.filter((n) => n.jobId === storingJobId)).toEqual([]);
    }

    // editing goes on: continuing from the edit that succeeded right before a kill reuses its latent
    const next = await record(client, edit({ kind: 'edit', editId: justSucceeded.editId }, 'make the circle yellow', 4));
    const node = (await client.documents.history.query({ documentId })).nodes.find((n) => n.id === next.editId);
    expect(node?.conditioning).toBe('latent');
    await expectCompletedIntact(server, client);

    expect((await server.stop()).code).toBe(0);
    const store = await openStore(dataDir);
    try {
      expect(await store.edits.integrityCheck({ verifyBlobHashes: true })).toEqual([]);
      const jobs = await store.edits.listJobs();
      expect(jobs.filter((j) => j.state === 'queued' || j.state === 'running')).toEqual([]);
      expect(jobs.filter((j) => j.state === 'succeeded').map((j) => j.id).sort()).toEqual(completed.map((c) => c.jobId).sort());
    } finally {
      await store.close();
    }
  });
});
