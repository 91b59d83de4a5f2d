/**
 * Mirrors the in-memory queue's job states into the EditStore (JobQueue's onStateChange).
 *
 * - Writes for one job are applied in order (one promise chain per job); `settled(jobId)` resolves when all of
 *   them so far are done, so the runner adds its nodes only once the store knows the job is running.
 * - A job's first state ('queued', with its request) creates its row. The write waits a macrotask, so the
 *   runner, which starts on a microtask, has posted the edit to the engine before this synchronous commit;
 *   edits.create answers the client only once it is done (enqueue()'s `recorded`).
 * - Idempotent: a state the store already has is skipped. The runner's addEditNodes(markSucceeded) moves the
 *   job to 'succeeded' in the same transaction as its nodes, so that state arrives here as a no-op.
 * - The store is the record: when it already holds a final state that differs (a cancel that raced the
 *   commit of the results), the store's state stands and the difference is logged.
 */
import { isTerminalJobState, type JobState } from '../../shared/protocol';
import type { Logger } from '../log';
import type { EditStore, JsonObject } from '../store';
import type { JobStateInfo } from './queue';

const MAX_ERROR_LENGTH = 8000;

/** A job's first state carries its request: the store records the job then. */
function creates(state: JobState, info: JobStateInfo): info is JobStateInfo & { request: NonNullable<JobStateInfo['request']> } {
  return state === 'queued' && info.request !== undefined;
}

export class JobStateRecorder {
  private readonly pending = new Map<string, Promise<void>>();
  /** jobs whose row could not be written: their later states have nothing to update (the queue withdraws them) */
  private readonly unrecorded = new Set<string>();

  constructor(
    private readonly edits: EditStore,
    private readonly log: Logger,
    /** who asked for a job (JobOwners), recorded with it; default the store's default user */
    private readonly ownerOf: (jobId: string) => string | null = () => null,
  ) {}

  /**
   * Pass as JobQueueOptions.onStateChange. Rejects only when a new job could not be recorded (the caller must
   * not hand out its id); other failures are logged and resolve.
   */
  readonly onStateChange = (jobId: string, state: JobState, info: JobStateInfo): Promise<void> => {
    if (info.withdrawn) {
      this.unrecorded.delete(jobId);
      this.pending.delete(jobId);
      return Promise.resolve();
    }
    const previous = this.pending.get(jobId) ?? Promise.resolve();
    const recordsNewJob = creates(state, info);
    const write = previous
      // a macrotask later: the write is a synchronous SQLite commit, and the code that changed the state (the
      // queue starting the runner, which posts the edit to the engine) should not wait behind it
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.apply(jobId, state, info));
    const next = write.catch((err: unknown) => {
      if (recordsNewJob) this.unrecorded.add(jobId);
      else this.log.error('could not record a job state', { jobId, state, error: (err as Error).message });
    });
    this.pending.set(jobId, next);
    if (isTerminalJobState(state)) {
      void next.then(() => {
        if (this.pending.get(jobId) === next) this.pending.delete(jobId);
      });
    }
    return recordsNewJob ? write : next;
  };

  /** Resolves when every state change of this job reported so far is persisted (or failed and was logged). */
  settled(jobId: string): Promise<void> {
    return this.pending.get(jobId) ?? Promise.resolve();
  }

  /** Resolves when every pending write has finished (shutdown). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending.values()]);
  }

  private async apply(jobId: string, state: JobState, info: JobStateInfo): Promise<void> {
    if (this.unrecorded.has(jobId)) return;
    const job = await this.edits.getJob(jobId);
    if (!job && creates(state, info)) {
      await this.edits.createJob({ id: jobId, documentId: info.documentId, request: info.request as unknown as JsonObject, userId: this.ownerOf(jobId) ?? undefined });
      return;
    }
    if (!job) {
      this.log.error('job state change for a job the store does not know', { jobId, state });
      return;
    }
    if (job.state === state) return;
    if (isTerminalJobState(job.state)) {
      this.log.warn('the store already holds a final state for this job; keeping it', { jobId, stored: job.state, queue: state });
      return;
    }
    if (state === 'failed') {
      const error = (info.error ?? 'the edit failed').slice(0, MAX_ERROR_LENGTH) || 'the edit failed';
      await this.edits.updateJobState(jobId, 'failed', { error });
    } else if (state === 'succeeded') {
      // normally already done by addEditNodes(markSucceeded); this covers a runner that stored nodes without it
      await this.edits.updateJobState(jobId, 'succeeded', info.result ? { resultNodeIds: info.result.editIds } : {});
    } else {
      await this.edits.updateJobState(jobId, state);
    }
  }
}
