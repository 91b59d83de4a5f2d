/**
 * One job's event log: numbers events (seq 1, 2, 3, ...), keeps a bounded backlog for resuming clients and
 * streams to live subscribers. Typed listeners only (no EventEmitter); nothing global.
 *
 * append() only records: subscribers hear of new events on the next turn of the event loop (setImmediate, one
 * delivery for all events appended meanwhile), so whoever appends (the job's progress, on the engine's path) never
 * waits for the fan-out to every open stream (serialising and writing each event, previews included).
 */
import { isTerminalJobEvent, type JobEvent } from '../../shared/protocol';
import { UnknownJobError } from './errors';
import type { JobEvents } from './port';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event before the log stamps it with its job id and seq. */
export type JobEventBody = DistributiveOmit<JobEvent, 'jobId' | 'seq'>;

export const DEFAULT_BACKLOG_SIZE = 200;

export class JobEventLog {
  private readonly backlog: JobEvent[] = [];
  private readonly listeners = new Set<(e: JobEvent) => void>();
  private seq = 0;
  private terminal: JobEvent | null = null;
  /** appended, not yet delivered to the listeners */
  private undelivered: JobEvent[] = [];

  /** `capacity`: how many recent events to keep; the terminal event is the last one, so it is always kept. */
  constructor(
    readonly jobId: string,
    private readonly capacity: number = DEFAULT_BACKLOG_SIZE,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`backlog capacity must be a positive integer, got ${capacity}`);
  }

  /** seq of the latest event (0 before the first) */
  get lastSeq(): number {
    return this.seq;
  }

  /** true once a terminal event (succeeded, failed, cancelled) was appended: nothing follows it */
  get ended(): boolean {
    return this.terminal !== null;
  }

  /** Stamp, keep and deliver an event. Appending after the terminal event is a bug and throws. */
  append(body: JobEventBody): JobEvent {
    if (this.terminal) throw new Error(`job ${this.jobId} already ended with '${this.terminal.type}'; cannot append '${body.type}'`);
    const event = { ...body, jobId: this.jobId, seq: ++this.seq } as JobEvent;
    this.backlog.push(event);
    if (this.backlog.length > this.capacity) this.backlog.shift();
    if (isTerminalJobEvent(event)) this.terminal = event;
    this.undelivered.push(event);
    if (this.undelivered.length === 1) setImmediate(() => this.deliver());
    return event;
  }

  private deliver(): void {
    const events = this.undelivered;
    this.undelivered = [];
    for (const listener of [...this.listeners]) for (const event of events) listener(event);
    if (this.terminal) this.listeners.clear(); // streams end on the terminal event they just received
  }

  /** The retained events with seq > afterSeq (older ones may have been dropped: clients see a gap in seq). */
  since(afterSeq: number): JobEvent[] {
    return this.backlog.filter((e) => e.seq > afterSeq);
  }

  /**
   * Replays the retained events after `afterSeq`, then streams live ones until the terminal event (inclusive)
   * or until `signal` aborts. It subscribes before reading the backlog and skips anything at or below the
   * last seq it yielded, so no event is lost or repeated between replay and live.
   */
  async *stream(afterSeq = 0, signal?: AbortSignal): AsyncGenerator<JobEvent, void, undefined> {
    if (signal?.aborted) return;
    const live: JobEvent[] = [];
    let wake: (() => void) | null = null;
    const listener = (e: JobEvent): void => {
      live.push(e);
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.listeners.add(listener); // listen first ...
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const replay = this.since(afterSeq); // ... then read the backlog, in the same tick
      let last = Math.min(Math.max(0, afterSeq), this.seq);
      for (const e of replay) {
        if (signal?.aborted) return;
        last = e.seq;
        yield e;
        if (isTerminalJobEvent(e)) return;
      }
      for (;;) {
        if (signal?.aborted) return;
        const e = live.shift();
        if (e) {
          if (e.seq <= last) continue; // already replayed
          last = e.seq;
          yield e;
          if (isTerminalJobEvent(e)) return;
          continue;
        }
        if (this.terminal && last >= this.terminal.seq) return; // resumed after the end: nothing more will come
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    } finally {
      this.listeners.delete(listener);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * The in-process JobEvents: one JobEventLog per job, kept until forget(). The in-process queue uses the logs
 * directly (log(), synchronously); the port's methods are for callers that also work with the Redis log.
 */
export class MemoryJobEvents implements JobEvents {
  private readonly logs = new Map<string, JobEventLog>();

  constructor(private readonly capacity: number = DEFAULT_BACKLOG_SIZE) {}

  /** The job's log, made on first use. */
  log(jobId: string): JobEventLog {
    let log = this.logs.get(jobId);
    if (!log) {
      log = new JobEventLog(jobId, this.capacity);
      this.logs.set(jobId, log);
    }
    return log;
  }

  /** The job's log if it has one. */
  find(jobId: string): JobEventLog | null {
    return this.logs.get(jobId) ?? null;
  }

  forget(jobId: string): void {
    this.logs.delete(jobId);
  }

  async append(jobId: string, body: JobEventBody): Promise<JobEvent> {
    return this.log(jobId).append(body);
  }

  async read(jobId: string, afterSeq = 0, signal?: AbortSignal): Promise<AsyncIterable<JobEvent>> {
    const log = this.logs.get(jobId);
    if (!log) throw new UnknownJobError(jobId);
    return log.stream(afterSeq, signal);
  }

  async lastSeq(jobId: string): Promise<number> {
    return this.logs.get(jobId)?.lastSeq ?? 0;
  }
}
