/**
 * Who asked for each job this process has queued and not yet finished: the user (recorded with the job, and
 * the author of its nodes) and the workspace. edits.create assigns a job before it is enqueued; the job's
 * terminal state releases it. It answers the per-user limit on queued jobs without a store round trip.
 */
export interface JobOwner {
  readonly userId: string;
  readonly workspaceId: string;
}

export class JobOwners {
  private readonly owners = new Map<string, JobOwner>();
  private readonly activeByUser = new Map<string, number>();

  assign(jobId: string, owner: JobOwner): void {
    if (this.owners.has(jobId)) return;
    this.owners.set(jobId, owner);
    this.activeByUser.set(owner.userId, (this.activeByUser.get(owner.userId) ?? 0) + 1);
  }

  get(jobId: string): JobOwner | null {
    return this.owners.get(jobId) ?? null;
  }

  /** The job finished, was withdrawn, or never got in. Idempotent. */
  release(jobId: string): void {
    const owner = this.owners.get(jobId);
    if (!owner) return;
    this.owners.delete(jobId);
    const left = (this.activeByUser.get(owner.userId) ?? 1) - 1;
    if (left <= 0) this.activeByUser.delete(owner.userId);
    else this.activeByUser.set(owner.userId, left);
  }

  /** Jobs of this user queued or running now. */
  active(userId: string): number {
    return this.activeByUser.get(userId) ?? 0;
  }
}
