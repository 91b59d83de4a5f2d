/**
 * Open event streams (jobs.watch) per job and per client. Every stream of a job is written each time the job
 * emits (previews are up to 256 KiB each), so 200 streams on one job made that job 3-5x slower; a client needs one
 * stream per job it follows. A stream past either limit is refused with a message (429) before it starts.
 */
export const MAX_STREAMS_PER_JOB = 16;
export const MAX_STREAMS_PER_CLIENT = 64;

export class TooManyStreamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TooManyStreamsError';
  }
}

export class StreamSlots {
  private readonly byJob = new Map<string, number>();
  private readonly byClient = new Map<string, number>();

  constructor(
    readonly perJob = MAX_STREAMS_PER_JOB,
    readonly perClient = MAX_STREAMS_PER_CLIENT,
  ) {}

  /** Takes a slot for a stream of `jobId` opened by `client` (its address); call the returned function when it ends. */
  acquire(jobId: string, client: string): () => void {
    if ((this.byJob.get(jobId) ?? 0) >= this.perJob) {
      throw new TooManyStreamsError(`job ${jobId} already has ${this.perJob} open event streams: close one, or poll jobs.get instead`);
    }
    if ((this.byClient.get(client) ?? 0) >= this.perClient) {
      throw new TooManyStreamsError(`this client already has ${this.perClient} open event streams: close some (one per job is enough), or poll jobs.get`);
    }
    bump(this.byJob, jobId, 1);
    bump(this.byClient, client, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bump(this.byJob, jobId, -1);
      bump(this.byClient, client, -1);
    };
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
