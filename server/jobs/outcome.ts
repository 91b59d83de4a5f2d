/**
 * How a run's end becomes the job's final state: one rule for every queue (in-process and Redis worker).
 */
import { MAX_PREVIEW_DATA_URL_LENGTH, type JobResult } from '../../shared/protocol';
import { SHUTDOWN_RUNNING_MESSAGE } from './errors';
import type { Recorded } from './ledger';

export type Outcome = { ok: true; result: JobResult } | { ok: false; error: unknown };

export interface RunEnd {
  outcome: Outcome;
  /** what ctx.commit stored, if it did: a committed job succeeded, whatever happened after */
  committed: JobResult | null;
  /** why the run's signal was aborted, if it was */
  stopped: 'cancel' | 'shutdown' | null;
  /** results only count when committed (the queue records to a store) */
  requireCommit: boolean;
}

/** The final state for a run's end, and a line for the operator's log when the run misbehaved. */
export function finalState({ outcome, committed, stopped, requireCommit }: RunEnd): { ending: Recorded; problem: string | null } {
  if (committed) return { ending: { state: 'succeeded', result: committed }, problem: null };
  if (stopped === 'shutdown') return { ending: { state: 'failed', error: SHUTDOWN_RUNNING_MESSAGE }, problem: null };
  if (stopped === 'cancel') return { ending: { state: 'cancelled' }, problem: null }; // whatever run returned after the abort
  if (!outcome.ok) return { ending: { state: 'failed', error: errorMessage(outcome.error) }, problem: null };
  const malformed = resultProblem(outcome.result);
  if (malformed) return { ending: { state: 'failed', error: `internal error: ${malformed}` }, problem: `run returned a malformed result: ${malformed}` };
  if (requireCommit) {
    return { ending: { state: 'failed', error: 'internal error: the results were not stored; submit the edit again' }, problem: 'run returned without committing its results' };
  }
  return { ending: { state: 'succeeded', result: outcome.result }, problem: null };
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : 'the edit failed';
}

function resultProblem(result: unknown): string | null {
  const r = result as Partial<JobResult> | null | undefined;
  if (!r || !Array.isArray(r.editIds) || !Array.isArray(r.resultSha256s)) return 'expected {editIds: string[], resultSha256s: string[]}';
  if (r.editIds.length !== r.resultSha256s.length) return `${r.editIds.length} edit ids but ${r.resultSha256s.length} result images`;
  return null;
}

/** Null when a preview may be shown to clients (a PNG data URL of bounded size); else why it is dropped. */
export function previewProblem(dataUrl: string): string | null {
  if (dataUrl.length <= MAX_PREVIEW_DATA_URL_LENGTH && dataUrl.startsWith('data:image/png;base64,')) return null;
  return `dropped a preview that is not a PNG data URL of at most ${MAX_PREVIEW_DATA_URL_LENGTH} characters`;
}
