/**
 * The in-process job queue in front of one engine device (DESIGN 3, 8).
 *
 * - One job runs at a time (one queue per device), or up to `concurrency` when the engine batches edits together
 *   (the server's --batch: they share the denoiser's runs step by step, server/engine/batching.ts).
 * - Fair across documents: the next job comes from the document served least recently (a document with
 *   nothing served yet goes first), FIFO within a document. So a document with 10 queued jobs delays
 *   another document's single job by at most one job.
 * - Cancellation is an AbortSignal handed to `run`; a queued job is removed at once.
 * - Every job has an explicit state (queued -> running -> succeeded | failed | cancelled) and an event log
 *   (see events.ts) that `events()` replays and streams. Finished jobs are kept for a while, then pruned.
 *
 * The work itself is injected (`run`): the server passes a function that calls the engine and stores the
 * results; tests pass controllable fakes. No timers run except inside `close()`; nothing is global.
 */
import { randomUUID } from 'node:crypto';
import {
  MAX_PREVIEW_DATA_URL_LENGTH,
  isTerminalJobState,
  type EditRequest,
  type JobEvent,
  type JobEventOf,
  type JobResult,
  type JobSnapshot,
  type JobState,
} from '../../shared/protocol';
import { DEFAULT_BACKLOG_SIZE, JobEventLog, type JobEventBody } from './events';

/** What `run` reports while it works; the queue adds jobId and seq. */
export type RunUpdate = Omit<JobEventOf<'progress'>, 'jobId' | 'seq'> | Omit<JobEventOf<'preview'>, 'jobId' | 'seq'>;

export interface RunContext {
  /** aborts when the job is cancelled or the queue shuts down; check it between steps and reject */
  signal: AbortSignal;
  /** progress and previews; ignored once the job was aborted or has ended */
  emit: (update: RunUpdate) => void;
}

/** The job as `run` sees it. */
export interface JobInput {
  readonly jobId: string;
  readonly documentId: string;
  /** a private copy of what was enqueued */
  readonly request: EditRequest;
  readonly enqueuedAt: number;
}

/** Does the work of one job. Resolve with the stored edits; reject with a message written for the user. */
export type RunJob = (job: JobInput, ctx: RunContext) => Promise<JobResult>;

export interface JobStateInfo {
  documentId: string;
  /** epoch ms of the change */
  at: number;
  /** set when the state is 'succeeded' */
  result?: JobResult;
  /** set when the state is 'failed' */
  error?: string;
  /** set when the state is 'queued': what was enqueued, for the store to record the new job */
  request?: EditRequest;
  /**
   * set on the final 'cancelled' of a job withdrawn because it could not be recorded (see withdraw()): nobody
   * was given its id, so it is no job to count or record
   */
  withdrawn?: true;
}

export interface JobQueueOptions {
  /** most jobs waiting (the running job is not counted); see MAX_QUEUE_LENGTH */
  maxLength: number;
  /** most jobs running at once (default 1; the engine's batch size when it batches edits) */
  concurrency?: number;
  /** most jobs waiting per document (default: maxLength, i.e. no extra limit) */
  maxPerDocument?: number;
  run: RunJob;
  /**
   * Called on every state change (for the store to persist it); errors are logged, never thrown back. What it
   * returns for a job's first state ('queued') is enqueue()'s `recorded`.
   */
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
  now?: () => number;
  newId?: () => string;
  log?: (message: string) => void;
}

export interface QueueStats {
  accepting: boolean;
  queued: number;
  running: number;
  runningJobId: string | null;
  perDocument: Record<string, { queued: number; running: number }>;
  /** most recent last; only jobs that succeeded (failures and cancellations end early and would skew it) */
  recentDurationsMs: number[];
  averageDurationMs: number | null;
  /** jobs still known to get(): active and recently finished */
  retainedJobs: number;
}

