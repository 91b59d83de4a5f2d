/**
 * The in-process job queue in front of one engine device (DESIGN 3, 8).
 *
 * - One job runs at a time (one queue per device), or up to `concurrency` when the engine batches edits together
 *   (the server's --batch: they share the denoiser's runs step by step, server/engine/batching.ts).
 * - Fair across users, then documents (fair-order.ts, the same order as the Redis queue): the next job comes from
 *   the user served least recently, and of that user's jobs from the document served least recently (nothing
 *   served yet goes first), FIFO within a document. So a document with 10 queued jobs delays another document's
 *   single job by at most one job, and a user with many documents another user by at most one job.
 * - Cancellation is an AbortSignal handed to `run`; a queued job is removed at once.
 * - Every job has an explicit state (queued -> running -> succeeded | failed | cancelled) and an event log
 *   (see events.ts) that `events()` replays and streams. Finished jobs are kept for a while, then pruned.
 *
 * The work itself is injected (`run`): the server passes a function that calls the engine and stores the
 * results; tests pass controllable fakes. No timers run except inside `close()`; nothing is global.
 */
import { randomUUID } from 'node:crypto';
import {
  isTerminalJobState,
  type JobEvent,
  type JobResult,
  type JobSnapshot,
  type JobState,
} from '../../shared/protocol';
import type { EditNodeInput } from '../store';
import { QueueClosedError, QueueFullError, SHUTDOWN_QUEUED_MESSAGE, SHUTDOWN_RUNNING_MESSAGE, UnknownJobError } from './errors';
import { DEFAULT_BACKLOG_SIZE, MemoryJobEvents, type JobEventBody, type JobEventLog } from './events';
import type { JobLedger, Recorded } from './ledger';
import { errorMessage, finalState, previewProblem, type Outcome } from './outcome';
import { fairOrder } from './fair-order';
import type { EditPlan } from './plan';
import type { Enqueued, JobInput, JobQueue as JobQueuePort, QueueStats, RunContext, RunJob, RunUpdate } from './port';

export { QueueClosedError, QueueFullError, SHUTDOWN_QUEUED_MESSAGE, SHUTDOWN_RUNNING_MESSAGE, UnknownJobError } from './errors';
export type { JobInput, QueueStats, RunContext, RunJob, RunUpdate } from './port';

/** What onStateChange is told (metrics, logs, the admission room): it observes, it persists nothing. */
export interface JobStateInfo {
  documentId: string;
  /** epoch ms of the change */
  at: number;
  /** set when the state is 'succeeded' */
  result?: JobResult;
  /** set when the state is 'failed' */
  error?: string;
  /** never set any more (a job that cannot be recorded is never reported); kept for observers that check it */
  withdrawn?: true;
}

export interface JobQueueOptions {
  /** most jobs waiting (the running job is not counted); see MAX_QUEUE_LENGTH */
  maxLength: number;
  /** most jobs waiting per document (default: maxLength, i.e. no extra limit) */
  maxPerDocument?: number;
  run: RunJob;
  /**
   * Where job states are recorded (the store). The queue awaits each write before it moves on: a job is recorded
   * before enqueue() resolves and before it runs, marked running before `run` starts, and its final state is
   * recorded before its terminal event. Without one (tests of the scheduling) nothing is recorded and `commit`
   * is refused.
   */
  ledger?: JobLedger;
  /** Told of every state change once it is recorded (metrics, logs); errors are logged, never thrown back. */
  onStateChange?: (jobId: string, state: JobState, info: JobStateInfo) => void | Promise<void>;
  /** events kept per job for resuming clients (default 200; the terminal event is always kept) */
  backlogSize?: number;
  /** finished jobs are forgotten after this long (default 10 minutes) ... */
  finishedTtlMs?: number;
  /** ... or when more than this many are kept (default 500) */
  maxFinished?: number;
  /** how many recent job durations feed estimates and stats (default 20) */
  durationWindow?: number;
  /** assumed job duration before any job has finished, for retryAfterSeconds (default 15 s) */
  assumedJobMs?: number;
  /** most jobs running at once (default 1; the engine's batch size when it batches edits) */
  concurrency?: number;
  now?: () => number;
  newId?: () => string;
  log?: (message: string) => void;
}


