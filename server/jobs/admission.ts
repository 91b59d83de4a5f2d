/**
 * A short, fair waiting room in front of a job queue.
 *
 * The queue is fair to the jobs inside it (round-robin over documents), but at saturation who gets *in* used to
 * be a race: a client that just got its result re-entered within milliseconds, while refused clients slept out
 * their Retry-After and came back to a full queue again (per-client completions differed 13x, one edit waited
 * 252 s to get in). Here a request that finds no room waits instead of being refused, and freed slots are handed
 * out round-robin over documents (the document admitted longest ago first, FIFO within a document). A newcomer
 * never jumps the line: while anyone waits, it waits too.
 *
 * The room is short: a request whose expected wait is longer than `maxWaitMs` is refused at once (the caller
 * answers 429 with Retry-After), as is one that has waited that long, one past `maxWaiting`, or one past
 * `maxWaitingPerDocument` for its document.
 *
 * It knows nothing of jobs: `hasRoom(documentId)` says whether the queue takes this document's job now,
 * `admit()` (passed to enter) puts it in, synchronously, so no other request can take the slot in between;
 * `wake()` must be called whenever room may have freed. A later JobQueue port (or a Redis queue) can sit behind
 * the same three functions.
 */
import { QueueFullError } from './queue';

export interface AdmissionOptions {
  /** whether the queue would take a job of this document now */
  hasRoom: (documentId: string) => boolean;
  /**
   * expected ms until a request with `ahead` requests in front of it gets in (when the queue is full); null
   * while nothing is known (no job finished yet): then the request waits and sees
   */
  estimateWaitMs: (ahead: number) => number | null;
  /** the queue's size, for the refusal's message */
  queueLength: number;
  /** longest wait in the room before a 429 (also: longer expected waits are refused at once) */
  maxWaitMs: number;
  maxWaiting: number;
  maxWaitingPerDocument: number;
  setTimer?: (fn: () => void, ms: number) => { cancel: () => void };
}

interface Waiter {
  readonly documentId: string;
  readonly admit: () => void;
  readonly refuse: (err: unknown) => void;
  readonly timer: { cancel: () => void };
}

export class AdmissionRoom {
  /** waiting requests per document, FIFO; only documents with someone waiting */
  private readonly waiting = new Map<string, Waiter[]>();
  /** admission counter of each document's latest admitted request */
  private readonly lastAdmitted = new Map<string, number>();
  private admitted = 0;
  private readonly setTimer: NonNullable<AdmissionOptions['setTimer']>;

  constructor(private readonly options: AdmissionOptions) {
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  /** Requests waiting now. */
  get size(): number {
    let n = 0;
    for (const line of this.waiting.values()) n += line.length;
    return n;
  }

  /**
   * Runs `admit` (which must enqueue synchronously) as soon as it is this request's turn and the queue has room for
   * its document; resolves with what it returned. Rejects with QueueFullError when the wait would be or has
   * become too long, or the room is full; with whatever `admit` throws; or with `signal`'s reason (the client left).
   */
  enter<T>(documentId: string, admit: () => T, signal?: AbortSignal): Promise<T> {
    if (this.size === 0 && this.options.hasRoom(documentId)) {
      try {
        return Promise.resolve(this.run(documentId, admit));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const ahead = this.size;
    const expected = this.options.estimateWaitMs(ahead);
    const mine = this.waiting.get(documentId)?.length ?? 0;
    if (mine >= this.options.maxWaitingPerDocument) {
      return Promise.reject(new QueueFullError('document', this.options.maxWaitingPerDocument, this.retrySeconds(expected)));
    }
    if (ahead >= this.options.maxWaiting || (expected ?? 0) > this.options.maxWaitMs) return Promise.reject(this.refusal(expected));
    return new Promise<T>((resolve, reject) => {
      const leave = () => {
        const line = this.waiting.get(documentId);
        const i = line ? line.indexOf(waiter) : -1;
        if (line && i >= 0) line.splice(i, 1);
        if (line?.length === 0) this.waiting.delete(documentId);
        waiter.timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        leave();
        reject(signal?.reason ?? new Error('the client went away'));
      };
      const waiter: Waiter = {
        documentId,
        admit: () => {
          leave();
          try {
            resolve(this.run(documentId, admit));
          } catch (err) {
            reject(err);
          }
        },
        refuse: (err) => {
          leave();
          reject(err);
        },
        timer: this.setTimer(() => waiter.refuse(this.refusal(this.options.estimateWaitMs(this.size))), this.options.maxWaitMs),
      };
      const line = this.waiting.get(documentId);
      if (line) line.push(waiter);
      else this.waiting.set(documentId, [waiter]);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake(); // room may be there already (only a queue of others' waiters held it back)
    });
  }

  /** Hands freed room to the waiters, round-robin over documents. Call it whenever room may have freed. */
  wake(): void {
    for (;;) {
      const next = this.nextAdmissible();
      if (!next) return;
      next.admit();
    }
  }

  /** The first waiter, in round-robin order, whose document the queue takes now. */
  private nextAdmissible(): Waiter | null {
    const order = [...this.waiting.keys()].sort((a, b) => (this.lastAdmitted.get(a) ?? 0) - (this.lastAdmitted.get(b) ?? 0));
    for (const documentId of order) {
      if (this.options.hasRoom(documentId)) return this.waiting.get(documentId)![0];
    }
    return null;
  }

  private run<T>(documentId: string, admit: () => T): T {
    this.lastAdmitted.set(documentId, ++this.admitted);
    if (this.lastAdmitted.size > 10_000) this.forgetIdleDocuments();
    return admit();
  }

  /** Documents nobody waits for count as new when they come back (keeps the map bounded). */
  private forgetIdleDocuments(): void {
    for (const documentId of this.lastAdmitted.keys()) if (!this.waiting.has(documentId)) this.lastAdmitted.delete(documentId);
  }

  private refusal(expectedMs: number | null): QueueFullError {
    return new QueueFullError('queue', this.options.queueLength, this.retrySeconds(expectedMs));
  }

  private retrySeconds(expectedMs: number | null): number {
    return Math.max(1, Math.ceil((expectedMs ?? this.options.maxWaitMs) / 1000));
  }
}