export class QueueFullError extends Error {
  constructor(
    /** 'queue': the device's queue is full; 'document': this document has too many jobs waiting */
    readonly scope: 'queue' | 'document',
    readonly limit: number,
    /** estimated seconds until a slot frees, at least 1 */
    readonly retryAfterSeconds: number,
  ) {
    super(
      scope === 'queue'
        ? `the edit queue is full (${limit} jobs waiting); try again in about ${retryAfterSeconds} s`
        : `this document already has ${limit} edits waiting; wait for one to start (about ${retryAfterSeconds} s) or cancel one`,
    );
    this.name = 'QueueFullError';
  }
}

export class QueueClosedError extends Error {
  constructor() {
    super('the server is shutting down and accepts no new edits; try again in a moment');
    this.name = 'QueueClosedError';
  }
}

export class UnknownJobError extends Error {
  constructor(readonly jobId: string) {
    super(`no job ${jobId}: it never existed or finished long ago`);
    this.name = 'UnknownJobError';
  }
}

export const SHUTDOWN_QUEUED_MESSAGE = 'the server is shutting down and this edit never started: submit it again';
export const SHUTDOWN_RUNNING_MESSAGE = 'the server shut down while this edit was running: submit it again';

interface Job {
  readonly input: JobInput;
  /** enqueue order, for FIFO and tie-breaks */
  readonly order: number;
  readonly log: JobEventLog;
  state: JobState;
  position: number | null;
  cancelRequested: boolean;
  /** why the running job's signal was aborted */
  stopReason: 'cancel' | 'shutdown' | 'withdrawn' | null;
  abort: AbortController | null;
  progress: { step: number; totalSteps: number; variation: number } | null;
  preview: { step: number; dataUrl: string } | null;
  result: JobResult | null;
  error: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

type Ending = { state: 'succeeded'; result: JobResult } | { state: 'failed'; error: string } | { state: 'cancelled' };
type Outcome = { ok: true; result: JobResult } | { ok: false; error: unknown };

export class JobQueue {
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

  /** every job get() still knows */
  private readonly jobs = new Map<string, Job>();
  /** waiting jobs per document, FIFO; only documents with waiting jobs */
  private readonly waiting = new Map<string, Job[]>();
  /** serve counter of each document's latest started job, while it has jobs waiting or running */
  private readonly lastServed = new Map<string, number>();
  /** finished jobs in the order they finished, for pruning */
  private readonly finished = new Map<string, Job>();
  private readonly durations: number[] = [];
  /** running jobs and the promise each one's settle() resolves */
  private readonly running = new Map<Job, Promise<void>>();
  private readonly concurrency: number;
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
  }

  // ------------------------------------------------------------------------------------------- public

