/**
 * Fair admission against the real server (--max-queue 2, so one document may have 1 edit waiting): a request
 * that finds the queue full waits its turn instead of getting a 429, a client that just got its result does not
 * jump ahead of one already waiting, and one document cannot fill the queue.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EditRequestInput } from '../../shared/protocol';
import { FIXTURES, instruction, makeClient, runEdit, startServer, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

describe('fair admission at a full queue', () => {
  let server: ServerProcess;
  let client: Client;
  let sha: string;
  const docs: Record<string, string> = {};

  beforeAll(async () => {
    server = await startServer({ args: ['--max-queue', '2'] });
    client = makeClient(server.url);
    sha = (await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')))).sha256;
    for (const name of ['A', 'B', 'C', 'D', 'W']) docs[name] = (await client.documents.open.mutate({ host: 'web', hostDocumentKey: `admission-${name}` })).documentId;
    // a few short jobs, so the server knows how long a job takes (its wait estimates)
    for (let i = 0; i < 3; i++) await runEdit(client, edit('W', 2));
  });
  afterAll(async () => {
    expect((await server.stop()).code).toBe(0);
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  const edit = (doc: string, steps: number): EditRequestInput => ({ documentId: docs[doc], parent: { kind: 'source', imageSha256: sha }, regions: instruction(`edit ${doc}`), options: { steps, previewEvery: 0 } });

  async function create(doc: string, steps: number): Promise<{ status: number; jobId?: string; message?: string; at: number }> {
    const res = await fetch(`${server.url}/trpc/edits.create`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(edit(doc, steps)) });
    const body = (await res.json()) as { result?: { data: { jobId: string } }; error?: { message: string } };
    return { status: res.status, jobId: body.result?.data.jobId, message: body.error?.message, at: performance.now() };
  }

  it('waits instead of 429, and hands the next slot to the request that waited, not to the one that just re-entered', async () => {
    const running = await create('A', 30);
    await waitForJob(client, running.jobId!, (s) => s.state === 'running', 60_000, 5);
    expect((await create('B', 2)).status).toBe(200); // waiting 1
    expect((await create('C', 2)).status).toBe(200); // waiting 2: full
    const health = await client.health.query();
    expect(health.queue).toMatchObject({ queued: 2, running: 1, maxQueued: 2, maxQueuedPerDocument: 1 });

    const waited = create('D', 2); // finds the queue full: waits its turn
    await new Promise((r) => setTimeout(r, 50));
    // A's job ends; A comes back at once, as a client that just got its result does
    await waitForJob(client, running.jobId!, (s) => s.finishedAt !== null, 60_000, 2);
    const reentered = create('A', 2);
    const [d, a] = await Promise.all([waited, reentered]);
    expect(d.status).toBe(200);
    expect(a.status).toBe(200);
    expect(d.at).toBeLessThan(a.at); // D got in first
    for (const job of [d, a]) expect((await waitForJob(client, job.jobId!)).state).toBe('succeeded');
  });

  it('one document cannot fill the queue: its second waiting edit waits for room of its own, a third is refused', async () => {
    const running = await create('B', 30);
    await waitForJob(client, running.jobId!, (s) => s.state === 'running', 60_000, 5);
    const first = await create('C', 2); // C: 1 waiting, its cap
    expect(first.status).toBe(200);
    const second = create('C', 2); // waits in the room although the queue has a free slot
    await new Promise((r) => setTimeout(r, 50));
    const third = await create('C', 2);
    expect(third.status).toBe(429);
    expect(third.message).toMatch(/this document already has 1 edits waiting/);
    const other = await create('D', 2); // another document takes the free slot at once
    expect(other.status).toBe(200);
    expect((await second).status).toBe(200);
    for (const job of [running, first, other, await second]) expect((await waitForJob(client, job.jobId!)).state).toBe('succeeded');
  });
});
