/**
 * The worker side of the Redis queue (`layerloop worker`, or the worker half of a process that is both): a
 * BullMQ Worker that runs up to `concurrency` jobs at once (the engine's --batch: their denoiser calls share
 * batched runs, server/engine/batching.ts) with the injected RunJob, records each step through JobLedger and
 * the job's Redis record, and publishes progress and previews to the job's event stream.
 *
 * - Cancellation: the API flags the job and publishes its id on the cancel channel; the worker running it
 *   aborts the run's signal (it also checks the flag when it starts a job).
 * - A worker that dies mid-job: its lock expires and BullMQ's stalled-job check (in the other workers) puts the
 *   job back; another worker runs it again from its plan (seeded: the same result) and the commit is idempotent
 *   (JobLedger.commit). After `maxTries` starts that all died, BullMQ fails it and the job ends failed as
 *   interrupted.
 * - Fairness: a BullMQ job is a turn. The worker starts the first job of the fair line (CLAIM: users first, then
 *   their documents; queue.ts), not necessarily the one BullMQ handed it; a BullMQ job BullMQ retries after its
 *   worker died gets the same job again.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobResult, JobState } from '../../../shared/protocol';
import type { JobLedger, Recorded } from '../ledger';
import type { JobStateInfo } from '../queue';
import { errorMessage, finalState, previewProblem, type Outcome } from '../outcome';
import type { JobInput, RunContext, RunJob, RunUpdate } from '../port';
import { BULLMQ_QUEUE_NAME, JobRecords, finishRecord, recordOptions, type RecordOptions } from './records';

/** What a job that kept losing its workers ends with. */
export function interruptedMessage(tries: number): string {
  return `interrupted: the worker running this edit stopped ${tries === 1 ? 'once' : `${tries} times`}; submit it again`;
}

/** BullMQ's reason for a job that stalled more often than maxStalledCount allows. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

export interface RedisJobWorkerOptions extends Partial<RecordOptions> {
  /** a connection with maxRetriesPerRequest: null (BullMQ blocks on it) */
  redis: Redis;
  ledger: JobLedger;
  run: RunJob;
  /**
   * jobs this worker runs at once (default 1). Set it to the engine's batch: more would only wait inside the
   * engine while holding their locks; fewer leaves the shared runs short of edits.
   */
  concurrency?: number;
  /** how many workers may start a job before it fails as interrupted (default 2) */
  maxTries?: number;
  /** a worker holds a job's lock this long and renews it at half of it; a dead worker's job is retried after (default 30 s) */
  lockMs?: number;
  /** how often the stalled-job check runs (default lockMs) */
  stalledCheckMs?: number;
  /** told of each job's states as this worker moves it, with the enqueue time first (the worker's metrics) */
  onStateChange?: (jobId: string, state: JobState, info: JobStateInfo) => void;
  now?: () => number;
  log?: (message: string) => void;
}

interface Running {
  abort: AbortController;
  stopped: 'cancel' | 'shutdown' | null;
  /** resolves when process() is done with the job */
  done: Promise<void>;
}

export class RedisJobWorker {
  readonly records: JobRecords;
  private readonly worker: Worker;
  private readonly subscriber: Redis;
  private readonly running = new Map<string, Running>();
  private readonly maxTries: number;
  private readonly now: () => number;
  private readonly log: (message: string) => void;
  private closing: Promise<void> | null = null;
  /** for a turn lost before it started a job (see interrupted) */
  private turns: Queue | null = null;

  private constructor(private readonly options: RedisJobWorkerOptions) {
    const records = recordOptions(options);
    this.records = new JobRecords(options.redis, records);
    this.maxTries = options.maxTries ?? 2;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? ((m) => process.stderr.write(`${m}\n`));
    const lockMs = options.lockMs ?? 30_000;
    this.subscriber = options.redis.duplicate();
    this.worker = new Worker(BULLMQ_QUEUE_NAME, (job) => this.process(job), {
      connection: options.redis,
      prefix: `${records.prefix}:bull`,
      concurrency: options.concurrency ?? 1,
      autorun: false,
      lockDuration: lockMs,
      stalledInterval: options.stalledCheckMs ?? lockMs,
      maxStalledCount: this.maxTries - 1,
    });
    this.worker.on('failed', (job, err) => {
      if (job?.id && err.message === STALLED_TOO_OFTEN) void this.interrupted(job);
    });
    this.worker.on('stalled', (jobId) => this.log(`job ${jobId}: its worker stopped; it runs again on another worker`));
    this.worker.on('error', (err) => this.log(`worker: ${err.message}`));
  }