  /**
   * Queue an edit. `position` is the number of waiting jobs ahead of it (0 = next to start). `opts.jobId`:
   * use this id instead of a new one. `recorded`: what onStateChange returned for the job's 'queued' state (the
   * store writing the new job); it may still be pending when the job starts, since the runner begins on a
   * microtask. Throws QueueClosedError after drain()/close(), QueueFullError when maxLength jobs are waiting
   * (or maxPerDocument for this document).
   */
  enqueue(documentId: string, request: EditRequest, opts: { jobId?: string } = {}): { jobId: string; position: number; recorded: Promise<void> } {
    if (request.documentId !== documentId) {
      throw new Error(`JobQueue.enqueue: documentId ${documentId} differs from the request's ${request.documentId}`);
    }
    this.assertCanEnqueue(documentId);
    const mine = this.waiting.get(documentId);
    const jobId = opts.jobId ?? this.newId();
    if (this.jobs.has(jobId)) throw new Error(`JobQueue: ${opts.jobId ? 'the given jobId' : 'newId()'} is a duplicate id ${jobId}`);
    const job: Job = {
      input: { jobId, documentId, request: structuredClone(request), enqueuedAt: this.now() },
      order: ++this.enqueued,
      log: new JobEventLog(jobId, this.backlogSize),
      state: 'queued',
      position: null,
      cancelRequested: false,
      stopReason: null,
      abort: null,
      progress: null,
      preview: null,
      result: null,
      error: null,
      startedAt: null,
      finishedAt: null,
    };
    this.jobs.set(jobId, job);
    if (mine) mine.push(job);
    else this.waiting.set(documentId, [job]);
    const recorded = this.stateChanged(job);
    this.updatePositions(); // emits this job's first 'queued' event
    this.schedulePump();
    return { jobId, position: job.position ?? 0, recorded };
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
   * Cancel a job. Queued: removed and 'cancelled' at once. Running: its signal aborts, and it turns
   * 'cancelled' when `run` settles. Returns false for unknown or already finished jobs.
   */
  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || isTerminalJobState(job.state)) return false;
    if (job.state === 'queued') {
      this.removeWaiting(job);
      this.finish(job, { state: 'cancelled' });
      this.updatePositions();
      this.checkIdle();
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
   * Undo an enqueue whose job could not be recorded (edits.create then answers an error, so nobody has its id):
   * a queued job is removed; a running one is aborted and frees the engine at its next step. Its end reaches
   * onStateChange as 'cancelled' with `withdrawn: true`; it logs no event and is forgotten at once.
   */
  withdraw(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (!job || isTerminalJobState(job.state)) return;
    if (job.state === 'queued') {
      this.removeWaiting(job);
      this.forgetWithdrawn(job);
      this.updatePositions();
      this.checkIdle();
      return;
    }
    job.stopReason = 'withdrawn';
    job.abort?.abort(); // settle() forgets it once run stops
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
   * `graceMs` more for `run` to stop; a run that ignores its signal is then abandoned. Idempotent.
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

  /**
   * The order the waiting jobs will start in, if nothing else arrives: documents by least recently served
   * (never served first, then by their oldest job), one job per document per round.
   */
  private plannedOrder(): Job[] {
    const docs = [...this.waiting.entries()].sort(
      ([a, ja], [b, jb]) => (this.lastServed.get(a) ?? 0) - (this.lastServed.get(b) ?? 0) || ja[0].order - jb[0].order,
    );
    const order: Job[] = [];
    const total = this.waitingCount();
    for (let round = 0; order.length < total; round++) {
      for (const [, jobs] of docs) if (round < jobs.length) order.push(jobs[round]);
    }
    return order;
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

  private pump(): void {
    let started = false;
    while (this.running.size < this.concurrency) {
      const next = this.plannedOrder()[0];
      if (!next) break;
      this.removeWaiting(next);
      this.lastServed.set(next.input.documentId, ++this.served);
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
    this.forgetIdleDocument(documentId);
  }

  /** A document with nothing waiting or running counts as new when it comes back. */
  private forgetIdleDocument(documentId: string): void {
    if (!this.waiting.has(documentId) && ![...this.running.keys()].some((j) => j.input.documentId === documentId)) this.lastServed.delete(documentId);
  }

  // ---------------------------------------------------------------------------------------- running

  private start(job: Job): void {
    const abort = new AbortController();
    job.state = 'running';
    job.abort = abort;
    job.startedAt = this.now();
    const ctx: RunContext = { signal: abort.signal, emit: (update) => this.onRunUpdate(job, update) };
    const settled = Promise.resolve()
      .then(() => this.options.run(job.input, ctx))
      .then(
        (result): Outcome => ({ ok: true, result }),
        (error: unknown): Outcome => ({ ok: false, error }),
      )
      .then((outcome) => this.settle(job, outcome));
    this.running.set(job, settled);
    this.stateChanged(job);
    this.emit(job, { type: 'started' });
  }

  private onRunUpdate(job: Job, update: RunUpdate): void {
    if (job.state !== 'running' || job.abort?.signal.aborted) return;
    const { step, totalSteps, variation } = update;
    if (update.type === 'preview') {
      if (update.dataUrl.length > MAX_PREVIEW_DATA_URL_LENGTH || !update.dataUrl.startsWith('data:image/png;base64,')) {
        this.log(`job ${job.input.jobId}: dropped a preview that is not a PNG data URL of at most ${MAX_PREVIEW_DATA_URL_LENGTH} characters`);
        return;
      }
      job.preview = { step, dataUrl: update.dataUrl };
      this.emit(job, { type: 'preview', step, totalSteps, variation, dataUrl: update.dataUrl });
    } else {
      this.emit(job, { type: 'progress', step, totalSteps, variation });
    }
    job.progress = { step, totalSteps, variation };
  }

  private settle(job: Job, outcome: Outcome): void {
    this.running.delete(job);
    if (!isTerminalJobState(job.state)) {
      if (job.stopReason === 'withdrawn') {
        this.forgetWithdrawn(job);
      } else if (job.stopReason === 'shutdown') {
        this.finish(job, { state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
      } else if (job.abort?.signal.aborted) {
        this.finish(job, { state: 'cancelled' }); // whatever run returned after the abort
      } else if (outcome.ok) {
        const problem = resultProblem(outcome.result);
        if (problem) {
          this.log(`job ${job.input.jobId}: run returned a malformed result: ${problem}`);
          this.finish(job, { state: 'failed', error: `internal error: ${problem}` });
        } else {
          this.recordDuration(this.now() - (job.startedAt ?? this.now()));
          this.finish(job, { state: 'succeeded', result: outcome.result });
        }
      } else {
        this.finish(job, { state: 'failed', error: errorMessage(outcome.error) });
      }
    }
    this.forgetIdleDocument(job.input.documentId);
    this.schedulePump();
    this.checkIdle();
  }

  private finish(job: Job, ending: Ending): void {
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
    this.prune();
  }

  private forgetWithdrawn(job: Job): void {
    job.state = 'cancelled';
    job.position = null;
    job.finishedAt = this.now();
    this.stateChanged(job, { withdrawn: true });
    this.jobs.delete(job.input.jobId);
  }

  private emit(job: Job, body: JobEventBody): void {
    job.log.append(body);
  }

  /** Tells onStateChange; returns what it returned (a rejection is also logged here). */
  private stateChanged(job: Job, extra: Pick<JobStateInfo, 'withdrawn'> = {}): Promise<void> {
    const hook = this.options.onStateChange;
    if (!hook) return Promise.resolve();
    const info: JobStateInfo = { documentId: job.input.documentId, at: this.now(), ...extra };
    if (job.result) info.result = { editIds: [...job.result.editIds], resultSha256s: [...job.result.resultSha256s] };
    if (job.error !== null) info.error = job.error;
    if (job.state === 'queued') info.request = structuredClone(job.input.request);
    const report = (err: unknown) => this.log(`onStateChange(${job.input.jobId}, ${job.state}) failed: ${errorMessage(err)}`);
    try {
      const pending = Promise.resolve(hook(job.input.jobId, job.state, info));
      pending.catch(report);
      return pending;
    } catch (err) {
      report(err);
      const failed = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      failed.catch(() => {}); // reported above; callers that ignore the result must not see an unhandled rejection
      return failed;
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
    }
  }

  private whenIdle(): Promise<void> {
    if (this.running.size === 0 && this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.running.size > 0 || this.waiting.size > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async shutdown(timeoutMs: number, graceMs: number): Promise<void> {
    this.accepting = false;
    for (const job of this.plannedOrder()) {
      this.removeWaiting(job);
      this.finish(job, { state: 'failed', error: SHUTDOWN_QUEUED_MESSAGE });
    }
    await Promise.all([...this.running].map(([job, settled]) => this.stopRunning(job, settled, timeoutMs, graceMs)));
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
      this.finish(job, { state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE });
    }
  }
}

function toRetrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : 'the edit failed';
}

function resultProblem(result: unknown): string | null {
  const r = result as Partial<JobResult> | null | undefined;
  if (!r || !Array.isArray(r.editIds) || !Array.isArray(r.resultSha256s)) return 'expected {editIds: string[], resultSha256s: string[]}';
  if (r.editIds.length !== r.resultSha256s.length) return `${r.editIds.length} edit ids but ${r.resultSha256s.length} result images`;
  return null;
}

/** true if `p` settles within `ms` */
function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
