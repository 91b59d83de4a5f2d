/**
 * The contract every JobQueue and every JobEvents implementation passes (server/jobs/port.ts): the in-process
 * ones here (queue-contract.test.ts), the Redis ones against a real redis-server (test/backends/redis-queue.test.ts).
 *
 * A queue under test records through a real store (its ledger), and its `run` is the test's: each call waits
 * until the test ends it, so the tests decide what runs when. Waiting is by polling the queue's own answers
 * (get, the event stream), never by timing assumptions about a backend.
 */
import { randomUUID } from 'node:crypto';
import { editRequestSchema, type JobEvent, type JobResult, type JobSnapshot, type JobState } from '../../../shared/protocol';
import { QueueFullError, UnknownJobError } from '../../../server/jobs/errors';
import type { EditPlan } from '../../../server/jobs/plan';
import type { JobEvents, JobInput, JobQueue, RunContext, RunJob } from '../../../server/jobs/port';
import { DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID, type EditNodeInput, type Store } from '../../../server/store';
import { bytesOf, putLatent } from '../store/contract';

export interface QueueUnderTest {
  queue: JobQueue;
  /** the store its ledger records to */
  store: Store;
  close(): Promise<void>;
}

/** Opens a fresh queue (one worker, if the backend has workers) whose jobs are run by `run`. */
export type QueueFactory = (options: { run: RunJob; maxLength: number; maxPerDocument: number }) => Promise<QueueUnderTest>;

/** One call of the test's `run`: the test ends it. */
export interface Call {
  job: JobInput;
  ctx: RunContext;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
  /** the job's signal aborted */
  aborted: Promise<void>;
}

/** Polls `check` until it returns something other than undefined (or fails after `ms`). */
export async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

export function planFor(documentId: string, instruction: string, imageSha256: string, owner = { userId: DEFAULT_USER_ID, workspaceId: DEFAULT_WORKSPACE_ID }): EditPlan {
  const request = editRequestSchema.parse({ documentId, parent: { kind: 'source', imageSha256 }, regions: [{ instruction, maskSha256: null }] });
  return { request: { ...request, regions: [{ instruction, maskSha256: null }], options: { ...request.options, seed: 7, sampler: 'euler' } }, owner, start: { kind: 'source', imageSha256 }, width: 8, height: 8 };
}

