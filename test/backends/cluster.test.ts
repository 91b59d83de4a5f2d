/**
 * A team server on loopback as an operator runs it: Redis + PostgreSQL + S3, two API nodes (`serve`) and two
 * workers (`worker`, --job-lease 2). Processes are SIGKILLed mid-work: a worker mid-job (the other worker runs the
 * job again and it is committed once) and an API node mid-stream (the client's SSE stream resumes on the other
 * node with lastEventId, without a gap or a repeat).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import type { EditRequestInput, JobEvent } from '../../shared/protocol';
import { FIXTURES, instruction, makeClient, startServer, tempDataDir, upload, waitForJob, type ServerProcess } from '../support/server';
import { describeWithServices } from '../support/services';

/** The events of a jobs.watch SSE response, read until `enough` says stop (or the stream ends). */
async function readEvents(url: string, jobId: string, lastEventId: string | null, enough: (events: JobEvent[]) => boolean = () => false): Promise<JobEvent[]> {
  const input = encodeURIComponent(JSON.stringify(lastEventId === null ? { jobId } : { jobId, lastEventId }));
  const res = await fetch(`${url}/trpc/jobs.watch?input=${input}`, { headers: { Accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw new Error(`jobs.watch answered ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events: JobEvent[] = [];
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return events;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(block);
        if (!/^id: /m.test(block) || !data) continue;
        events.push(JSON.parse(data[1]) as JobEvent);
        if (enough(events)) return events;
      }
    }
  } catch (err) {
    if (events.length > 0) return events; // the node went away mid-stream
    throw err;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

describeWithServices('a cluster on loopback: 2 API nodes, 2 workers, Redis, PostgreSQL, S3', ['postgres', 'redis', 's3'], (services) => {
  let dataDir: string;
  let storeUrl: string;
  let blobsUrl: string;
  const running: ServerProcess[] = [];

  beforeAll(async () => {
    dataDir = tempDataDir();
    storeUrl = await services().postgres.createDatabase();
    blobsUrl = services().s3.blobsUrl(await services().s3.createBucket());
  });
  afterAll(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop('SIGKILL')));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(role: 'serve' | 'worker'): Promise<ServerProcess> {
    const args = [role, '--queue', services().redis.url, '--store', storeUrl, '--blobs', blobsUrl, '--job-lease', '2'];
    const server = await startServer({ dataDir, args, env: services().s3.env() });
    running.push(server);
    return server;
  }

  async function rows(query: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    const client = new PgClient({ connectionString: storeUrl });
    await client.connect();
    try {
      return (await client.query(query, values)).rows;
    } finally {
      await client.end();
    }
  }

  let nodes: { a: ServerProcess; b: ServerProcess };
  let workers: ServerProcess[];
  let documentId: string;
  let source: string;
  const edit = (steps: number): EditRequestInput => ({
    documentId,
    parent: { kind: 'source', imageSha256: source },
    regions: instruction('make the circle blue'),
    options: { steps, previewEvery: 0, seed: 11 },
  });

  beforeAll(async () => {
    nodes = { a: await start('serve'), b: await start('serve') };
    workers = [await start('worker'), await start('worker')];
    const client = makeClient(nodes.a.url);
    ({ documentId } = await client.documents.open.mutate({ host: 'figma', hostDocumentKey: 'cluster:page-1' }));
    source = (await upload(nodes.a.url, fs.readFileSync(path.join(FIXTURES, 'shapes-320x224.png')))).sha256;
    // both API nodes know the workers' model (they read it every 2 s)
    for (const node of [nodes.a, nodes.b]) {
      const deadline = Date.now() + 10_000;
      while ((await fetch(`${node.url}/trpc/health`)).status !== 200) {
        if (Date.now() > deadline) throw new Error('the API node never saw a worker');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }, 120_000);

  test('SIGKILL the worker running a job: the other worker runs it again, it succeeds, committed once', async () => {
    const client = makeClient(nodes.a.url);
    const { jobId } = await client.edits.create.mutate(edit(100));
    await waitForJob(client, jobId, (s) => (s.progress?.step ?? 0) >= 2, 30_000);
    const busy = await Promise.all(workers.map(async (w) => ((await (await fetch(`${w.url}/health`)).json()) as { activeJobs: number }).activeJobs));
    const victim = workers[busy.indexOf(1)];
    expect(victim).toBeDefined(); // one of them runs it
    await victim.stop('SIGKILL');

    const done = await waitForJob(makeClient(nodes.b.url), jobId, (s) => s.finishedAt !== null, 60_000);
    expect(done.state).toBe('succeeded');
    const stored = await rows('SELECT id FROM nodes WHERE job_id = $1', [jobId]);
    expect(stored.map((r) => r.id)).toEqual(done.result!.editIds); // one commit
    const events = await readEvents(nodes.b.url, jobId, null);
    expect(events.filter((e) => e.type === 'started')).toHaveLength(2);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)?.type).toBe('succeeded');
  }, 120_000);

  test('SIGKILL the API node a client streams from: the stream resumes on the other node with lastEventId', async () => {
    const { jobId } = await makeClient(nodes.a.url).edits.create.mutate(edit(60));
    const before = await readEvents(nodes.a.url, jobId, null, (events) => events.some((e) => e.type === 'progress'));
    await nodes.a.stop('SIGKILL');
    const last = before.at(-1)!.seq;
    const after = await readEvents(nodes.b.url, jobId, String(last));
    const seqs = [...before, ...after].map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // no gap, no repeat
    expect(after.at(-1)?.type).toBe('succeeded');
  }, 120_000);
});
