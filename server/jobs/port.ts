/**
 * The job queue's ports: what the API needs of a queue (JobQueue) and of a job's event log (JobEvents), with
 * one implementation each in this process (queue.ts, events.ts) and one on Redis (redis/). Each port has a
 * contract suite (test/unit/jobs/contract/) that every implementation passes.
 *
 * Methods answer with `MaybePromise`: the in-process queue answers at once, the Redis one after a round trip;
 * callers always await.
 */
import type { JobEvent, JobResult, JobSnapshot } from '../../shared/protocol';
import type { EditNodeInput } from '../store';
import type { JobEventBody } from './events';
import type { EditPlan } from './plan';

export type MaybePromise<T> = T | Promise<T>;

export interface Enqueued {
  jobId: string;
  /** waiting jobs ahead of it when it was queued (0 = next to start) */
  position: number;
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

export interface JobQueue {
  /**
   * Queue a planned edit. Resolves once the job is recorded in the store (its id may be handed out: it is never
   * lost). QueueClosedError and QueueFullError may be thrown at once (in-process) or come as a rejection
   * (Redis); the store's error is a rejection. Either way nothing was queued.
   */
  enqueue(plan: EditPlan, opts?: { jobId?: string }): Promise<Enqueued>;
  /** Whether enqueue() would take a job of this document now (the admission room asks; a hint, enqueue decides). */
  hasRoom(documentId: string): boolean;
  /** Expected ms until a job with `position` waiting jobs ahead of it starts; null before any job has finished. */
  estimatedWaitMs(position: number): number | null;
  /** The job's state, cheap enough to poll; null for jobs it does not know (or no longer: read the store). */
  get(jobId: string, opts?: { previewAfterStep?: number }): MaybePromise<JobSnapshot | null>;
  /**
   * Queued: removed and 'cancelled' at once. Running: its run is aborted wherever it runs, and it ends 'cancelled'
   * when the run stops. False for unknown or finished jobs.
   */
  cancel(jobId: string): MaybePromise<boolean>;
  /**
   * The job's events after `afterSeq`: the retained ones, then live ones, ending after the terminal event or when
   * `signal` aborts. Throws (or rejects with) UnknownJobError for jobs it does not know.
   */
  events(jobId: string, afterSeq?: number, signal?: AbortSignal): MaybePromise<AsyncIterable<JobEvent>>;
  stats(): MaybePromise<QueueStats>;
  /** Stop accepting; fail what waits, let the running work finish within `timeoutMs`, then stop it. Idempotent. */
  close(opts?: { timeoutMs?: number; graceMs?: number }): Promise<void>;
}

/** One job's ordered event log, resumable by seq. */
export interface JobEvents {
  /** Stamp the next seq (1, 2, 3, ...) and keep the event; throws once the job's terminal event is in. */
  append(jobId: string, body: JobEventBody): Promise<JobEvent>;
  /**
   * The retained events with seq > afterSeq, then live ones, ending after the terminal event (inclusive) or when
   * `signal` aborts. No event is lost or repeated between the replay and the live part. Throws UnknownJobError
   * for a job with no events.
   */
  read(jobId: string, afterSeq?: number, signal?: AbortSignal): Promise<AsyncIterable<JobEvent>>;
  /** seq of the job's latest event; 0 before the first */
  lastSeq(jobId: string): Promise<number>;
}

/** What `run` reports while it works; the queue adds jobId and seq. */
export type RunUpdate =
  | { type: 'progress'; step: number; totalSteps: number; variation: number }
  | { type: 'preview'; step: number; totalSteps: number; variation: number; dataUrl: string };

export interface RunContext {
  /** aborts when the job is cancelled or the queue shuts down; check it between steps and reject */
  signal: AbortSignal;
  /** progress and previews; ignored once the job was aborted or has ended */
  emit: (update: RunUpdate) => void;
  /**
   * Store the job's edits and mark it succeeded, in one transaction: the job's commit point. Idempotent: a job
   * run again (its first worker died) gets the edits of the commit that already happened.
   */
  commit: (nodes: EditNodeInput[]) => Promise<JobResult>;
}

/** The job as `run` sees it. */
export interface JobInput {
  readonly jobId: string;
  readonly documentId: string;
  /** a private copy of what was enqueued */
  readonly plan: EditPlan;
  /** plan.request */
  readonly request: EditPlan['request'];
  readonly enqueuedAt: number;
}

/** Does the work of one job. Resolve with the committed edits; reject with a message written for the user. */
export type RunJob = (job: JobInput, ctx: RunContext) => Promise<JobResult>;