export function jobQueueContract(factory: QueueFactory): void {
  let h: QueueUnderTest;
  let calls: Call[];
  const started = () => calls.map((c) => c.job.request.regions[0].instruction);

  async function open(limits: { maxLength?: number; maxPerDocument?: number } = {}) {
    calls = [];
    const run: RunJob = (job, ctx) =>
      new Promise<JobResult>((resolve, reject) => {
        const aborted = new Promise<void>((done) => (ctx.signal.aborted ? done() : ctx.signal.addEventListener('abort', () => done(), { once: true })));
        calls.push({ job, ctx, resolve, reject, aborted });
      });
    h = await factory({ run, maxLength: limits.maxLength ?? 32, maxPerDocument: limits.maxPerDocument ?? 32 });
  }
  afterEach(async () => {
    await h?.close();
  });

  /** A document with an uploaded source image, as edits.create would find it. */
  async function document(key = randomUUID()) {
    const { documentId } = await h.store.edits.openDocument('figma', key);
    const image = (await h.store.blobs.put(bytesOf(10))).sha256;
    return { documentId, image };
  }

  /** What a runner stores for one variation of an edit of `image` under `parentId`. */
  async function nodeInput(parentId: string, image: string): Promise<EditNodeInput> {
    const result = (await h.store.blobs.put(bytesOf(100))).sha256;
    return {
      parentId,
      instruction: 'make it blue',
      regions: [{ instruction: 'make it blue', maskSha256: null }],
      options: { seed: 7 },
      seed: 7,
      variation: 0,
      sourceImageSha256: image,
      resultImageSha256: result,
      latent: await putLatent(h.store.blobs, 1),
      conditioning: 'pixels',
    };
  }

  /** Finishes a call as the runner does: the source node, then the commit. */
  async function commitCall(call: Call, image: string): Promise<JobResult> {
    const source = await h.store.edits.addSourceNode({ documentId: call.job.documentId, imageSha256: image });
    const result = await call.ctx.commit([await nodeInput(source.id, image)]);
    call.resolve(result);
    return result;
  }

  const callNumber = (n: number) => until(`run call ${n + 1}`, () => calls[n]);
  const stateOf = async (jobId: string, state: JobState): Promise<JobSnapshot> =>
    until(`job ${jobId} to be ${state}`, async () => {
      const s = await h.queue.get(jobId);
      return s?.state === state ? s : undefined;
    });
  const enqueue = async (documentId: string, instruction: string, image: string, owner?: EditPlan['owner']) => (await h.queue.enqueue(planFor(documentId, instruction, image, owner))).jobId;

  /** A user of its own workspace, as the admin CLI makes one. */
  async function user(name: string): Promise<EditPlan['owner']> {
    const workspace = await h.store.edits.accounts.createWorkspace(`studio-${name}`);
    const made = await h.store.edits.accounts.createUser({ name, workspaceId: workspace.id });
    return { userId: made.id, workspaceId: workspace.id };
  }

  test('a job runs with its plan, reports progress, commits, succeeds: snapshot, events 1..n in order, store record', async () => {
    await open();
    const { documentId, image } = await document();
    const plan = planFor(documentId, 'make it blue', image);
    const { jobId, position } = await h.queue.enqueue(plan);
    expect(position).toBe(0);
    expect(await h.store.edits.getJob(jobId)).toMatchObject({ state: expect.stringMatching(/^(queued|running)$/), documentId });
    const call = await callNumber(0);
    expect(call.job).toMatchObject({ jobId, documentId, plan });
    expect((await h.store.edits.getJob(jobId))?.state).toBe('running'); // recorded before run started
    call.ctx.emit({ type: 'progress', step: 1, totalSteps: 2, variation: 0 });
    await until('progress', async () => ((await h.queue.get(jobId))?.progress?.step === 1 ? true : undefined));
    const result = await commitCall(call, image);
    const done = await stateOf(jobId, 'succeeded');
    expect(done).toMatchObject({ jobId, documentId, result, error: null, position: null });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    const events = await collect(await h.queue.events(jobId));
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.type)).toEqual(['queued', 'started', 'progress', 'succeeded']);
    expect(events.every((e) => e.jobId === jobId)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'succeeded', ...result });
    expect(await h.store.edits.getJob(jobId)).toMatchObject({ state: 'succeeded', resultNodeIds: result.editIds });
  });

  test('a failing run fails its job with its message, in the store too, and the next job runs', async () => {
    await open();
    const { documentId, image } = await document();
    const first = await enqueue(documentId, 'a1', image);
    const second = await enqueue(documentId, 'a2', image);
    (await callNumber(0)).reject(new Error('the mask blob is missing: upload it again'));
    expect(await stateOf(first, 'failed')).toMatchObject({ error: 'the mask blob is missing: upload it again', result: null });
    expect(await h.store.edits.getJob(first)).toMatchObject({ state: 'failed', error: 'the mask blob is missing: upload it again' });
    const call = await callNumber(1);
    expect(call.job.jobId).toBe(second);
    await commitCall(call, image);
    await stateOf(second, 'succeeded');
  });

  test('cancel: a queued job never runs; a running one sees its signal abort and ends cancelled; the store agrees', async () => {
    await open();
    const { documentId, image } = await document();
    const running = await enqueue(documentId, 'a1', image);
    const waiting = await enqueue(documentId, 'a2', image);
    const call = await callNumber(0);
    expect(await h.queue.cancel(waiting)).toBe(true);
    await stateOf(waiting, 'cancelled');
    expect(await h.queue.cancel(running)).toBe(true);
    await call.aborted;
    call.reject(new Error('edit cancelled'));
    await stateOf(running, 'cancelled');
    expect(await h.queue.cancel(running)).toBe(false); // finished
    expect(await h.queue.cancel(randomUUID())).toBe(false); // unknown
    expect(started()).toEqual(['a1']);
    expect((await h.store.edits.getJob(waiting))?.state).toBe('cancelled');
    expect((await h.store.edits.getJob(running))?.state).toBe('cancelled');
    expect((await collect(await h.queue.events(waiting))).at(-1)?.type).toBe('cancelled');
  });

  test('round-robin over documents, FIFO within each: A A A B behind a running job starts A B A A', async () => {
    await open();
    const x = await document();
    const a = await document();
    const b = await document();
    await enqueue(x.documentId, 'x1', x.image);
    const blocker = await callNumber(0);
    for (const name of ['a1', 'a2', 'a3']) await enqueue(a.documentId, name, a.image);
    await enqueue(b.documentId, 'b1', b.image);
    blocker.reject(new Error('done'));
    for (let i = 1; i <= 4; i++) (await callNumber(i)).reject(new Error('done'));
    expect(started()).toEqual(['x1', 'a1', 'b1', 'a2', 'a3']);
  });

  test('users first at dispatch: A queues 6 jobs, then B 2; they start A B A B A A A A, whatever the documents', async () => {
    await open();
    const [alice, bob] = [await user('alice'), await user('bob')];
    const docs = await Promise.all([document(), document(), document()]);
    // A's six spread over two documents (a document of its own per job would not buy A more turns)
    for (let i = 1; i <= 6; i++) await enqueue(docs[i % 2].documentId, `a${i}`, docs[0].image, alice);
    await callNumber(0); // a1 started at once
    const bs: string[] = [];
    for (let i = 1; i <= 2; i++) bs.push(await enqueue(docs[2].documentId, `b${i}`, docs[0].image, bob));
    // the positions they are told are that order too: b1 next, b2 behind one of A's, not behind all five
    expect(await Promise.all(bs.map(async (id) => (await h.queue.get(id))?.position))).toEqual([0, 2]);
    for (let i = 0; i < 8; i++) (await callNumber(i)).reject(new Error('done'));
    expect(started()).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'a4', 'a5', 'a6']);
  });

  test('a user whose one edit just ended and who sends the next at once takes its turn, not the first place', async () => {
    await open();
    const [alice, bob, carol] = [await user('alice'), await user('bob'), await user('carol')];
    const [a, b, c] = [await document(), await document(), await document()];
    await enqueue(a.documentId, 'a1', a.image, alice);
    await callNumber(0);
    for (const name of ['b1', 'b2']) await enqueue(b.documentId, name, b.image, bob);
    for (const name of ['c1', 'c2']) await enqueue(c.documentId, name, c.image, carol);
    (await callNumber(0)).reject(new Error('done'));
    await callNumber(1); // b1 runs; nothing of alice's waits or runs
    await enqueue(a.documentId, 'a2', a.image, alice); // alice's client, the moment it got its result
    for (let i = 1; i <= 3; i++) (await callNumber(i)).reject(new Error('done'));
    await callNumber(4); // again: a2 ended, the next job runs, alice has nothing in the queue
    await enqueue(a.documentId, 'a3', a.image, alice);
    for (let i = 4; i <= 6; i++) (await callNumber(i)).reject(new Error('done'));
    // carol was served before alice's a2, so her c2 goes before a3 (a user idle for a moment is not a new user)
    expect(started()).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3']);
  });

  test('limits: a document over its share is refused with QueueFullError; others still get in', async () => {
    await open({ maxLength: 8, maxPerDocument: 2 });
    const a = await document();
    const b = await document();
    await enqueue(a.documentId, 'a1', a.image);
    await callNumber(0); // running: not counted as waiting
    await enqueue(a.documentId, 'a2', a.image);
    await enqueue(a.documentId, 'a3', a.image);
    const refused = await (async () => enqueue(a.documentId, 'a4', a.image))().then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(QueueFullError);
    expect(refused).toMatchObject({ scope: 'document', limit: 2 });
    expect((refused as QueueFullError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    await expect(enqueue(b.documentId, 'b1', b.image)).resolves.toEqual(expect.any(String));
    expect(await h.queue.stats()).toMatchObject({ queued: 3, running: 1 });
  });

  test('events resume after a seq (SSE lastEventId), stream live ones to several readers, and end at the terminal event', async () => {
    await open();
    const { documentId, image } = await document();
    const jobId = await enqueue(documentId, 'a1', image);
    const call = await callNumber(0);
    const first = collect(await h.queue.events(jobId));
    const resumed = collect(await h.queue.events(jobId, 1)); // saw 'queued' already
    call.ctx.emit({ type: 'progress', step: 1, totalSteps: 3, variation: 0 });
    call.ctx.emit({ type: 'preview', step: 1, totalSteps: 3, variation: 0, dataUrl: 'data:image/png;base64,iVBORw0KGgo=' });
    call.ctx.emit({ type: 'progress', step: 2, totalSteps: 3, variation: 0 });
    await commitCall(call, image);
    const all = await first;
    expect(all.map((e) => e.type)).toEqual(['queued', 'started', 'progress', 'preview', 'progress', 'succeeded']);
    expect(await resumed).toEqual(all.slice(1));
    expect(await collect(await h.queue.events(jobId, 4))).toEqual(all.slice(4));
    expect(await collect(await h.queue.events(jobId, all.length))).toEqual([]); // resumed after the end
    const snapshot = await h.queue.get(jobId);
    expect(snapshot).toMatchObject({ lastSeq: all.length, previewStep: 1, previewDataUrl: 'data:image/png;base64,iVBORw0KGgo=' });
    expect((await h.queue.get(jobId, { previewAfterStep: 1 }))?.previewDataUrl).toBeNull();
  });

  test('a reader that aborts stops; an unknown job is UnknownJobError and get() is null', async () => {
    await open();
    const { documentId, image } = await document();
    const jobId = await enqueue(documentId, 'a1', image);
    await callNumber(0);
    const controller = new AbortController();
    const reader = (await h.queue.events(jobId, 0, controller.signal))[Symbol.asyncIterator]();
    expect((await reader.next()).value).toMatchObject({ type: 'queued', seq: 1 });
    expect((await reader.next()).value).toMatchObject({ type: 'started', seq: 2 });
    const waiting = reader.next(); // nothing more comes while the run works
    controller.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    const unknown = randomUUID();
    await expect((async () => collect(await h.queue.events(unknown)))()).rejects.toBeInstanceOf(UnknownJobError);
    expect(await h.queue.get(unknown)).toBeNull();
    calls[0].reject(new Error('done'));
  });

  test('a job whose record cannot be written is not queued and never runs', async () => {
    await open();
    const plan = planFor(randomUUID(), 'a1', 'b'.repeat(64)); // a document the store does not know
    await expect((async () => h.queue.enqueue(plan))()).rejects.toThrow();
    expect(await h.queue.stats()).toMatchObject({ queued: 0, running: 0 });
    const { documentId, image } = await document();
    const jobId = await enqueue(documentId, 'a2', image);
    expect((await callNumber(0)).job.jobId).toBe(jobId);
    expect(calls).toHaveLength(1);
    calls[0].reject(new Error('done'));
  });
}

/** Opens a fresh event log; `close` lets go of it. */
export type EventsFactory = () => Promise<{ events: JobEvents; close(): Promise<void> }>;

export function jobEventsContract(factory: EventsFactory): void {
  let events: JobEvents;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ events, close } = await factory());
  });
  afterEach(async () => {
    await close();
  });

  test('append stamps seq 1, 2, 3 with the job id; lastSeq follows', async () => {
    const jobId = randomUUID();
    expect(await events.lastSeq(jobId)).toBe(0);
    expect(await events.append(jobId, { type: 'queued', position: 2 })).toEqual({ type: 'queued', position: 2, jobId, seq: 1 });
    expect(await events.append(jobId, { type: 'started' })).toEqual({ type: 'started', jobId, seq: 2 });
    expect(await events.lastSeq(jobId)).toBe(2);
    expect(await events.lastSeq(randomUUID())).toBe(0); // jobs are separate
  });

  test('read replays after a seq, then streams live events to every reader, in order, once, to the terminal one', async () => {
    const jobId = randomUUID();
    await events.append(jobId, { type: 'queued', position: 0 });
    await events.append(jobId, { type: 'started' });
    const all = collect(await events.read(jobId));
    const resumed = collect(await events.read(jobId, 2));
    for (let step = 1; step <= 5; step++) await events.append(jobId, { type: 'progress', step, totalSteps: 5, variation: 0 });
    await events.append(jobId, { type: 'succeeded', editIds: [randomUUID()], resultSha256s: ['c'.repeat(64)] });
    const got = await all;
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(got.at(-1)?.type).toBe('succeeded');
    expect(await resumed).toEqual(got.slice(2));
    expect(await collect(await events.read(jobId, 8))).toEqual([]);
  });

  test('nothing follows the terminal event', async () => {
    const jobId = randomUUID();
    await events.append(jobId, { type: 'cancelled' });
    await expect(events.append(jobId, { type: 'started' })).rejects.toThrow(/already ended/);
    expect(await events.lastSeq(jobId)).toBe(1);
  });

  test('a reader stops when its signal aborts; a job with no events is UnknownJobError', async () => {
    const jobId = randomUUID();
    await events.append(jobId, { type: 'queued', position: 0 });
    const controller = new AbortController();
    const reading = collect(await events.read(jobId, 0, controller.signal));
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect((await reading).map((e) => e.seq)).toEqual([1]);
    await expect(events.read(randomUUID())).rejects.toBeInstanceOf(UnknownJobError);
  });
}
