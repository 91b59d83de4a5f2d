/**
 * Who asked for each job this process has queued and not yet finished: the user (recorded with the job, and
 * the author of its nodes) and the workspace. edits.create assigns a job before it is enqueued; the job's
 * terminal state releases it. It answers the per-user limit on queued jobs without a store round trip.
 */
export interface JobOwner {
  readonly userId: string;
  readonly workspaceId: string;
}

export interface JobOwnersOptions {
  /**
   * How long a user whose last job just ended still counts as busy (activeUsers). A client continuing a chain
   * sends its next edit a moment after its last one ended; without this, another user alone in that moment may
   * fill the whole queue, and the returning user waits behind all of it. Default 0 (tests that count exactly).
   */
  lingerMs?: number;
  now?: () => number;
}

export class JobOwners {
  private readonly owners = new Map<string, JobOwner>();
  /** users with no job left, and when their last one ended (within lingerMs) */
  private readonly lastEnded = new Map<string, number>();
  private readonly lingerMs: number;
  private readonly now: () => number;

  constructor(options: JobOwnersOptions = {}) {
    this.lingerMs = options.lingerMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  private readonly activeByUser = new Map<string, number>();
  /** jobs still waiting in the queue (not started), per user */
  private readonly queuedByUser = new Map<string, number>();
  private readonly started = new Set<string>();

  assign(jobId: string, owner: JobOwner): void {
    if (this.owners.has(jobId)) return;
    this.owners.set(jobId, owner);
    this.activeByUser.set(owner.userId, (this.activeByUser.get(owner.userId) ?? 0) + 1);
    this.queuedByUser.set(owner.userId, (this.queuedByUser.get(owner.userId) ?? 0) + 1);
  }

  /** The job left the queue for the engine. Idempotent. */
  start(jobId: string): void {
    const owner = this.owners.get(jobId);
    if (!owner || this.started.has(jobId)) return;
    this.started.add(jobId);
    decrement(this.queuedByUser, owner.userId);
  }

  get(jobId: string): JobOwner | null {
    return this.owners.get(jobId) ?? null;
  }

  /** The job finished, was withdrawn, or never got in. Idempotent. */
  release(jobId: string): void {
    const owner = this.owners.get(jobId);
    if (!owner) return;
    this.owners.delete(jobId);
    decrement(this.activeByUser, owner.userId);
    if (!this.activeByUser.has(owner.userId) && this.lingerMs > 0) this.lastEnded.set(owner.userId, this.now());
    if (!this.started.delete(jobId)) decrement(this.queuedByUser, owner.userId);
  }

  /** Jobs of this user queued or running now. */
  active(userId: string): number {
    return this.activeByUser.get(userId) ?? 0;
  }

  /** Jobs of this user waiting in the queue (not started yet). */
  queued(userId: string): number {
    return this.queuedByUser.get(userId) ?? 0;
  }

  /** Users with jobs queued or running, and those whose last job ended within lingerMs. */
  activeUsers(): string[] {
    const now = this.now();
    for (const [userId, endedAt] of this.lastEnded) {
      if (this.activeByUser.has(userId) || now - endedAt > this.lingerMs) this.lastEnded.delete(userId);
    }
    return [...this.activeByUser.keys(), ...this.lastEnded.keys()];
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}

/**
 * How many of a user's jobs may wait in the queue (not yet started): alone, the whole queue, as without users;
 * while other users have work (queued, running, or waiting to get in), one. The queue then holds one job per
 * busy user, its order by document serves each of them once per round (a user's next job enters as its last one
 * starts), and the admission room's turns (users first) decide the rest. A split such as maxQueue / users is not
 * enough: measured, the queue's order by document still gave a one-client user half the share of an
 * eight-client one (bench:server phase users, Jain 0.91 at --max-queue 8).
 */
export function queueShare(maxQueue: number, users: Iterable<string>): number {
  return new Set(users).size > 1 ? 1 : maxQueue;
}
