import { randomUUID } from 'node:crypto';
import { editRequestSchema, jobSnapshotSchema, type EditRequest, type JobEvent, type JobResult, type JobState } from '../../../shared';
import {
  JobQueue,
  QueueClosedError,
  QueueFullError,
  SHUTDOWN_QUEUED_MESSAGE,
  SHUTDOWN_RUNNING_MESSAGE,
  UnknownJobError,
  type JobInput,
  type JobQueueOptions,
  type RunContext,
} from '../../../server/jobs/queue';
import { JobEventLog } from '../../../server/jobs/events';
import type { EditPlan } from '../../../server/jobs/plan';
import { DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID } from '../../../server/store';

// ------------------------------------------------------------------------------------------- harness

/** One call of the fake `run`: the test decides when and how it ends. */
interface Call {
  job: JobInput;
  ctx: RunContext;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
}

/** A queue whose `run` records each call and waits for the test; a fake clock; captured logs and states. */
function harness(options: Partial<JobQueueOptions> = {}) {
  const calls: Call[] = [];
  const clock = { t: 1_000_000 };
  const logs: string[] = [];
  const states: [string, JobState][] = [];
  const queue = new JobQueue({
    maxLength: 64,
    run: (job, ctx) => new Promise<JobResult>((resolve, reject) => calls.push({ job, ctx, resolve, reject })),
    now: () => clock.t,
    log: (m) => logs.push(m),
    onStateChange: (jobId, state) => void states.push([jobId, state]),
    ...options,
  });
  /** the instruction of each job run so far, in order */
  const ran = () => calls.map((c) => c.job.request.regions[0].instruction);
  return { queue, calls, clock, logs, states, ran };
}

/** Let microtasks and promise chains settle (the queue starts jobs in a microtask). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

const DOC_A = randomUUID();
const DOC_B = randomUUID();
const DOC_C = randomUUID();

function request(documentId: string, instruction: string): EditRequest {
  return editRequestSchema.parse({
    documentId,
    parent: { kind: 'source', imageSha256: 'a'.repeat(64) },
    regions: [{ instruction, maskSha256: null }],
  });
}

/** A plan for an edit of an uploaded 8x8 image (the queue does not look inside it). */
function planOf(req: EditRequest): EditPlan {
  return { request: { ...req, regions: req.regions.map((r) => ({ instruction: r.instruction, maskSha256: r.maskSha256 ?? null })), options: { ...req.options, seed: 1, sampler: 'euler' } }, owner: { userId: DEFAULT_USER_ID, workspaceId: DEFAULT_WORKSPACE_ID }, start: { kind: 'source', imageSha256: 'a'.repeat(64) }, width: 8, height: 8 };
}

function result(n = 1): JobResult {
  return { editIds: Array.from({ length: n }, () => randomUUID()), resultSha256s: Array.from({ length: n }, (_, i) => String(i).repeat(64)) };
}

/** Enqueue and return the id at once (the place in line is taken synchronously; without a ledger it is recorded at once). */
function enqueue(queue: JobQueue, documentId: string, instruction: string): string {
  const jobId = randomUUID();
  void queue.enqueue(planOf(request(documentId, instruction)), { jobId });
  return jobId;
}

/** Finish the calls in order, one at a time, as they start. */
async function runAll(calls: Call[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await flush();
    calls[i].resolve(result());
  }
  await flush();
}

async function collect(iterable: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of iterable) out.push(e);
  return out;
}

function expectSeqsIncreasingWithoutDuplicates(events: JobEvent[]): void {
  for (let i = 1; i < events.length; i++) expect(events[i].seq).toBeGreaterThan(events[i - 1].seq);
}

// ---------------------------------------------------------------------------------------- scheduling

