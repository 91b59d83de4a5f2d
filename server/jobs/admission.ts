/**
 * A short, fair waiting room in front of a job queue.
 *
 * The queue is fair to the jobs inside it (round-robin over documents), but at saturation who gets *in* used to
 * be a race: a client that just got its result re-entered within milliseconds, while refused clients slept out
 * their Retry-After and came back to a full queue again (per-client completions differed 13x, one edit waited
 * 252 s to get in). Here a request that finds no room waits instead of being refused, and freed slots are handed
 * out round-robin over users first (the user admitted longest ago first), then over that user's documents (the
 * document admitted longest ago first), FIFO within a document: a user with eight clients gets no more turns than
 * one with a single client. A newcomer never jumps the line: while anyone waits, it waits too. Callers that know
 * no users (one user, the default) get the round-robin over documents alone.
 *
 * The room is short: a request whose expected wait is longer than `maxWaitMs` is refused at once (the caller
 * answers 429 with Retry-After), as is one that has waited that long, one past `maxWaiting`, or one past
 * `maxWaitingPerDocument` for its document.
 *
 * It knows nothing of jobs: `hasRoom(documentId, userId)` says whether the queue takes this job now,
 * `admit()` (passed to enter) puts it in, synchronously, so no other request can take the slot in between;
 * `wake()` must be called whenever room may have freed. A later JobQueue port (or a Redis queue) can sit behind
 * the same three functions.
 */
import { QueueFullError } from './queue';

export interface AdmissionOptions {
  /**
   * whether the queue would take a job of this document (and user) now; the caller may hold a user to its share
   * of the queue, so that the queue's own order (by document) cannot undo the turns taken here
   */
  hasRoom: (documentId: string, userId: string) => boolean;
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

/** Who waits when the caller names no user: everyone is one user, so only documents take turns. */
const NO_USER = '';

interface Waiter {
  readonly userId: string;
  readonly documentId: string;
  readonly admit: () => void;
  readonly refuse: (err: unknown) => void;
  readonly timer: { cancel: () => void };
}

export class AdmissionRoom {
  /** waiting requests per user, then per document, FIFO; only users and documents with someone waiting */
  private readonly waiting = new Map<string, Map<string, Waiter[]>>();
  /** waiting requests per document, over all users (the per-document limit) */
  private readonly waitingPerDocument = new Map<string, number>();
  /** admission counter of each document's latest admitted request */
  private readonly lastAdmitted = new Map<string, number>();
  /** admission counter of each user's latest admitted request */
  private readonly lastAdmittedUser = new Map<string, number>();
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
    for (const count of this.waitingPerDocument.values()) n += count;
    return n;
  }

  /**
   * Runs `admit` (which must enqueue synchronously) as soon as it is this request's turn and the queue has room for
   * its document; resolves with what it returned. Rejects with QueueFullError when the wait would be or has
   * become too long, or the room is full; with whatever `admit` throws; or with `signal`'s reason (the client left).
   */
  enter<T>(documentId: string, admit: () => T, signal?: AbortSignal, userId: string = NO_USER): Promise<T> {
    if (this.size === 0 && this.options.hasRoom(documentId, userId)) {
      try {
        return Promise.resolve(this.run(userId, documentId, admit));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const ahead = this.size;
    const expected = this.options.estimateWaitMs(ahead);
    const mine = this.waitingPerDocument.get(documentId) ?? 0;
    if (mine >= this.options.maxWaitingPerDocument) {
      return Promise.reject(new QueueFullError('document', this.options.maxWaitingPerDocument, this.retrySeconds(expected)));
    }
    if (ahead >= this.options.maxWaiting || (expected ?? 0) > this.options.maxWaitMs) return Promise.reject(this.refusal(expected));
    return new Promise<T>((resolve, reject) => {
      const leave = () => {
        const lines = this.waiting.get(userId);
        const line = lines?.get(documentId);
        const i = line ? line.indexOf(waiter) : -1;
        if (line && i >= 0) {
          line.splice(i, 1);
          const left = (this.waitingPerDocument.get(documentId) ?? 1) - 1;
          if (left > 0) this.waitingPerDocument.set(documentId, left);
          else this.waitingPerDocument.delete(documentId);
        }
        if (line?.length === 0) lines!.delete(documentId);
        if (lines?.size === 0) this.waiting.delete(userId);
        waiter.timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        leave();
        reject(signal?.reason ?? new Error('the client went away'));
      };
      const waiter: Waiter = {
        userId,
        documentId,
        admit: () => {
          leave();
          try {
            resolve(this.run(userId, documentId, admit));
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
      let lines = this.waiting.get(userId);
      if (!lines) this.waiting.set(userId, (lines = new Map()));
      const line = lines.get(documentId);
      if (line) line.push(waiter);
      else lines.set(documentId, [waiter]);
      this.waitingPerDocument.set(documentId, mine + 1);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake(); // room may be there already (only a queue of others' waiters held it back)
    });
  }

  /** Users with a request waiting now. */
  waitingUsers(): IterableIterator<string> {
    return this.waiting.keys();
  }

  /** Hands freed room to the waiters, round-robin over users, then documents. Call it whenever room may have freed. */
  wake(): void {
    for (;;) {
      const next = this.nextAdmissible();
      if (!next) return;
      next.admit();
    }
  }

  /** The first waiter, in round-robin order (users, then their documents), whose document the queue takes now. */
  private nextAdmissible(): Waiter | null {
    const byTurn = (last: Map<string, number>) => (a: string, b: string) => (last.get(a) ?? 0) - (last.get(b) ?? 0);
    for (const userId of [...this.waiting.keys()].sort(byTurn(this.lastAdmittedUser))) {
      const lines = this.waiting.get(userId)!;
      for (const documentId of [...lines.keys()].sort(byTurn(this.lastAdmitted))) {
        if (this.options.hasRoom(documentId, userId)) return lines.get(documentId)![0];
      }
    }
    return null;
  }

  private run<T>(userId: string, documentId: string, admit: () => T): T {
    const turn = ++this.admitted;
    this.lastAdmitted.set(documentId, turn);
    this.lastAdmittedUser.set(userId, turn);
    if (this.lastAdmitted.size > 10_000) this.forgetIdle(this.lastAdmitted, (documentId) => this.waitingPerDocument.has(documentId));
    if (this.lastAdmittedUser.size > 10_000) this.forgetIdle(this.lastAdmittedUser, (id) => this.waiting.has(id));
    return admit();
  }

  /** Documents and users nobody waits for count as new when they come back (keeps the maps bounded). */
  private forgetIdle(last: Map<string, number>, waits: (key: string) => boolean): void {
    for (const key of last.keys()) if (!waits(key)) last.delete(key);
  }

  private refusal(expectedMs: number | null): QueueFullError {
    return new QueueFullError('queue', this.options.queueLength, this.retrySeconds(expectedMs));
  }

  private retrySeconds(expectedMs: number | null): number {
    return Math.max(1, Math.ceil((expectedMs ?? this.options.maxWaitMs) / 1000));
  }
}
