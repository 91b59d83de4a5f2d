/**
 * The team-server roles as an operator runs them (dist/server/main.js): `layerloop serve` nodes (API only) and a
 * `layerloop worker` (the model) sharing Redis (--queue) and PostgreSQL (--store); the blobs are files in one
 * shared directory, as on a shared disk. An edit queued on one API node runs on the worker and is followed,
 * continued and read on the other; a worker with --batch N runs N edits at once with their one-at-a-time results;
 * each role answers its own health; bad configuration fails at start.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { EditRequestInput } from '../../shared/protocol';
import { FIXTURES, instruction, logLines, makeClient, runEdit, startServer, tempDataDir, upload, waitForJob, type ServerProcess } from '../support/server';
import { describeWithServices } from '../support/services';

describeWithServices('team server roles: serve and worker on Redis and PostgreSQL', ['postgres', 'redis'], (services) => {
  let dataDir: string;
  let storeUrl: string;
  const running: ServerProcess[] = [];

  beforeAll(async () => {
    dataDir = tempDataDir();
    storeUrl = await services().postgres.createDatabase();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop('SIGTERM')));
  });
  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(role: 'serve' | 'worker', extra: string[] = []): Promise<ServerProcess> {
    const server = await startServer({ dataDir, args: [role, '--queue', services().redis.url, '--store', storeUrl, ...extra] });
    running.push(server);
    return server;
  }

  test('an edit queued on one API node runs on the worker and is followed, continued and read on the other', async () => {
    const [a, b] = [await start('serve'), await start('serve')];
    const clientA = makeClient(a.url);
    const clientB = makeClient(b.url);
    const { documentId } = await clientA.documents.open.mutate({ host: 'figma', hostDocumentKey: 'team-roles:page-1' });
    const source = await upload(a.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    const edit = (parent: EditRequestInput['parent'], text: string): EditRequestInput => ({ documentId, parent, regions: instruction(text), options: { steps: 4, previewEvery: 0 } });

    // no worker yet: the API says what to start
    await expect(clientA.edits.create.mutate(edit({ kind: 'source', imageSha256: source.sha256 }, 'make the circle blue'))).rejects.toThrow(/no worker has started on this queue yet: start one/);

    const worker = await start('worker');
    const health = (await (await fetch(`${worker.url}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ role: 'worker', status: 'ok', model: { name: expect.any(String) }, activeJobs: 0 });
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    expect(await (await fetch(`${worker.url}/metrics`)).text()).toMatch(/^# HELP layerloop_/m);
    expect((await fetch(`${worker.url}/trpc/health`)).status).toBe(404);

    const queued = await until(() => clientA.edits.create.mutate(edit({ kind: 'source', imageSha256: source.sha256 }, 'make the circle blue')));
    const done = await waitForJob(clientB, queued.jobId); // followed on the other node
    expect(done).toMatchObject({ state: 'succeeded', documentId });
    const [editId] = done.result!.editIds;
    const [resultSha] = done.result!.resultSha256s;
    expect((await fetch(`${b.url}/v1/blobs/${resultSha}`)).status).toBe(200);

    // latent iteration, queued on the other node
    const next = await until(() => runEdit(clientB, edit({ kind: 'edit', editId }, 'make the square green')));
    expect(next.snap.state).toBe('succeeded');
    const { nodes } = await clientA.documents.history.query({ documentId });
    expect(nodes.map((n) => [n.kind, n.conditioning])).toEqual([
      ['source', null],
      ['edit', 'pixels'],
      ['edit', 'latent'],
    ]);
    // the worker counts the jobs it ran (API nodes do not run any)
    expect(await (await fetch(`${worker.url}/metrics`)).text()).toMatch(/^layerloop_jobs_total\{state="succeeded"\} 2$/m);
    const apiHealth = await clientB.health.query();
    expect(apiHealth).toMatchObject({ status: 'ok', model: { name: health.model && (health.model as { name: string }).name } });
  }, 180_000);

  test('a worker with --batch 2 runs two edits at once, with the results they get one at a time', async () => {
    const api = await start('serve');
    await start('worker', ['--batch', '2']);
    const client = makeClient(api.url);
    const source = await upload(api.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    const requests: EditRequestInput[] = await Promise.all(
      (
        [
          ['make the circle blue', 1],
          ['make the square red', 2],
        ] as const
      ).map(async ([text, seed]) => ({
        documentId: (await client.documents.open.mutate({ host: 'figma', hostDocumentKey: `team-roles:batch-${seed}` })).documentId,
        parent: { kind: 'source' as const, imageSha256: source.sha256 },
        regions: instruction(text),
        options: { steps: 12, seed, previewEvery: 4 },
      })),
    );
    const created = await until(() => Promise.all(requests.map((r) => client.edits.create.mutate(r))));
    const together = await Promise.all(created.map((c) => waitForJob(client, c.jobId)));
    for (const snap of together) expect(snap).toMatchObject({ state: 'succeeded', progress: { step: 12, totalSteps: 12 }, previewStep: 8 });
    // they overlapped on the one worker: each started before the other finished
    expect(Math.max(...together.map((s) => s.startedAt!))).toBeLessThan(Math.min(...together.map((s) => s.finishedAt!)));
    const alone = [];
    for (const r of requests) alone.push((await runEdit(client, r)).snap);
    expect(together.map((s) => s.result!.resultSha256s)).toEqual(alone.map((s) => s.result!.resultSha256s));
    // the worker said what it was started with
    expect(logLines(running[1].stderr()).find((l) => l.msg === 'worker pulling edits')).toMatchObject({ batch: 2 });
  }, 180_000);

  test('both roles in one process on the Redis queue (npm start -- --queue …): an edit runs, its events stream over SSE', async () => {
    const server = await startServer({ dataDir, args: ['--queue', services().redis.url, '--store', storeUrl] });
    running.push(server);
    const client = makeClient(server.url);
    const { documentId } = await client.documents.open.mutate({ host: 'figma', hostDocumentKey: 'team-roles:one-process' });
    const source = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    const { jobId } = await client.edits.create.mutate({ documentId, parent: { kind: 'source', imageSha256: source.sha256 }, regions: instruction('make the circle blue'), options: { steps: 3, previewEvery: 0 } });
    const res = await fetch(`${server.url}/trpc/jobs.watch?input=${encodeURIComponent(JSON.stringify({ jobId }))}`, { headers: { Accept: 'text/event-stream' } });
    const text = await res.text(); // the stream ends after the terminal event
    const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    expect(text).toMatch(/"type":"succeeded"/);
    expect(ids.length).toBeGreaterThanOrEqual(5); // queued, started, 3 x progress, succeeded
    expect((await client.jobs.get.query({ jobId })).state).toBe('succeeded');
  }, 120_000);

  test('an unreachable Redis stops the start with what to fix', async () => {
    await expect(startServer({ dataDir, args: ['serve', '--queue', 'redis://127.0.0.1:1', '--store', storeUrl] })).rejects.toThrow(
      /layerloop: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\): start Redis there, or fix --queue \/ LAYERLOOP_QUEUE/,
    );
  });
});

/** Retries `fn` while it fails with 503 (the API node has not yet seen the worker's model: it refreshes every 2 s). */
async function until<T>(fn: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline || !/no worker has started/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