interface Job {
  readonly input: JobInput;
  /** enqueue order, for FIFO and tie-breaks */
  readonly order: number;
  readonly log: JobEventLog;
  state: JobState;
  /** false until the ledger has the job: it holds its place in line but does not start */
  recorded: boolean;
  position: number | null;
  cancelRequested: boolean;
  /** why the running job's signal was aborted */
  stopReason: 'cancel' | 'shutdown' | null;
  abort: AbortController | null;
  /** what ctx.commit stored: the job's result, whatever happens after */
  committed: JobResult | null;
  progress: { step: number; totalSteps: number; variation: number } | null;
  preview: { step: number; dataUrl: string } | null;
  result: JobResult | null;
  error: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** resolves when the job has its final state (recorded and announced) */
  readonly ended: Promise<void>;
  markEnded: () => void;
}

export class JobQueue implements JobQueuePort {
  private readonly maxLength: number;
  private readonly maxPerDocument: number;
  private readonly backlogSize: number;
  private readonly finishedTtlMs: number;
  private readonly maxFinished: number;
  private readonly durationWindow: number;
  private readonly assumedJobMs: number;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly log: (message: string) => void;
  private readonly ledger: JobLedger | null;
  private readonly eventLogs: MemoryJobEvents;

  /** every job get() still knows */
  private readonly jobs = new Map<string, Job>();
  /** waiting jobs per document, FIFO; only documents with waiting jobs */
  private readonly waiting = new Map<string, Job[]>();
  /** serve counter of each document's latest started job (until the queue is idle) */
  private readonly lastServed = new Map<string, number>();
  /** serve counter of each user's latest started job (until the queue is idle) */
  private readonly lastServedUser = new Map<string, number>();
  /** finished jobs in the order they finished, for pruning */
  private readonly finished = new Map<string, Job>();
  private readonly durations: number[] = [];
  /** running jobs and the promise each one's run resolves once its end is recorded */
  private readonly running = new Map<Job, Promise<void>>();
  private readonly concurrency: number;
  /** ledger writes for jobs that end without running (cancelled or failed while queued) */
  private readonly endings = new Set<Promise<void>>();
  private enqueued = 0;
  private served = 0;
  private accepting = true;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly options: JobQueueOptions) {
    const positiveInt = (name: string, v: number): number => {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`JobQueue: ${name} must be a positive integer, got ${v}`);
      return v;
    };
    this.maxLength = positiveInt('maxLength', options.maxLength);
    this.concurrency = positiveInt('concurrency', options.concurrency ?? 1);
    this.maxPerDocument = positiveInt('maxPerDocument', options.maxPerDocument ?? options.maxLength);
    this.backlogSize = positiveInt('backlogSize', options.backlogSize ?? DEFAULT_BACKLOG_SIZE);
    this.maxFinished = positiveInt('maxFinished', options.maxFinished ?? 500);
    this.durationWindow = positiveInt('durationWindow', options.durationWindow ?? 20);
    this.finishedTtlMs = options.finishedTtlMs ?? 10 * 60_000;
    this.assumedJobMs = options.assumedJobMs ?? 15_000;
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? randomUUID;
    this.log = options.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.ledger = options.ledger ?? null;
    this.eventLogs = new MemoryJobEvents(this.backlogSize);
  }

  // ------------------------------------------------------------------------------------------- public

  /**
   * Queue a planned edit. It takes its place in line at once: the checks and the place are synchronous (it
   * throws QueueClosedError after drain()/close(), QueueFullError when maxLength jobs are waiting or
   * maxPerDocument of this document, before returning), so two calls in a row get two places in that order. The
   * promise resolves with `position` (waiting jobs ahead of it, 0 = next to start) once the ledger has recorded
   * the job, and only then can it start. When the ledger cannot record it, the job is undone (no event, no state
   * change reported) and the promise rejects with the ledger's error.
   */
  enqueue(plan: EditPlan, opts: { jobId?: string } = {}): Promise<Enqueued> {
    const documentId = plan.request.documentId;
    this.assertCanEnqueue(documentId);
    const jobId = opts.jobId ?? this.newId();
    if (this.jobs.has(jobId)) throw new Error(`JobQueue: ${opts.jobId ? 'the given jobId' : 'newId()'} is a duplicate id ${jobId}`);
    const copy = structuredClone(plan);
    let markEnded!: () => void;
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    const job: Job = {
      ended,
      markEnded,
      input: { jobId, documentId, plan: copy, request: copy.request, enqueuedAt: this.now() },
      order: ++this.enqueued,
      log: this.eventLogs.log(jobId),
      state: 'queued',
      recorded: this.ledger === null,
      position: null,
      cancelRequested: false,
      stopReason: null,
      abort: null,
      committed: null,
      progress: null,
      preview: null,
      result: null,
      error: null,
      startedAt: null,
      finishedAt: null,
    };
    this.jobs.set(jobId, job);
    const mine = this.waiting.get(documentId);
    if (mine) mine.push(job);
    else this.waiting.set(documentId, [job]);
    this.updatePositions(); // emits this job's first 'queued' event
    return this.record(job, job.position ?? 0);
  }

  /** The ledger records the new job; then it may start. */
  private async record(job: Job, position: number): Promise<Enqueued> {
    const { jobId } = job.input;
    if (this.ledger) {
      try {
        await this.ledger.create(jobId, job.input.plan);
      } catch (err) {
        this.undo(job);
        throw err;
      }
      job.recorded = true;
    }
    this.stateChanged(job);
    this.schedulePump();
    return { jobId, position };
  }

  /**
   * Whether enqueue() would take a job of this document now; also true once the queue is closed, so a waiting
   * caller learns that from enqueue() (QueueClosedError) at once.
   */
  hasRoom(documentId: string): boolean {
    if (!this.accepting) return true;
    this.prune();
    return this.waitingCount() < this.maxLength && (this.waiting.get(documentId)?.length ?? 0) < this.maxPerDocument;
  }

  /** Expected ms until a job with `position` waiting jobs ahead of it starts; null before any job has finished. */
  estimatedWaitMs(position: number): number | null {
    return this.averageDurationMs() === null ? null : this.estimateWaitMs(position);
  }

  /** Throws what enqueue() must throw right now for this document (QueueClosedError, QueueFullError). */
  private assertCanEnqueue(documentId: string): void {
    if (!this.accepting) throw new QueueClosedError();
    this.prune();
    if (this.waitingCount() >= this.maxLength) {
      throw new QueueFullError('queue', this.maxLength, toRetrySeconds(this.estimateWaitMs(0)));
    }
    const mine = this.waiting.get(documentId);
    if (mine && mine.length >= this.maxPerDocument) {
      throw new QueueFullError('document', this.maxPerDocument, toRetrySeconds(this.estimateWaitMs(mine[0].position ?? 0)));
    }
  }

  /**
   * Cancel a job. Queued: out of line at once, and 'cancelled' when the promise resolves (the ledger has it).
   * Running: its signal aborts, and it turns 'cancelled' when `run` settles (unless it committed its results
   * first). Resolves false for unknown or already finished jobs.
   */
  async cancel(jobId: string): Promise<boolean> {
    const job = this.jobs.get(jobId);
    if (!job || !job.recorded || isTerminalJobState(job.state)) return false;
    if (job.state === 'queued') {
      if (!job.cancelRequested) {
        job.cancelRequested = true;
        this.endQueued(job, { state: 'cancelled' });
      }
      await job.ended;
      return true;
    }
    if (!job.cancelRequested) {
      job.cancelRequested = true;
      job.stopReason ??= 'cancel';
      job.abort?.abort();
    }
    return true;
  }

  /**
   * The job's current state, cheap enough to poll. `previewAfterStep`: leave the preview out (null) unless
   * it is newer than that step. Null for unknown (or pruned) jobs.
   */
  get(jobId: string, opts: { previewAfterStep?: number } = {}): JobSnapshot | null {
    this.prune();
    const job = this.jobs.get(jobId);
    if (!job) return null;
    const preview = job.preview;
    const sendPreview = preview !== null && (opts.previewAfterStep === undefined || preview.step > opts.previewAfterStep);
    return {
      jobId,
      documentId: job.input.documentId,
      state: job.state,
      position: job.state === 'queued' ? job.position : null,
      cancelRequested: job.cancelRequested,
      progress: job.progress ? { ...job.progress } : null,
      previewStep: preview?.step ?? null,
      previewDataUrl: sendPreview ? preview.dataUrl : null,
      result: job.result ? { editIds: [...job.result.editIds], resultSha256s: [...job.result.resultSha256s] } : null,
      error: job.error,
      lastSeq: job.log.lastSeq,
      enqueuedAt: job.input.enqueuedAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
    };
  }

  /**
   * The job's events: first the retained ones with seq > afterSeq, then live ones, ending after the terminal
   * event or when `signal` aborts. Throws UnknownJobError (synchronously) for unknown jobs.
   */
  events(jobId: string, afterSeq = 0, signal?: AbortSignal): AsyncIterable<JobEvent> {
    this.prune();
    const job = this.jobs.get(jobId);
    if (!job) throw new UnknownJobError(jobId);
    return job.log.stream(afterSeq, signal);
  }

  stats(): QueueStats {
    const perDocument: QueueStats['perDocument'] = {};
    for (const [documentId, jobs] of this.waiting) perDocument[documentId] = { queued: jobs.length, running: 0 };
    for (const job of this.running.keys()) (perDocument[job.input.documentId] ??= { queued: 0, running: 0 }).running++;
    const [firstRunning] = this.running.keys();
    return {
      accepting: this.accepting,
      queued: this.waitingCount(),
      running: this.running.size,
      runningJobId: firstRunning?.input.jobId ?? null,
      perDocument,
      recentDurationsMs: [...this.durations],
      averageDurationMs: this.averageDurationMs(),
      retainedJobs: this.jobs.size,
    };
  }

  /** Stop accepting jobs and resolve when every queued and running job has finished. */
  drain(): Promise<void> {
    this.accepting = false;
    return this.whenIdle();
  }

  /**
   * Graceful shutdown: stop accepting, fail the queued jobs (SHUTDOWN_QUEUED_MESSAGE), give the running job
   * `timeoutMs` to finish, then abort it (it ends 'failed', SHUTDOWN_RUNNING_MESSAGE) and wait up to
   * `graceMs` more for `run` to stop; a run that ignores its signal is then abandoned. Resolves once every
   * ending is recorded. Idempotent.
   */
  close(opts: { timeoutMs?: number; graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.timeoutMs ?? 30_000, opts.graceMs ?? 5_000);
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------- scheduling

  private waitingCount(): number {
    let n = 0;
    for (const jobs of this.waiting.values()) n += jobs.length;
    return n;
  }

  /** The order the waiting jobs will start in, if nothing else arrives: users, then their documents (fair-order.ts). */
  private plannedOrder(): Job[] {
    const waiting = [...this.waiting.values()].flat().map((job) => ({ job, userId: job.input.plan.owner.userId, documentId: job.input.documentId, order: job.order }));
    return fairOrder(
      waiting,
      (userId) => this.lastServedUser.get(userId) ?? 0,
      (documentId) => this.lastServed.get(documentId) ?? 0,
    ).map((w) => w.job);
  }

  /** Recompute positions and tell each waiting job whose position changed. */
  private updatePositions(): void {
    this.plannedOrder().forEach((job, position) => {
      if (job.position === position) return;
      job.position = position;
      this.emit(job, { type: 'queued', position });
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Start the first jobs in line that are recorded and not being cancelled, while a slot is free. */
  private pump(): void {
    let started = false;
    while (this.running.size < this.concurrency) {
      const next = this.plannedOrder().find((job) => job.recorded && !job.cancelRequested);
      if (!next) break;
      this.removeWaiting(next);
      this.served += 1;
      this.lastServed.set(next.input.documentId, this.served);
      this.lastServedUser.set(next.input.plan.owner.userId, this.served);
      this.start(next);
      started = true;
    }
    if (started) this.updatePositions();
    else this.checkIdle();
  }

  private removeWaiting(job: Job): void {
    const { documentId } = job.input;
    const jobs = this.waiting.get(documentId);
    const i = jobs ? jobs.indexOf(job) : -1;
    if (!jobs || i < 0) return;
    jobs.splice(i, 1);
    if (jobs.length === 0) this.waiting.delete(documentId);
    job.position = null;
    this.forgetServedWhenIdle();
  }

  /**
   * The serve counters start again once the queue is idle (as the Redis queue's do). Not sooner: a user whose one
   * client sends its next edit a moment after its last one ended would count as never served and go first every
   * time (measured: 3x the share of the others, Jain 0.75 in bench:server's users phase). Bounded: past 10,000
   * documents or users remembered, those with nothing waiting or running are forgotten.
   */
  private forgetServedWhenIdle(): void {
    if (this.waiting.size === 0 && this.running.size === 0) {
      this.lastServed.clear();
      this.lastServedUser.clear();
      return;
    }
    if (this.lastServed.size <= 10_000 && this.lastServedUser.size <= 10_000) return;
    const busy = [...this.running.keys(), ...[...this.waiting.values()].flat()];
    const documents = new Set(busy.map((j) => j.input.documentId));
    const users = new Set(busy.map((j) => j.input.plan.owner.userId));
    for (const documentId of this.lastServed.keys()) if (!documents.has(documentId)) this.lastServed.delete(documentId);
    for (const userId of this.lastServedUser.keys()) if (!users.has(userId)) this.lastServedUser.delete(userId);
  }

  /** A job the ledger could not record: nobody has its id, so it leaves no trace. */
  private undo(job: Job): void {
    this.removeWaiting(job);
    this.jobs.delete(job.input.jobId);
    this.eventLogs.forget(job.input.jobId);
    this.updatePositions();
    this.checkIdle();
  }

  /** A queued job ends without running (cancel, shutdown): out of line now, final once the ledger has it. */
  private endQueued(job: Job, ending: { state: 'cancelled' } | { state: 'failed'; error: string }): void {
    this.removeWaiting(job);
    this.updatePositions();
    if (!this.ledger) {
      this.finish(job, ending);
      this.checkIdle();
      return;
    }
    const write: Promise<void> = this.ledger.end(job.input.jobId, ending).then(
      (recorded) => this.finish(job, recorded),
      (err: unknown) => {
        this.log(`job ${job.input.jobId}: could not record its end (${ending.state}): ${errorMessage(err)}`);
        this.finish(job, ending);
      },
    ).finally(() => {
      this.endings.delete(write);
      this.checkIdle();
    });
    this.endings.add(write);
  }

  // ---------------------------------------------------------------------------------------- running

  private start(job: Job): void {
    const abort = new AbortController();
    job.state = 'running';
    job.abort = abort;
    job.startedAt = this.now();
    this.running.set(job, this.runJob(job, abort.signal));
  }

  /**
   * One job from start to its recorded end: the ledger marks it running, `run` works, and the ending is
   * recorded before it is announced. Never rejects.
   */
  private async runJob(job: Job, signal: AbortSignal): Promise<void> {
    const { jobId } = job.input;
    let outcome: Outcome;
    try {
      const already = this.ledger ? await this.ledger.start(jobId) : null;
      if (already) {
        // the store holds a final state (a cancel recorded elsewhere): it stands
        await this.settle(job, already);
        return;
      }
      this.stateChanged(job);
      this.emit(job, { type: 'started' });
      const ctx: RunContext = {
        signal,
        emit: (update) => this.onRunUpdate(job, update),
        commit: (nodes) => this.commit(job, nodes),
      };
      outcome = { ok: true, result: await this.options.run(job.input, ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    await this.settle(job, this.ending(job, outcome));
  }

  private async commit(job: Job, nodes: EditNodeInput[]): Promise<JobResult> {
    if (!this.ledger) throw new Error('this queue has no ledger to commit the results to');
    if (job.abort?.signal.aborted) throw new Error('edit cancelled');
    const result = await this.ledger.commit(job.input.jobId, nodes);
    job.committed = result;
    return result;
  }

  /** What the job's end is, from what `run` did and why it was stopped. */
  private ending(job: Job, outcome: Outcome): Recorded {
    const stopped = job.stopReason ?? (job.abort?.signal.aborted ? 'cancel' : null);
    const { ending, problem } = finalState({ outcome, committed: job.committed, stopped, requireCommit: this.ledger !== null });
    if (problem) this.log(`job ${job.input.jobId}: ${problem}`);
    return ending;
  }

  private onRunUpdate(job: Job, update: RunUpdate): void {
    if (job.state !== 'running' || job.abort?.signal.aborted) return;
    const { step, totalSteps, variation } = update;
    if (update.type === 'preview') {
      const problem = previewProblem(update.dataUrl);
      if (problem) {
        this.log(`job ${job.input.jobId}: ${problem}`);
        return;
      }
      job.preview = { step, dataUrl: update.dataUrl };
      this.emit(job, { type: 'preview', step, totalSteps, variation, dataUrl: update.dataUrl });
    } else {
      this.emit(job, { type: 'progress', step, totalSteps, variation });
    }
    job.progress = { step, totalSteps, variation };
  }

  /** Record the running job's ending (the store's final state stands), announce it, and start the next job. */
  private async settle(job: Job, ending: Recorded): Promise<void> {
    let final = ending;
    if (this.ledger && ending.state !== 'succeeded') {
      try {
        final = await this.ledger.end(job.input.jobId, ending);
      } catch (err) {
        this.log(`job ${job.input.jobId}: could not record its end (${ending.state}): ${errorMessage(err)}`);
      }
    }
    this.running.delete(job);
    if (!isTerminalJobState(job.state)) {
      if (final.state === 'succeeded' && job.startedAt !== null) this.recordDuration(this.now() - job.startedAt);
      this.finish(job, final);
    }
    this.forgetServedWhenIdle();
    this.schedulePump();
    this.checkIdle();
  }

  private finish(job: Job, ending: Recorded): void {
    job.state = ending.state;
    job.position = null;
    job.finishedAt = this.now();
    if (ending.state === 'succeeded') job.result = { editIds: [...ending.result.editIds], resultSha256s: [...ending.result.resultSha256s] };
    if (ending.state === 'failed') job.error = ending.error;
    this.stateChanged(job);
    if (ending.state === 'succeeded') this.emit(job, { type: 'succeeded', ...ending.result });
    else if (ending.state === 'failed') this.emit(job, { type: 'failed', message: ending.error });
    else this.emit(job, { type: 'cancelled' });
    this.finished.set(job.input.jobId, job);
    job.markEnded();
    this.prune();
  }

  private emit(job: Job, body: JobEventBody): void {
    job.log.append(body);
  }

  /** Tells onStateChange (an observer); what it throws is logged. */
  private stateChanged(job: Job): void {
    const hook = this.options.onStateChange;
    if (!hook) return;
    const info: JobStateInfo = { documentId: job.input.documentId, at: this.now() };
    if (job.result) info.result = { editIds: [...job.result.editIds], resultSha256s: [...job.result.resultSha256s] };
    if (job.error !== null) info.error = job.error;
    const report = (err: unknown) => this.log(`onStateChange(${job.input.jobId}, ${job.state}) failed: ${errorMessage(err)}`);
    try {
      void Promise.resolve(hook(job.input.jobId, job.state, info)).catch(report);
    } catch (err) {
      report(err);
    }
  }

  // ---------------------------------------------------------------------------- estimates, pruning, idle

  private recordDuration(ms: number): void {
    this.durations.push(ms);
    if (this.durations.length > this.durationWindow) this.durations.shift();
  }

  private averageDurationMs(): number | null {
    if (this.durations.length === 0) return null;
    return this.durations.reduce((a, b) => a + b, 0) / this.durations.length;
  }

  /**
   * Time until the waiting job at `position` would start: the rest of the running job that ends first when
   * every slot is busy, plus whole rounds of `concurrency` jobs ahead.
   */
  private estimateWaitMs(position: number): number {
    const avg = this.averageDurationMs() ?? this.assumedJobMs;
    let remaining = 0;
    if (this.running.size >= this.concurrency) {
      remaining = Infinity;
      for (const job of this.running.keys()) remaining = Math.min(remaining, Math.max(avg - (this.now() - (job.startedAt ?? this.now())), avg / 4));
    }
    return remaining + Math.floor(position / this.concurrency) * avg;
  }

  private prune(): void {
    const now = this.now();
    for (const [jobId, job] of this.finished) {
      if (this.finished.size <= this.maxFinished && now - (job.finishedAt ?? now) <= this.finishedTtlMs) break;
      this.finished.delete(jobId);
      this.jobs.delete(jobId);
      this.eventLogs.forget(jobId);
    }
  }

  private isIdle(): boolean {
    return this.running.size === 0 && this.waiting.size === 0 && this.endings.size === 0;
  }

  private whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async shutdown(timeoutMs: number, graceMs: number): Promise<void> {
    this.accepting = false;
    for (const job of this.plannedOrder()) {
      if (job.recorded && !job.cancelRequested) this.endQueued(job, { state: 'failed', error: SHUTDOWN_QUEUED_MESSAGE });
    }
    await Promise.all([...this.running].map(([job, settled]) => this.stopRunning(job, settled, timeoutMs, graceMs)));
    await Promise.all([...this.endings]);
    this.checkIdle();
  }

  /** Shutdown of one running job: `timeoutMs` to finish, then aborted, then abandoned after `graceMs`. */
  private async stopRunning(job: Job, settled: Promise<void>, timeoutMs: number, graceMs: number): Promise<void> {
    if (await settlesWithin(settled, timeoutMs)) return;
    job.stopReason = 'shutdown';
    job.abort?.abort();
    if (!(await settlesWithin(settled, graceMs)) && !isTerminalJobState(job.state)) {
      this.log(`job ${job.input.jobId} ignored its abort signal for ${graceMs} ms during shutdown; abandoning it`);
      this.running.delete(job);
      await this.settle(job, { state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
    }
  }
}

function toRetrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** true if `p` settles within `ms` */
function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
