/**
 * Cross-request batching at step granularity (continuous batching): several edits sampling at once on one
 * worker share the network's calls. Each edit keeps its own loop (sample.ts); while it samples it is a member
 * (join at its first step, leave after its last), and every network call it makes goes through `call`. When
 * every member has a call waiting, or at the next turn of the event loop if a member is busy elsewhere (a VAE
 * preview, text encoding of a newcomer), the waiting calls are grouped by key (calls with the same key can be
 * concatenated on the batch axis) and each group runs as one batched call; its outputs are split back.
 *
 * - A lone member's call runs at once: no timer, no wait.
 * - At most `maxCalls` calls share one run; a bigger group runs as several, in arrival order.
 * - If a shared run fails, its calls are retried one by one, so an error reaches only the call that causes it.
 *
 * What a key must capture for the batched run to equal the separate ones is the runner's business (the
 * pix2pix sessions: per-element tensor shapes, and the timestep where the export takes one for the batch).
 */

/** Runs calls that share a key as one: one output per input, in order. */
export type BatchRunner<In, Out> = (inputs: readonly In[]) => Promise<Out[]>;

/** An edit's membership while it samples; `leave` is idempotent. */
export interface BatchLane {
  leave(): void;
}

interface Waiting<In, Out> {
  key: string;
  input: In;
  resolve: (out: Out) => void;
  reject: (err: Error) => void;
}

export class StepBatcher<In, Out> {
  private members = 0;
  private waiting: Waiting<In, Out>[] = [];
  private running = false;
  private turnScheduled = false;

  constructor(
    private readonly runner: BatchRunner<In, Out>,
    /** most calls in one run (the `--batch` setting) */
    readonly maxCalls: number,
  ) {
    if (!Number.isInteger(maxCalls) || maxCalls < 1) throw new RangeError(`maxCalls must be an integer >= 1, got ${maxCalls}`);
  }

  /** Calls that would run together now (for tests and metrics). */
  get waitingCalls(): number {
    return this.waiting.length;
  }

  get memberCount(): number {
    return this.members;
  }

  join(): BatchLane {
    this.members++;
    let left = false;
    return {
      leave: () => {
        if (left) return;
        left = true;
        this.members--;
        this.poke(); // the others may now all be waiting
      },
    };
  }

  call(key: string, input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.waiting.push({ key, input, resolve, reject });
      this.poke();
    });
  }

  /** Run now if every member is waiting; else at the next turn of the event loop at the latest. */
  private poke(): void {
    if (this.running || this.waiting.length === 0) return;
    if (this.waiting.length >= this.members) {
      void this.drain();
      return;
    }
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      if (!this.running && this.waiting.length > 0) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    const taken = this.waiting;
    this.waiting = [];
    try {
      for (const group of groupCalls(taken, (w) => w.key, this.maxCalls)) await this.runGroup(group);
    } finally {
      this.running = false;
      this.poke(); // calls that arrived meanwhile
    }
  }

  private async runGroup(group: Waiting<In, Out>[]): Promise<void> {
    let outs: Out[];
    try {
      outs = await this.runner(group.map((w) => w.input));
    } catch (err) {
      if (group.length === 1) return group[0].reject(asError(err));
      for (const w of group) await this.runGroup([w]); // find the call that fails; the rest get their results
      return;
    }
    if (outs.length !== group.length) {
      const err = new Error(`the batched run returned ${outs.length} outputs for ${group.length} calls`);
      return group.forEach((w) => w.reject(err));
    }
    group.forEach((w, k) => w.resolve(outs[k]));
  }
}

/**
 * Items grouped by key, keys in order of first arrival and items in arrival order within a key, each group cut
 * into runs of at most `max`.
 */
export function groupCalls<T>(items: readonly T[], key: (item: T) => string, max: number): T[][] {
  const byKey = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = byKey.get(k);
    if (list) list.push(item);
    else byKey.set(k, [item]);
  }
  const groups: T[][] = [];
  for (const list of byKey.values()) {
    for (let i = 0; i < list.length; i += max) groups.push(list.slice(i, i + max));
  }
  return groups;
}

/** Parts stacked on the batch axis (the leading one): the one part itself when there is only one. */
export function concatBatch(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A batched output [sum(rows), ...] split back into parts of `rows[k]` elements of `rowSize` values each. */
export function splitBatch(out: Float32Array, rows: readonly number[], rowSize: number): Float32Array[] {
  const total = rows.reduce((n, r) => n + r, 0);
  if (out.length !== total * rowSize) {
    throw new RangeError(`the batched output has ${out.length} values, expected ${total} rows x ${rowSize}`);
  }
  if (rows.length === 1) return [out];
  const parts: Float32Array[] = [];
  let at = 0;
  for (const r of rows) {
    parts.push(out.slice(at, at + r * rowSize));
    at += r * rowSize;
  }
  return parts;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
