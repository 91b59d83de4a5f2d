/**
 * The only writer of job state to the store. A queue (in-process or Redis) awaits each call before it moves on,
 * so the store always knows a job before it runs, knows it runs before its edits are committed, and holds the
 * final state before anyone is told of it. Nothing here depends on the order of ticks.
 *
 * Every write is idempotent, because a job may be run again after its worker died (Redis queue): starting a
 * running job again is a no-op, committing a succeeded job returns the edits of the commit that already
 * happened, and a final state the store already holds stands (it is returned, and the caller reports it).
 */
import { isTerminalJobState, type JobResult } from '../../shared/protocol';
import { StoreError, type EditNodeInput, type EditStore, type Job, type JsonObject } from '../store';
import type { EditPlan } from './plan';

const MAX_ERROR_LENGTH = 8000;

export type Ending = { state: 'failed'; error: string } | { state: 'cancelled' };

/** What the store holds for a job at the end: what the queue reports. */
export type Recorded = { state: 'succeeded'; result: JobResult } | { state: 'failed'; error: string } | { state: 'cancelled' };

export class JobLedger {
  constructor(private readonly edits: EditStore) {}

  /** Record a new job (state 'queued', its request). Throws when it cannot: then the job must not be queued. */
  async create(jobId: string, plan: EditPlan): Promise<void> {
    await this.edits.createJob({ id: jobId, documentId: plan.request.documentId, request: plan.request as unknown as JsonObject, userId: plan.owner.userId });
  }

  /**
   * Mark the job running before its run starts. Returns null when it may run, or the final state the store
   * already holds (a cancel that won, or a commit made by a worker that died before it could say so).
   */
  async start(jobId: string): Promise<Recorded | null> {
    const job = await this.require(jobId);
    if (job.state === 'queued') {
      await this.edits.updateJobState(jobId, 'running');
      return null;
    }
    if (job.state === 'running') return null; // run again after its worker died
    return this.recorded(job);
  }

  /** Store the job's edits and mark it succeeded in one transaction; a job already succeeded returns its edits. */
  async commit(jobId: string, nodes: EditNodeInput[]): Promise<JobResult> {
    const job = await this.require(jobId);
    if (job.state === 'succeeded') return this.resultOf(job);
    try {
      const stored = await this.edits.addEditNodes(jobId, nodes, { markSucceeded: true });
      return { editIds: stored.map((n) => n.id), resultSha256s: stored.map((n) => n.resultImageSha256) };
    } catch (err) {
      // a concurrent commit of the same job (two workers) lost the race inside the store's transaction
      const now = await this.edits.getJob(jobId);
      if (err instanceof StoreError && err.code === 'illegal_transition' && now?.state === 'succeeded') return this.resultOf(now);
      throw err;
    }
  }

  /** Record a failed or cancelled end; returns what the store holds now (an earlier final state stands). */
  async end(jobId: string, ending: Ending): Promise<Recorded> {
    const job = await this.require(jobId);
    if (isTerminalJobState(job.state)) return this.recorded(job);
    if (ending.state === 'failed') {
      const error = ending.error.slice(0, MAX_ERROR_LENGTH) || 'the edit failed';
      await this.edits.updateJobState(jobId, 'failed', { error });
      return { state: 'failed', error };
    }
    await this.edits.updateJobState(jobId, 'cancelled');
    return { state: 'cancelled' };
  }

  private async require(jobId: string): Promise<Job> {
    const job = await this.edits.getJob(jobId);
    if (!job) throw new StoreError('not_found', `job ${jobId} is not in the store`);
    return job;
  }

  private async recorded(job: Job): Promise<Recorded> {
    if (job.state === 'succeeded') return { state: 'succeeded', result: await this.resultOf(job) };
    if (job.state === 'failed') return { state: 'failed', error: job.error ?? 'the edit failed' };
    if (job.state === 'cancelled') return { state: 'cancelled' };
    throw new Error(`job ${job.id} is ${job.state}, not final`);
  }

  private async resultOf(job: Job): Promise<JobResult> {
    const nodes = await Promise.all(job.resultNodeIds.map((id) => this.edits.getNode(id)));
    const resultSha256s = nodes.map((n, i) => {
      if (!n) throw new StoreError('corrupt', `job ${job.id} lists result ${job.resultNodeIds[i]}, which is not stored`);
      return n.resultImageSha256;
    });
    return { editIds: [...job.resultNodeIds], resultSha256s };
  }
}
