/**
 * The order waiting jobs start in, the same on both queues (DESIGN 8: round-robin across users, then documents,
 * at dispatch): the in-process JobQueue uses this function, the Redis queue's PLAN script (redis/scripts.ts)
 * computes the same order in Lua, and the queue contract (test/unit/jobs/contract.ts) holds both to it.
 *
 * - Users take turns: the user served least recently first (one never served, or idle since, counts as 0), ties
 *   broken by the user's oldest waiting job. Each round gives every waiting user one job.
 * - A user's jobs take turns over its documents by the same rule (document served least recently first), FIFO
 *   within a document.
 * So a user with eight documents, or eight clients, gets no more turns than one with a single document.
 */
export interface WaitingJob {
  readonly userId: string;
  readonly documentId: string;
  /** arrival order (smaller: earlier) */
  readonly order: number;
}

/**
 * `lastUser` / `lastDocument`: the serve counter of each one's latest started job (0 when none is remembered).
 * Returns the jobs in the order they will start if nothing else arrives.
 */
export function fairOrder<J extends WaitingJob>(jobs: readonly J[], lastUser: (userId: string) => number, lastDocument: (documentId: string) => number): J[] {
  const byUser = new Map<string, Map<string, J[]>>();
  for (const job of [...jobs].sort((a, b) => a.order - b.order)) {
    let docs = byUser.get(job.userId);
    if (!docs) byUser.set(job.userId, (docs = new Map()));
    const line = docs.get(job.documentId);
    if (line) line.push(job);
    else docs.set(job.documentId, [job]);
  }
  const oldest = (lines: J[][]) => Math.min(...lines.map((line) => line[0].order));
  const users = [...byUser.entries()].map(([userId, docs]) => ({ userId, lines: [...docs.values()] }));
  users.sort((a, b) => lastUser(a.userId) - lastUser(b.userId) || oldest(a.lines) - oldest(b.lines));
  const byDocumentTurn = (a: J[], b: J[]) => lastDocument(a[0].documentId) - lastDocument(b[0].documentId) || a[0].order - b[0].order;
  return roundRobin(users.map(({ lines }) => roundRobin(lines.sort(byDocumentTurn))));
}

/** One from each list per round, in the lists' order, until all are used up. */
function roundRobin<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let round = 0; round < longest; round++) for (const list of lists) if (round < list.length) out.push(list[round]);
  return out;
}