  /** A worker listening for cancellations and pulling jobs. */
  static async start(options: RedisJobWorkerOptions): Promise<RedisJobWorker> {
    const w = new RedisJobWorker(options);
    await w.subscriber.subscribe(w.records.key('cancel'));
    w.subscriber.on('message', (_channel: string, jobId: string) => w.stop(jobId, 'cancel'));
    void w.worker.run().catch((err: Error) => w.log(`worker stopped: ${err.message}`));
    await w.worker.waitUntilReady();
    return w;
  }

  /** Jobs this worker is running now. */
  get active(): number {
    return this.running.size;
  }

  /**
   * Stop pulling jobs; let the running ones finish within `timeoutMs`, then abort them (they fail with
   * SHUTDOWN_RUNNING_MESSAGE) and wait `graceMs` more. Idempotent.
   */
  close(opts: { timeoutMs?: number; graceMs?: number } = {}): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.pause(true); // no new jobs; the running ones go on
      const finished = () => Promise.all([...this.running.values()].map((r) => r.done));
      if (!(await within(finished(), opts.timeoutMs ?? 30_000))) {
        for (const jobId of this.running.keys()) this.stop(jobId, 'shutdown');
        if (!(await within(finished(), opts.graceMs ?? 5_000))) this.log('the running edit ignored its abort signal during shutdown; leaving it to another worker');
      }
      await this.worker.close(true); // whatever still runs keeps its lock until it expires: then another worker takes it
      await this.turns?.close();
      this.subscriber.disconnect();
    })();
    return this.closing;
  }

  /**
   * Stops as a crashed process would, for tests: no more lock renewals and no more work, the running jobs left
   * as they are (other workers take them over once their locks expire).
   */
  async crash(): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.close(true);
      this.subscriber.disconnect();
    })();
    await this.closing;
  }

  private stop(jobId: string, why: 'cancel' | 'shutdown'): void {
    const run = this.running.get(jobId);
    if (!run || run.abort.signal.aborted) return;
    run.stopped = why;
    run.abort.abort();
  }

  private async process(bullJob: BullJob): Promise<void> {
    if (!bullJob.id) throw new Error('a BullMQ job without an id');
    const claimed = await this.records.claim(bullJob.id);
    if (!claimed) return; // nothing waits: the turn of a job cancelled while it waited
    const { jobId, plan, enqueuedAt } = claimed;
    const documentId = plan.request.documentId;
    let markDone!: () => void;
    const run: Running = { abort: new AbortController(), stopped: null, done: new Promise<void>((resolve) => (markDone = resolve)) };
    this.running.set(jobId, run);
    try {
      const startedAt = this.now();
      const started = await this.records.transition(jobId, documentId, { from: ['queued', 'running'], to: 'running', fields: { startedAt }, event: { type: 'started' } });
      if (started.kind !== 'ok') return; // cancelled before it started, or already finished
      this.observe(jobId, 'queued', { documentId, at: enqueuedAt });
      this.observe(jobId, 'running', { documentId, at: startedAt });
      const already = await this.options.ledger.start(jobId);
      if (already) {
        await this.finish(jobId, documentId, already);
        return;
      }
      if (await this.records.cancelRequested(jobId)) this.stop(jobId, 'cancel');

      let committed: JobResult | null = null;
      let updates: Promise<void> = Promise.resolve();
      const ctx: RunContext = {
        signal: run.abort.signal,
        emit: (update) => {
          if (run.abort.signal.aborted) return;
          updates = updates.then(() => this.report(jobId, documentId, update));
        },
        commit: async (nodes) => {
          if (run.abort.signal.aborted) throw new Error('edit cancelled');
          committed = await this.options.ledger.commit(jobId, nodes);
          return committed;
        },
      };
      const input: JobInput = { jobId, documentId, plan, request: plan.request, enqueuedAt };
      let outcome: Outcome;
      try {
        outcome = { ok: true, result: await this.options.run(input, ctx) };
      } catch (error) {
        outcome = { ok: false, error };
      }
      await updates; // every progress event before the terminal one
      const { ending, problem } = finalState({ outcome, committed, stopped: run.stopped, requireCommit: true });
      if (problem) this.log(`job ${jobId}: ${problem}`);
      const recorded = ending.state === 'succeeded' ? ending : await this.options.ledger.end(jobId, ending);
      await this.finish(jobId, documentId, recorded);
      if (recorded.state === 'succeeded') await this.recordDuration(this.now() - startedAt);
    } catch (err) {
      // the store or Redis failed around the run: record the failure where it can be, so no node waits for ever
      this.log(`job ${jobId}: ${errorMessage(err)}`);
      const error = `internal error while running this edit (job ${jobId}): the worker logged the details; submit it again`;
      try {
        await this.finish(jobId, documentId, await this.options.ledger.end(jobId, { state: 'failed', error }));
      } catch (again) {
        this.log(`job ${jobId}: could not record its failure either: ${errorMessage(again)}`);
        throw err; // BullMQ fails the job; its record and row stay unfinished (see README)
      }
    } finally {
      this.running.delete(jobId);
      markDone();
    }
  }

  /** The final state in Redis (after the store has it), and for the observer. */
  private async finish(jobId: string, documentId: string, recorded: Recorded): Promise<void> {
    const at = this.now();
    await finishRecord(this.records, jobId, documentId, recorded, at);
    const info: JobStateInfo = { documentId, at };
    if (recorded.state === 'succeeded') info.result = recorded.result;
    if (recorded.state === 'failed') info.error = recorded.error;
    this.observe(jobId, recorded.state, info);
  }

  private observe(jobId: string, state: JobState, info: JobStateInfo): void {
    try {
      this.options.onStateChange?.(jobId, state, info);
    } catch (err) {
      this.log(`onStateChange(${jobId}, ${state}) failed: ${errorMessage(err)}`);
    }
  }

  /** One progress or preview update: the job's record and its event, together. */
  private async report(jobId: string, documentId: string, update: RunUpdate): Promise<void> {
    const { step, totalSteps, variation } = update;
    const progress = JSON.stringify({ step, totalSteps, variation });
    const running: JobState[] = ['running'];
    try {
      if (update.type === 'preview') {
        const problem = previewProblem(update.dataUrl);
        if (problem) return this.log(`job ${jobId}: ${problem}`);
        await this.records.transition(jobId, documentId, {
          from: running,
          to: null,
          fields: { progress, preview: JSON.stringify({ step, dataUrl: update.dataUrl }) },
          event: { type: 'preview', step, totalSteps, variation, dataUrl: update.dataUrl },
        });
      } else {
        await this.records.transition(jobId, documentId, { from: running, to: null, fields: { progress }, event: { type: 'progress', step, totalSteps, variation } });
      }
    } catch (err) {
      this.log(`job ${jobId}: could not publish progress: ${errorMessage(err)}`);
    }
  }

  private async recordDuration(ms: number): Promise<void> {
    const key = this.records.key('durations');
    await this.records.redis.multi().lpush(key, Math.round(ms)).ltrim(key, 0, 19).exec();
  }

  /**
   * A turn whose workers all died: the job it started fails as interrupted, in the store and here. One that died
   * before starting any leaves a job without a turn: a new turn takes its place.
   */
  private async interrupted(bullJob: BullJob): Promise<void> {
    try {
      const jobId = await this.records.claimOf(bullJob.id as string);
      if (jobId === null) {
        this.turns ??= new Queue(BULLMQ_QUEUE_NAME, { connection: this.options.redis, prefix: `${this.records.options.prefix}:bull` });
        await this.turns.add('edit', {}, { jobId: randomUUID(), removeOnComplete: true, removeOnFail: true });
        return;
      }
      const documentId = await this.records.documentOf(jobId);
      if (documentId === null) return; // its record expired: nothing left to end
      const recorded = await this.options.ledger.end(jobId, { state: 'failed', error: interruptedMessage(this.maxTries) });
      await this.finish(jobId, documentId, recorded);
      this.log(`job ${jobId}: failed as interrupted after ${this.maxTries} tries`);
    } catch (err) {
      this.log(`job ${bullJob.id}: could not record it as interrupted: ${errorMessage(err)}`);
    }
  }
}

/** true if `p` settles within `ms` */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
