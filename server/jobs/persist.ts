/**
 * Mirrors the in-memory queue's job states into the EditStore (JobQueue's onStateChange).
 *
 * - Writes for one job are applied in order (one promise chain per job); `settled(jobId)` resolves when all of
 *   them so far are done, so the runner adds its nodes only once the store knows the job is running.
 * - Idempotent: a state the store already has is skipped. The store row is created 'queued' by edits.create
 *   before the job is enqueued, and the runner's addEditNodes(markSucceeded) moves it to 'succeeded' in the
 *   same transaction as its nodes, so both of those arrive here as no-ops.
 * - The store is the record: when it already holds a final state that differs (a cancel that raced the
 *   commit of the results), the store's state stands and the difference is logged.
 */
import { isTerminalJobState, type JobState } from '../../shared/protocol';
import type { Logger } from '../log';
import type { EditStore } from '../store';
import type { JobStateInfo } from './queue';

const MAX_ERROR_LENGTH = 8000;

export class JobStateRecorder {
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly edits: EditStore,
    private readonly log: Logger,
  ) {}

  /** Pass as JobQueueOptions.onStateChange. Never rejects (failures are logged). */
  readonly onStateChange = (jobId: string, state: JobState, info: JobStateInfo): Promise<void> => {
    const previous = this.pending.get(jobId) ?? Promise.resolve();
    const next = previous
      // a macrotask later: the write is a synchronous SQLite commit, and the code that changed the state (the
      // queue starting the runner, which posts the edit to the engine) should not wait behind it
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => this.apply(jobId, state, info))
      .catch((err: unknown) => this.log.error('could not record a job state', { jobId, state, error: (err as Error).message }));
    this.pending.set(jobId, next);
    if (isTerminalJobState(state)) {
      void next.then(() => {
        if (this.pending.get(jobId) === next) this.pending.delete(jobId);
      });
    }
    return next;
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
    const job = await this.edits.getJob(jobId);
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
