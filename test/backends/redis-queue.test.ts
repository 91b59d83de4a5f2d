/**
 * The Redis queue (server/jobs/redis/) against a real redis-server (test/support/services.ts): the JobQueue and
 * JobEvents contracts every implementation passes, then what is Redis's own: several API nodes sharing jobs,
 * cancellation reaching the worker that runs the job, a worker running up to its concurrency (--batch) at once,
 * a worker that dies mid-job (its job runs again elsewhere and is committed once; after maxTries it fails as
 * interrupted), and start-up errors.
 *
 * The store the ledger records to is the embedded SQLite one: the queue is what is under test here
 * (test/backends/team-server.test.ts runs the server on PostgreSQL + S3).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { JobResult } from '../../shared/protocol';
import { JobLedger } from '../../server/jobs/ledger';
import type { JobInput, RunContext, RunJob } from '../../server/jobs/port';
import { RedisConfigError, connectRedis } from '../../server/jobs/redis/connect';
import { RedisJobEvents } from '../../server/jobs/redis/events';
import { RedisJobQueue } from '../../server/jobs/redis/queue';
import { JobRecords, recordOptions } from '../../server/jobs/redis/records';
import { RedisJobWorker, interruptedMessage } from '../../server/jobs/redis/worker';
import { openStore, type EditNodeInput, type EmbeddedStore } from '../../server/store';
import { describeWithServices } from '../support/services';
import { bytesOf, putLatent } from '../unit/store/contract';
import { collect, jobEventsContract, jobQueueContract, planFor, until } from '../unit/jobs/contract';

describeWithServices('Redis queue', ['redis'], (services) => {
  /** connections, stores and workers a test opened, closed after it whatever happened */
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });
  const connect = async (): Promise<Redis> => {
    const redis = await connectRedis(services().redis.url);
    cleanups.push(async () => redis.disconnect());
    return redis;
  };
  const tempStore = async (): Promise<EmbeddedStore> => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'layerloop-redis-queue-'));
    const store = await openStore(dir);
    cleanups.push(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    return store;
  };

  describe('JobEvents contract (Redis Streams)', () => {
    jobEventsContract(async () => {
      const redis = await connectRedis(services().redis.url);
      const events = new RedisJobEvents(new JobRecords(redis, recordOptions({ prefix: `test-${randomUUID()}` })));
      return { events, close: async () => redis.disconnect() };
    });
  });

  describe('JobQueue contract (BullMQ, one worker)', () => {
    jobQueueContract(async ({ run, maxLength, maxPerDocument }) => {
      const prefix = `test-${randomUUID()}`;
      const [api, work] = [await connectRedis(services().redis.url), await connectRedis(services().redis.url)];
      const dir = mkdtempSync(path.join(os.tmpdir(), 'layerloop-redis-contract-'));
      const store = await openStore(dir);
      const ledger = new JobLedger(store.edits);
      const queue = new RedisJobQueue({ redis: api, prefix, ledger, blobs: store.blobs, maxLength, maxPerDocument, log: () => {} });
      const worker = await RedisJobWorker.start({ redis: work, prefix, ledger, run, log: () => {} });
      return {
        queue,
        store,
        async close() {
          await worker.close({ timeoutMs: 0, graceMs: 200 });
          await queue.close();
          api.disconnect();
          work.disconnect();
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    });
  });

  // ------------------------------------------------------------------------------------------- Redis's own

  interface Call {
    job: JobInput;
    ctx: RunContext;
    resolve: (r: JobResult) => void;
    reject: (e: unknown) => void;
  }
  /** A run the test ends, and its calls. */
  function controlledRun(): { run: RunJob; calls: Call[] } {
    const calls: Call[] = [];
    const run: RunJob = (job, ctx) => new Promise<JobResult>((resolve, reject) => calls.push({ job, ctx, resolve, reject }));
    return { run, calls };
  }

  /** An API node and the shared store; workers are added by each test. */
  async function cluster() {
    const prefix = `test-${randomUUID()}`;
    const store = await tempStore();
    const ledger = new JobLedger(store.edits);
    const apiNode = async () => {
      const queue = new RedisJobQueue({ redis: await connect(), prefix, ledger, blobs: store.blobs, maxLength: 16, maxPerDocument: 16, log: () => {} });
      cleanups.push(() => queue.close());
      return queue;
    };
    const worker = async (run: RunJob, options: { lockMs?: number; maxTries?: number; ledger?: JobLedger; concurrency?: number } = {}) => {
      const w = await RedisJobWorker.start({ redis: await connect(), prefix, ledger: options.ledger ?? ledger, run, concurrency: options.concurrency, lockMs: options.lockMs ?? 1000, stalledCheckMs: 300, maxTries: options.maxTries, log: () => {} });
      cleanups.push(() => w.close({ timeoutMs: 0, graceMs: 100 }));
      return w;
    };
    const { documentId } = await store.edits.openDocument('figma', randomUUID());
    const image = (await store.blobs.put(bytesOf(10))).sha256;
    /** what a runner stores for this job (the same each time: the plan is seeded) */
    const nodes = async (job: JobInput): Promise<EditNodeInput[]> => {
      const source = await store.edits.addSourceNode({ documentId: job.documentId, imageSha256: image });
      return [
        {
          parentId: source.id,
          instruction: job.request.regions[0].instruction,
          regions: [{ instruction: job.request.regions[0].instruction, maskSha256: null }],
          options: { seed: job.request.options.seed },
          seed: job.request.options.seed,
          variation: 0,
          sourceImageSha256: image,
          resultImageSha256: (await store.blobs.put(bytesOf(job.request.options.seed))).sha256,
          latent: await putLatent(store.blobs, 1),
          conditioning: 'pixels',
        },
      ];
    };
    return { store, ledger, apiNode, worker, documentId, image, nodes };
  }

  test('another API node sees the job, streams its events from any seq, and its cancel reaches the worker running it', async () => {
    const c = await cluster();
    const [one, two] = [await c.apiNode(), await c.apiNode()];
    const { run, calls } = controlledRun();
    await c.worker(run);
    const { jobId } = await one.enqueue(planFor(c.documentId, 'make it blue', c.image));
    await until('the run', () => calls[0]);
    calls[0].ctx.emit({ type: 'progress', step: 1, totalSteps: 4, variation: 0 });
    await until('progress on the other node', async () => ((await two.get(jobId))?.progress?.step === 1 ? true : undefined));
    const watching = collect(await two.events(jobId, 1)); // resumes after 'queued', like an SSE lastEventId
    const aborted = new Promise<void>((resolve) => calls[0].ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    expect(await two.cancel(jobId)).toBe(true);
    await aborted; // the cancel crossed Redis to the worker
    calls[0].reject(new Error('edit cancelled'));
    const events = await watching;
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [2, 'started'],
      [3, 'progress'],
      [4, 'cancelled'],
    ]);
    expect(await one.get(jobId)).toMatchObject({ state: 'cancelled', cancelRequested: true });
    expect((await c.store.edits.getJob(jobId))?.state).toBe('cancelled');
  });

  test('two API nodes admitting for the same users: the worker starts users in turn; a cancelled waiting job leaves no work behind', async () => {
    const c = await cluster();
    const [one, two] = [await c.apiNode(), await c.apiNode()];
    const { run, calls } = controlledRun();
    await c.worker(run);
    const owner = async (name: string) => {
      const workspace = await c.store.edits.accounts.createWorkspace(`studio-${name}`);
      return { userId: (await c.store.edits.accounts.createUser({ name, workspaceId: workspace.id })).id, workspaceId: workspace.id };
    };
    const [alice, bob] = [await owner('alice'), await owner('bob')];
    const ids = new Map<string, string>();
    const enqueue = async (node: RedisJobQueue, name: string, who: typeof alice) => ids.set(name, (await node.enqueue(planFor(c.documentId, name, c.image, who))).jobId);
    await enqueue(one, 'a1', alice);
    await until('a1 to start', () => calls[0]);
    for (const name of ['a2', 'a3', 'a4']) await enqueue(one, name, alice);
    for (const name of ['b1', 'b2']) await enqueue(two, name, bob);
    const finish = async (i: number) => (await until(`run ${i + 1}`, () => calls[i])).resolve(await calls[i].ctx.commit(await c.nodes(calls[i].job)));
    await finish(0);
    await until('b1 to start', () => calls[1]);
    // a2 waits; BullMQ handed the worker a2's own job as the turn that started b1, so it cannot be removed
    // from BullMQ now: the left-over turn must start nothing
    expect(await two.cancel(ids.get('a2')!)).toBe(true);
    expect(await one.get(ids.get('a2')!)).toMatchObject({ state: 'cancelled' });
    for (let i = 1; i <= 4; i++) await finish(i);
    expect(calls.map((call) => call.job.request.regions[0].instruction)).toEqual(['a1', 'b1', 'a3', 'b2', 'a4']);
    await until('the queue to be idle', async () => ((await one.stats()).queued + (await one.stats()).running === 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // a left-over turn, if the worker took one, found nothing to start
    expect(calls).toHaveLength(5);
    expect((await c.store.edits.getJob(ids.get('a2')!))?.state).toBe('cancelled');
  });

  test('a worker with concurrency 2 (--batch 2) runs two jobs at once, never a third, and takes the next when one ends', async () => {
    const c = await cluster();
    const api = await c.apiNode();
    const { run, calls } = controlledRun();
    const worker = await c.worker(run, { concurrency: 2 });
    const ids: string[] = [];
    for (const text of ['make it blue', 'make it red', 'make it green']) ids.push((await api.enqueue(planFor(c.documentId, text, c.image))).jobId);
    await until('two runs at once', () => (calls.length === 2 ? true : undefined));
    expect(worker.active).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 300)); // room for a wrong third start
    expect(calls).toHaveLength(2);
    expect((await api.get(ids[2]))?.state).toBe('queued');

    const first = calls[0];
    first.resolve(await first.ctx.commit(await c.nodes(first.job)));
    await until('the third job to start', () => calls[2]);
    expect(calls.map((call) => call.job.jobId).sort()).toEqual([...ids].sort());
    for (const call of calls.slice(1)) call.resolve(await call.ctx.commit(await c.nodes(call.job)));
    for (const jobId of ids) await until(`${jobId} to succeed`, async () => ((await api.get(jobId))?.state === 'succeeded' ? true : undefined));
    const history = await c.store.edits.history(c.documentId);
    expect(history?.nodes.filter((n) => n.kind === 'edit')).toHaveLength(3);
  });

  test('a worker that dies mid-job: another runs it again from its plan and it is committed once, even when the dead one comes back', async () => {
    const c = await cluster();
    const api = await c.apiNode();
    const first = controlledRun();
    const doomed = await c.worker(first.run);
    const { jobId } = await api.enqueue(planFor(c.documentId, 'make it blue', c.image));
    const lost = await until('the first run', () => first.calls[0]);
    await doomed.crash(); // no more lock renewals: as if the process was killed

    const second = controlledRun();
    await c.worker(second.run);
    const retry = await until('the job to run again on the other worker', () => second.calls[0], 15_000);
    expect(retry.job).toMatchObject({ jobId, plan: lost.job.plan }); // the same seeded plan
    const result = await retry.ctx.commit(await c.nodes(retry.job));
    retry.resolve(result);
    await until('succeeded', async () => ((await api.get(jobId))?.state === 'succeeded' ? true : undefined));

    // the first worker was not dead after all: its commit returns the same edits, nothing is stored twice
    expect(await lost.ctx.commit(await c.nodes(lost.job))).toEqual(result);
    const history = await c.store.edits.history(c.documentId);
    expect(history?.nodes.filter((n) => n.kind === 'edit').map((n) => n.id)).toEqual(result.editIds);
    expect(await c.store.edits.getJob(jobId)).toMatchObject({ state: 'succeeded', resultNodeIds: result.editIds });
    const types = (await collect(await api.events(jobId))).map((e) => e.type);
    expect(types).toEqual(['queued', 'started', 'started', 'succeeded']);
  }, 30_000);

  test('a job whose workers keep dying fails as interrupted after maxTries, in the store and for every node', async () => {
    const c = await cluster();
    const api = await c.apiNode();
    const { jobId } = await api.enqueue(planFor(c.documentId, 'make it blue', c.image));
    for (let attempt = 0; attempt < 2; attempt++) {
      const { run, calls } = controlledRun();
      const w = await c.worker(run, { maxTries: 2 });
      await until(`run ${attempt + 1}`, () => calls[0], 15_000);
      await w.crash();
    }
    const { run, calls } = controlledRun();
    await c.worker(run, { maxTries: 2 });
    const failed = await until('the job to fail', async () => {
      const s = await api.get(jobId);
      return s?.state === 'failed' ? s : undefined;
    }, 15_000);
    expect(failed.error).toBe(interruptedMessage(2));
    expect(calls).toHaveLength(0); // not run a third time
    expect(await c.store.edits.getJob(jobId)).toMatchObject({ state: 'failed', error: interruptedMessage(2) });
  }, 30_000);

  test('a store failure around the run ends the job failed with a message, on every node and in the store, instead of leaving it running', async () => {
    const c = await cluster();
    const api = await c.apiNode();
    // the store refuses the 'running' write once (PostgreSQL went away for a moment)
    const flaky = Object.create(c.ledger) as JobLedger;
    flaky.start = () => Promise.reject(new Error('connection terminated unexpectedly'));
    const { run, calls } = controlledRun();
    await c.worker(run, { ledger: flaky });
    const { jobId } = await api.enqueue(planFor(c.documentId, 'make it blue', c.image));
    const failed = await until('the job to fail', async () => {
      const s = await api.get(jobId);
      return s?.state === 'failed' ? s : undefined;
    });
    expect(failed.error).toBe(`internal error while running this edit (job ${jobId}): the worker logged the details; submit it again`);
    expect(calls).toHaveLength(0);
    expect(await c.store.edits.getJob(jobId)).toMatchObject({ state: 'failed', error: failed.error });
  });

  test("enqueue hands a plan to the workers only once its uploads are durable (a worker elsewhere reads the disk or bucket)", async () => {
    const prefix = `test-${randomUUID()}`;
    const store = await tempStore();
    const { documentId } = await store.edits.openDocument('figma', randomUUID());
    const image = (await store.blobs.put(bytesOf(10))).sha256;
    let makeDurable!: () => void;
    const durable = new Promise<void>((resolve) => (makeDurable = resolve));
    const asked: string[] = [];
    const blobs = { whenDurable: (sha: string) => (asked.push(sha), durable) }; // an upload still being written
    const queue = new RedisJobQueue({ redis: await connect(), prefix, ledger: new JobLedger(store.edits), blobs, maxLength: 4, maxPerDocument: 4, log: () => {} });
    cleanups.push(() => queue.close());
    let queued = false;
    const enqueued = queue.enqueue(planFor(documentId, 'make it blue', image)).then((r) => ((queued = true), r));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(asked).toEqual([image]);
    expect(queued).toBe(false);
    expect(await queue.stats()).toMatchObject({ queued: 0 });
    makeDurable();
    const { jobId } = await enqueued;
    expect((await queue.get(jobId))?.state).toBe('queued');
  });

  test('an unreachable Redis fails at once with what to fix', async () => {
    const err = await connectRedis('redis://:secret@127.0.0.1:1/0', { timeoutMs: 1000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisConfigError);
    expect((err as Error).message).toMatch(/^cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0 \(.*ECONNREFUSED.*\): start Redis there, or fix --queue/);
    expect((err as Error).message).not.toContain('secret');
  });
});