describe('JobQueue scheduling', () => {
  test('runs one job at a time', async () => {
    const { queue, calls } = harness();
    for (let i = 0; i < 3; i++) enqueue(queue, DOC_A, `a${i}`);
    await flush();
    expect(calls).toHaveLength(1);
    expect(queue.stats()).toMatchObject({ queued: 2, running: 1 });
    calls[0].resolve(result());
    await flush();
    expect(calls).toHaveLength(2);
    expect(queue.stats()).toMatchObject({ queued: 1, running: 1 });
  });

  test('concurrency N (an engine that batches edits): up to N jobs run at once, fairly, the next starting as one ends', async () => {
    const { queue, calls, ran } = harness({ concurrency: 3 });
    for (let i = 1; i <= 4; i++) enqueue(queue, DOC_A, `a${i}`);
    enqueue(queue, DOC_B, 'b1');
    await flush();
    expect(ran()).toEqual(['a1', 'b1', 'a2']);
    expect(await queue.stats()).toMatchObject({ queued: 2, running: 3, perDocument: { [DOC_A]: { queued: 2, running: 2 }, [DOC_B]: { queued: 0, running: 1 } } });
    calls[1].resolve(result());
    await flush();
    expect(ran()).toEqual(['a1', 'b1', 'a2', 'a3']);
    expect(await queue.stats()).toMatchObject({ queued: 1, running: 3 });
    // cancelling one running job frees its slot for the next; the others run on
    await queue.cancel(calls[0].job.jobId);
    calls[0].reject(new Error('edit cancelled'));
    await flush();
    expect(ran()).toEqual(['a1', 'b1', 'a2', 'a3', 'a4']);
    expect(calls[2].ctx.signal.aborted).toBe(false);
    for (const k of [2, 3, 4]) calls[k].resolve(result());
    await queue.drain();
    expect(await queue.stats()).toMatchObject({ queued: 0, running: 0 });
    expect(() => harness({ concurrency: 0 })).toThrow('concurrency must be a positive integer, got 0');
  });

  test('concurrency N: close gives every running job its timeout, then aborts the ones still running', async () => {
    const { queue, calls } = harness({ concurrency: 2 });
    const a1 = enqueue(queue, DOC_A, 'a1');
    const b1 = enqueue(queue, DOC_B, 'b1');
    await flush();
    calls[1].ctx.signal.addEventListener('abort', () => calls[1].reject(new Error('edit cancelled')));
    setTimeout(() => calls[0].resolve(result()), 1);
    await queue.close({ timeoutMs: 30, graceMs: 1_000 });
    expect((await queue.get(a1))!.state).toBe('succeeded');
    expect(await queue.get(b1)).toMatchObject({ state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
  });

  test('fairness: doc A enqueues 5, doc B 1 -> B runs second', async () => {
    const { queue, calls, ran } = harness();
    for (let i = 1; i <= 5; i++) enqueue(queue, DOC_A, `a${i}`);
    enqueue(queue, DOC_B, 'b1');
    await runAll(calls, 6);
    expect(ran()).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  test('fairness: a document arriving while another is busy goes next', async () => {
    const { queue, calls, ran } = harness();
    for (let i = 1; i <= 5; i++) enqueue(queue, DOC_A, `a${i}`);
    await flush(); // a1 is running
    const b = await queue.enqueue(planOf(request(DOC_B, 'b1')));
    expect(b.position).toBe(0);
    await runAll(calls, 6);
    expect(ran()).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  test('round-robin over three documents, FIFO within each', async () => {
    const { queue, calls, ran } = harness();
    for (const name of ['a1', 'a2', 'a3']) enqueue(queue, DOC_A, name);
    for (const name of ['b1', 'b2']) enqueue(queue, DOC_B, name);
    enqueue(queue, DOC_C, 'c1');
    await runAll(calls, 6);
    expect(ran()).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  test('positions: jobs ahead, updated with a queued event when they change', async () => {
    const { queue } = harness();
    const a = [1, 2, 3].map((i) => enqueue(queue, DOC_A, `a${i}`));
    expect(queue.get(a[2])!.position).toBe(2);
    const b1 = queue.enqueue(planOf(request(DOC_B, 'b1'))); // its place is taken synchronously
    expect(queue.get(a[1])!.position).toBe(2);
    const { position, jobId } = await b1;
    expect(position).toBe(1); // after a1, before a2
    await flush(); // a1 starts
    expect(queue.get(a[0])!.position).toBeNull();
    expect(queue.get(jobId)!.position).toBe(0);
    expect(queue.get(a[2])!.position).toBe(2);
    const positions = (await firstEvents(queue, a[1], 3)).filter((e) => e.type === 'queued').map((e) => (e.type === 'queued' ? e.position : -1));
    expect(positions).toEqual([1, 2, 1]);
  });

  test('a failing run fails its job with the message and the queue goes on', async () => {
    const { queue, calls } = harness();
    const j1 = enqueue(queue, DOC_A, 'a1');
    const j2 = enqueue(queue, DOC_A, 'a2');
    await flush();
    calls[0].reject(new Error('the mask blob is missing: upload it again'));
    await flush();
    expect(queue.get(j1)).toMatchObject({ state: 'failed', error: 'the mask blob is missing: upload it again', result: null });
    expect(queue.get(j2)!.state).toBe('running');
  });

  test('a run that returns a malformed result fails the job instead of breaking the queue', async () => {
    const { queue, calls, logs } = harness();
    const j1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    calls[0].resolve({ editIds: [randomUUID()], resultSha256s: [] });
    await flush();
    expect(queue.get(j1)).toMatchObject({ state: 'failed', error: 'internal error: 1 edit ids but 0 result images' });
    expect(logs).toHaveLength(1);
  });

  test('run gets a private copy of the request', async () => {
    const { queue, calls } = harness();
    const plan = planOf(request(DOC_A, 'a1'));
    void queue.enqueue(plan);
    plan.request.regions[0].instruction = 'changed';
    await flush();
    expect(calls[0].job.request.regions[0].instruction).toBe('a1');
    expect(calls[0].job.documentId).toBe(DOC_A);
  });
});

/** The first `n` events of a job (stops early; does not wait for the end). */
async function firstEvents(queue: JobQueue, jobId: string, n: number): Promise<JobEvent[]> {
  const controller = new AbortController();
  const out: JobEvent[] = [];
  for await (const e of queue.events(jobId, 0, controller.signal)) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- limits

describe('JobQueue limits', () => {
  test('a full queue throws QueueFullError with retryAfterSeconds >= 1', async () => {
    const { queue } = harness({ maxLength: 2 });
    enqueue(queue, DOC_A, 'a1');
    await flush(); // a1 runs: it does not count
    enqueue(queue, DOC_A, 'a2');
    enqueue(queue, DOC_B, 'b1');
    let error: unknown;
    try {
      enqueue(queue, DOC_C, 'c1');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QueueFullError);
    const full = error as QueueFullError;
    expect(full.scope).toBe('queue');
    expect(full.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(full.retryAfterSeconds)).toBe(true);
    expect(full.message).toMatch(/queue is full \(2 jobs waiting\)/);
  });

  test('retryAfterSeconds comes from recent job durations', async () => {
    const { queue, calls, clock } = harness({ maxLength: 1 });
    enqueue(queue, DOC_A, 'a1');
    await flush();
    clock.t += 10_000; // a1 takes 10 s
    calls[0].resolve(result());
    enqueue(queue, DOC_A, 'a2');
    await flush();
    enqueue(queue, DOC_A, 'a3'); // fills the queue
    clock.t += 2_000; // a2 is 2 s in: about 8 s left
    expect(queue.stats().recentDurationsMs).toEqual([10_000]);
    expect(() => enqueue(queue, DOC_B, 'b1')).toThrow(expect.objectContaining({ retryAfterSeconds: 8 }));
    clock.t += 60_000; // overdue: still a positive estimate
    expect(() => enqueue(queue, DOC_B, 'b1')).toThrow(expect.objectContaining({ retryAfterSeconds: 3 }));
  });

  test('maxPerDocument limits one document without blocking others', async () => {
    const { queue } = harness({ maxLength: 10, maxPerDocument: 2 });
    enqueue(queue, DOC_A, 'a1');
    await flush();
    enqueue(queue, DOC_A, 'a2');
    enqueue(queue, DOC_A, 'a3');
    expect(() => enqueue(queue, DOC_A, 'a4')).toThrow(expect.objectContaining({ name: 'QueueFullError', scope: 'document' }));
    expect(() => enqueue(queue, DOC_B, 'b1')).not.toThrow();
  });

  test('rejects nonsensical options', () => {
    const run = async () => result();
    expect(() => new JobQueue({ maxLength: 0, run })).toThrow('maxLength must be a positive integer, got 0');
    expect(() => new JobQueue({ maxLength: 2, maxPerDocument: 1.5, run })).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------------------------------ cancellation

describe('JobQueue cancel', () => {
  test('a queued job is removed and cancelled at once, and never runs', async () => {
    const { queue, calls, ran } = harness();
    enqueue(queue, DOC_A, 'a1');
    const a2 = enqueue(queue, DOC_A, 'a2');
    const a3 = enqueue(queue, DOC_A, 'a3');
    await flush();
    expect(queue.get(a3)!.position).toBe(1);
    expect(await queue.cancel(a2)).toBe(true);
    expect(queue.get(a2)).toMatchObject({ state: 'cancelled', position: null });
    expect(queue.get(a3)!.position).toBe(0);
    const events = await collect(queue.events(a2));
    expect(events.map((e) => (e.type === 'queued' ? `queued@${e.position}` : e.type))).toEqual(['queued@1', 'queued@0', 'cancelled']);
    await runAll(calls, 2);
    expect(ran()).toEqual(['a1', 'a3']);
    expect(await queue.cancel(a2)).toBe(false); // already over
  });

  test('a running job sees its signal abort, and ends cancelled when run stops', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    enqueue(queue, DOC_A, 'a2');
    await flush();
    const { signal } = calls[0].ctx;
    const onAbort = jest.fn();
    signal.addEventListener('abort', onAbort);
    expect(await queue.cancel(a1)).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(onAbort).toHaveBeenCalledTimes(1);
    expect(queue.get(a1)).toMatchObject({ state: 'running', cancelRequested: true });
    expect(await queue.cancel(a1)).toBe(true); // idempotent while stopping
    await flush();
    expect(calls).toHaveLength(1); // the device is still busy until run stops
    calls[0].reject(new Error('edit cancelled'));
    await flush();
    expect(queue.get(a1)).toMatchObject({ state: 'cancelled', error: null });
    expect(calls).toHaveLength(2);
  });

  test('a run that resolves after the abort still ends cancelled; late progress is ignored', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    void queue.cancel(a1);
    calls[0].ctx.emit({ type: 'progress', step: 1, totalSteps: 2, variation: 0 });
    calls[0].resolve(result());
    await flush();
    expect(queue.get(a1)).toMatchObject({ state: 'cancelled', result: null, progress: null });
    expect((await collect(queue.events(a1))).map((e) => e.type)).toEqual(['queued', 'started', 'cancelled']);
  });

  test('unknown ids: cancel is false, get is null, events throws', async () => {
    const { queue } = harness();
    const id = randomUUID();
    expect(await queue.cancel(id)).toBe(false);
    expect(queue.get(id)).toBeNull();
    expect(() => queue.events(id)).toThrow(UnknownJobError);
  });
});

// ------------------------------------------------------------------------------------ progress, snapshots

describe('JobQueue progress and snapshots', () => {
  const PNG = 'data:image/png;base64,iVBORw0KGgo=';

  test('snapshots follow the job and match the wire schema', async () => {
    const { queue, calls, clock } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    const queued = queue.get(a1)!;
    expect(jobSnapshotSchema.parse(queued)).toEqual(queued);
    expect(queued).toMatchObject({ state: 'queued', position: 0, progress: null, previewDataUrl: null, startedAt: null, lastSeq: 1 });
    await flush();
    clock.t += 5;
    const { emit } = calls[0].ctx;
    emit({ type: 'progress', step: 1, totalSteps: 4, variation: 0 });
    emit({ type: 'progress', step: 2, totalSteps: 4, variation: 0 });
    emit({ type: 'preview', step: 2, totalSteps: 4, variation: 0, dataUrl: PNG });
    const running = queue.get(a1)!;
    expect(jobSnapshotSchema.parse(running)).toEqual(running);
    expect(running).toMatchObject({ state: 'running', position: null, progress: { step: 2, totalSteps: 4 }, previewStep: 2, previewDataUrl: PNG });
    expect(queue.get(a1, { previewAfterStep: 2 })).toMatchObject({ previewStep: 2, previewDataUrl: null });
    expect(queue.get(a1, { previewAfterStep: 1 })!.previewDataUrl).toBe(PNG);
    const r = result(2);
    calls[0].resolve(r);
    await flush();
    const done = queue.get(a1)!;
    expect(jobSnapshotSchema.parse(done)).toEqual(done);
    expect(done).toMatchObject({ state: 'succeeded', result: r, error: null, finishedAt: clock.t });
  });

  test('a preview that is not a small PNG data URL is dropped and logged', async () => {
    const { queue, calls, logs } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    calls[0].ctx.emit({ type: 'preview', step: 1, totalSteps: 2, variation: 0, dataUrl: 'https://example.com/x.png' });
    expect(queue.get(a1)!.previewDataUrl).toBeNull();
    expect(logs[0]).toMatch(/dropped a preview/);
  });

  test('onStateChange sees every state; a throwing hook is logged and changes nothing', async () => {
    const seen: [JobState, string | undefined, number | undefined][] = [];
    const { queue, calls, logs } = harness({
      onStateChange: (_id, state, info) => {
        seen.push([state, info.error, info.result?.editIds.length]);
        if (state === 'running') throw new Error('db is down');
      },
    });
    const a1 = enqueue(queue, DOC_A, 'a1');
    const a2 = enqueue(queue, DOC_A, 'a2');
    await flush();
    calls[0].resolve(result(3));
    await flush();
    calls[1].reject(new Error('boom'));
    await flush();
    expect(seen).toEqual([
      ['queued', undefined, undefined],
      ['queued', undefined, undefined],
      ['running', undefined, undefined],
      ['succeeded', undefined, 3],
      ['running', undefined, undefined],
      ['failed', 'boom', undefined],
    ]);
    expect(logs.filter((l) => l.includes('db is down'))).toHaveLength(2);
    expect(queue.get(a1)!.state).toBe('succeeded');
    expect(queue.get(a2)!.state).toBe('failed');
  });

  test('a rejected promise from onStateChange is logged, not unhandled', async () => {
    const { queue, calls, logs } = harness({ onStateChange: () => Promise.reject(new Error('write failed')) });
    enqueue(queue, DOC_A, 'a1');
    await flush();
    calls[0].resolve(result());
    await flush();
    expect(logs.filter((l) => l.includes('write failed'))).toHaveLength(3);
  });

  test('stats: counts per document and recent durations', async () => {
    const { queue, calls, clock } = harness();
    enqueue(queue, DOC_A, 'a1');
    enqueue(queue, DOC_A, 'a2');
    enqueue(queue, DOC_B, 'b1');
    await flush();
    expect(queue.stats()).toEqual({
      accepting: true,
      queued: 2,
      running: 1,
      runningJobId: calls[0].job.jobId,
      perDocument: { [DOC_A]: { queued: 1, running: 1 }, [DOC_B]: { queued: 1, running: 0 } },
      recentDurationsMs: [],
      averageDurationMs: null,
      retainedJobs: 3,
    });
    clock.t += 400;
    calls[0].resolve(result());
    await flush();
    clock.t += 600;
    calls[1].resolve(result());
    await flush();
    expect(queue.stats()).toMatchObject({ queued: 0, running: 1, recentDurationsMs: [400, 600], averageDurationMs: 500 });
  });

  test('finished jobs are pruned by count and by age; active jobs never are', async () => {
    const { queue, calls, clock } = harness({ maxFinished: 2, finishedTtlMs: 60_000 });
    const ids = [1, 2, 3].map((i) => enqueue(queue, DOC_A, `a${i}`));
    const waiting = enqueue(queue, DOC_A, 'a4');
    await runAll(calls, 3);
    expect(queue.get(ids[0])).toBeNull(); // over the count
    expect(queue.get(ids[1])!.state).toBe('succeeded');
    clock.t += 60_001;
    expect(queue.get(ids[1])).toBeNull(); // too old
    expect(queue.get(ids[2])).toBeNull();
    expect(queue.get(waiting)!.state).toBe('running');
  });
});

// ------------------------------------------------------------------------------------------------ events

describe('JobQueue events', () => {
  test('replays the backlog, then streams live events, in seq order, without duplicates, until the end', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    const { emit } = calls[0].ctx;
    emit({ type: 'progress', step: 1, totalSteps: 3, variation: 0 });
    const seen: JobEvent[] = [];
    for await (const e of queue.events(a1)) {
      seen.push(e);
      // while the consumer is still reading the replay, more events happen: each must arrive exactly once
      if (e.type === 'started') emit({ type: 'progress', step: 2, totalSteps: 3, variation: 0 });
      if (e.type === 'progress' && e.step === 2) {
        emit({ type: 'progress', step: 3, totalSteps: 3, variation: 0 });
        setImmediate(() => calls[0].resolve(result()));
      }
    }
    expect(seen.map((e) => (e.type === 'progress' ? `progress${e.step}` : e.type))).toEqual([
      'queued',
      'started',
      'progress1',
      'progress2',
      'progress3',
      'succeeded',
    ]);
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.every((e) => e.jobId === a1)).toBe(true);
    expectSeqsIncreasingWithoutDuplicates(seen);
  });

  test('events emitted between events() and the first read are delivered once', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    const stream = queue.events(a1);
    await flush(); // 'started' happens before the consumer starts reading
    calls[0].ctx.emit({ type: 'progress', step: 1, totalSteps: 1, variation: 0 });
    calls[0].resolve(result());
    const seen = await collect(stream);
    expect(seen.map((e) => e.type)).toEqual(['queued', 'started', 'progress', 'succeeded']);
    expectSeqsIncreasingWithoutDuplicates(seen);
  });

  test('several watchers each get every event', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    const first = collect(queue.events(a1));
    const second = collect(queue.events(a1));
    await flush();
    calls[0].ctx.emit({ type: 'progress', step: 1, totalSteps: 1, variation: 0 });
    calls[0].resolve(result());
    const [x, y] = await Promise.all([first, second]);
    expect(x).toEqual(y);
    expect(x.map((e) => e.type)).toEqual(['queued', 'started', 'progress', 'succeeded']);
  });

  test('afterSeq resumes after the last event a client saw (SSE lastEventId)', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    for (let step = 1; step <= 4; step++) calls[0].ctx.emit({ type: 'progress', step, totalSteps: 4, variation: 0 });
    const resumed = collect(queue.events(a1, 3)); // saw queued, started, progress1
    calls[0].resolve(result());
    const seen = await resumed;
    expect(seen.map((e) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(seen[seen.length - 1].type).toBe('succeeded');
  });

  test('a finished job replays to its terminal event and ends; resuming after the end yields nothing', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    calls[0].reject(new Error('out of memory: ask for fewer variations'));
    await flush();
    const all = await collect(queue.events(a1));
    expect(all[all.length - 1]).toEqual({ type: 'failed', jobId: a1, seq: 3, message: 'out of memory: ask for fewer variations' });
    expect(await collect(queue.events(a1, 3))).toEqual([]);
    expect(await collect(queue.events(a1, 99))).toEqual([]);
  });

  test('the stream ends when the caller aborts', async () => {
    const { queue } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const done = (async () => {
      for await (const e of queue.events(a1, 0, controller.signal)) seen.push(e);
    })();
    await flush();
    expect(seen.map((e) => e.type)).toEqual(['queued', 'started']);
    controller.abort();
    await done; // resolves although the job is still running
    expect(queue.get(a1)!.state).toBe('running');
    expect(await collect(queue.events(a1, 0, controller.signal))).toEqual([]); // already aborted
  });

  test('the backlog is bounded but always ends with the terminal event', async () => {
    const { queue, calls } = harness({ backlogSize: 5 });
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    for (let step = 1; step <= 20; step++) calls[0].ctx.emit({ type: 'progress', step, totalSteps: 20, variation: 0 });
    calls[0].resolve(result());
    await flush();
    const kept = await collect(queue.events(a1));
    expect(kept.map((e) => e.seq)).toEqual([19, 20, 21, 22, 23]);
    expect(kept[4].type).toBe('succeeded');
  });

  test('JobEventLog refuses events after the terminal one', () => {
    const log = new JobEventLog('j', 10);
    log.append({ type: 'cancelled' });
    expect(log.ended).toBe(true);
    expect(() => log.append({ type: 'started' })).toThrow(/already ended with 'cancelled'/);
  });
});

// ---------------------------------------------------------------------------------------------- shutdown

describe('JobQueue drain and close', () => {
  test('drain stops accepting and waits for every queued and running job', async () => {
    const { queue, calls } = harness();
    const ids = [1, 2].map((i) => enqueue(queue, DOC_A, `a${i}`));
    let drained = false;
    const draining = queue.drain().then(() => (drained = true));
    expect(() => enqueue(queue, DOC_B, 'b1')).toThrow(QueueClosedError);
    expect(() => enqueue(queue, DOC_B, 'b1')).toThrow('the server is shutting down and accepts no new edits; try again in a moment');
    await runAll(calls, 1);
    expect(drained).toBe(false);
    await runAll(calls.slice(1), 1);
    await draining;
    expect(ids.map((id) => queue.get(id)!.state)).toEqual(['succeeded', 'succeeded']);
    expect(queue.stats().accepting).toBe(false);
  });

  test('close fails queued jobs and waits for the running one within the timeout', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    const a2 = enqueue(queue, DOC_A, 'a2');
    await flush();
    const closing = queue.close({ timeoutMs: 10_000 });
    expect(queue.get(a2)).toMatchObject({ state: 'failed', error: SHUTDOWN_QUEUED_MESSAGE });
    expect(() => enqueue(queue, DOC_B, 'b1')).toThrow(QueueClosedError);
    expect(calls[0].ctx.signal.aborted).toBe(false);
    calls[0].resolve(result());
    await closing;
    expect(queue.get(a1)!.state).toBe('succeeded');
    expect(calls).toHaveLength(1);
  });

  test('close aborts a running job after the timeout; it ends failed with a message', async () => {
    const { queue, calls } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    calls[0].ctx.signal.addEventListener('abort', () => calls[0].reject(new Error('edit cancelled')));
    const events = collect(queue.events(a1));
    await queue.close({ timeoutMs: 5, graceMs: 1_000 });
    expect(calls[0].ctx.signal.aborted).toBe(true);
    expect(queue.get(a1)).toMatchObject({ state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
    expect((await events).map((e) => e.type)).toEqual(['queued', 'started', 'failed']);
  });

  test('close abandons a run that ignores its signal after the grace period', async () => {
    const { queue, calls, logs } = harness();
    const a1 = enqueue(queue, DOC_A, 'a1');
    await flush();
    await queue.close({ timeoutMs: 5, graceMs: 5 });
    expect(queue.get(a1)).toMatchObject({ state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
    expect(logs.some((l) => l.includes('ignored its abort signal'))).toBe(true);
    calls[0].resolve(result()); // settling late changes nothing
    await flush();
    expect(queue.get(a1)!.state).toBe('failed');
    expect(queue.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  test('close is idempotent and resolves at once on an idle queue', async () => {
    const { queue } = harness();
    const first = queue.close();
    expect(queue.close()).toBe(first);
    await first;
  });
});

// ------------------------------------------------------------------------------- caller-chosen ids

describe('JobQueue: caller-chosen job ids', () => {
  test('enqueue uses the given jobId, and refuses a duplicate', async () => {
    const { queue } = harness();
    const jobId = randomUUID();
    expect((await queue.enqueue(planOf(request(DOC_A, 'a')), { jobId })).jobId).toBe(jobId);
    expect(queue.get(jobId)?.documentId).toBe(DOC_A);
    expect(() => queue.enqueue(planOf(request(DOC_A, 'b')), { jobId })).toThrow(/duplicate/);
  });
});
