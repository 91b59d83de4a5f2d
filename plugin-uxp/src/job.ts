/**
 * Following a job by polling jobs.get (UXP has no EventSource): queued -> running (progress, previews) ->
 * succeeded | failed | cancelled. `nextView` is the pure state step; `watchJob` is the loop around it.
 */
import { type JobResult, type JobSnapshot } from '../../shared/protocol';
import { ApiError, type LayerloopApi } from './api';

export type JobView =
  | { phase: 'queued'; jobId: string; position: number; cancelRequested: boolean }
  | {
      phase: 'running';
      jobId: string;
      /** 1-based over all variations; 0 before the first step */
      step: number;
      totalSteps: number;
      /** a data:image/png URL, kept until a newer one arrives */
      preview: string | null;
      previewStep: number | null;
      cancelRequested: boolean;
    }
  | { phase: 'succeeded'; jobId: string; result: JobResult; preview: string | null }
  | { phase: 'failed'; jobId: string; message: string }
  | { phase: 'cancelled'; jobId: string };

export type TerminalJobView = Extract<JobView, { phase: 'succeeded' | 'failed' | 'cancelled' }>;

export function isTerminalView(view: JobView): view is TerminalJobView {
  return view.phase === 'succeeded' || view.phase === 'failed' || view.phase === 'cancelled';
}

function previewOf(view: JobView | null): { preview: string | null; previewStep: number | null } {
  if (view && view.phase === 'running') return { preview: view.preview, previewStep: view.previewStep };
  return { preview: null, previewStep: null };
}

/** The view after a snapshot. A snapshot without a preview (not newer than previewAfterStep) keeps the last one. */
export function nextView(prev: JobView | null, snap: JobSnapshot): JobView {
  const kept = previewOf(prev);
  const fresh = snap.previewDataUrl !== null && snap.previewStep !== null;
  const preview = fresh ? snap.previewDataUrl : kept.preview;
  const previewStep = fresh ? snap.previewStep : kept.previewStep;
  switch (snap.state) {
    case 'queued':
      return { phase: 'queued', jobId: snap.jobId, position: snap.position ?? 0, cancelRequested: snap.cancelRequested };
    case 'running':
      return {
        phase: 'running',
        jobId: snap.jobId,
        step: snap.progress?.step ?? 0,
        totalSteps: snap.progress?.totalSteps ?? 0,
        preview,
        previewStep,
        cancelRequested: snap.cancelRequested,
      };
    case 'succeeded':
      if (!snap.result || snap.result.resultSha256s.length === 0 || snap.result.editIds.length !== snap.result.resultSha256s.length) {
        return { phase: 'failed', jobId: snap.jobId, message: 'The server reported success but sent no usable result: try again.' };
      }
      return { phase: 'succeeded', jobId: snap.jobId, result: snap.result, preview };
    case 'failed':
      return { phase: 'failed', jobId: snap.jobId, message: snap.error || 'The edit failed on the server (no reason given).' };
    case 'cancelled':
      return { phase: 'cancelled', jobId: snap.jobId };
  }
}

export interface WatchOptions {
  /** between polls (the server keeps snapshots small enough for 500 ms) */
  intervalMs: number;
  sleep: (ms: number) => Promise<void>;
  onView: (view: JobView) => void;
  /** consecutive failed polls before giving up */
  maxFailures?: number;
}

export interface JobWatch {
  readonly jobId: string;
  /** settles with the terminal view; never rejects */
  readonly done: Promise<TerminalJobView>;
  /** asks the server to cancel (once); the watch goes on until the job reports 'cancelled' (or finished first) */
  cancel(): Promise<void>;
  readonly cancelRequested: boolean;
}

export function watchJob(api: LayerloopApi, jobId: string, options: WatchOptions): JobWatch {
  const maxFailures = options.maxFailures ?? 5;
  let cancelRequested = false;
  let cancelCall: Promise<void> | null = null;

  async function loop(): Promise<TerminalJobView> {
    let view: JobView | null = null;
    let failures = 0;
    for (;;) {
      let snap: JobSnapshot;
      try {
        const after = view ? previewOf(view).previewStep : null;
        snap = await api.getJob(jobId, after ?? undefined);
        failures = 0;
      } catch (err) {
        if (err instanceof ApiError && err.code === 'NOT_FOUND') {
          return emit({ phase: 'failed', jobId, message: `The server no longer knows this edit (${err.message}): it may have restarted. Apply again.` });
        }
        failures++;
        if (failures >= maxFailures) {
          const why = err instanceof Error ? err.message : String(err);
          return emit({
            phase: 'failed',
            jobId,
            message: `Lost contact with the server while the edit was running (${why}). If it finishes, it appears in the history list.`,
          });
        }
        await options.sleep(options.intervalMs * 2 ** failures);
        continue;
      }
      view = nextView(view, snap);
      if (isTerminalView(view)) return emit(view);
      options.onView(view);
      await options.sleep(options.intervalMs);
    }
  }

  function emit(view: TerminalJobView): TerminalJobView {
    options.onView(view);
    return view;
  }

  const done = loop().catch((err: unknown) => emit({ phase: 'failed', jobId, message: err instanceof Error ? err.message : String(err) }));

  return {
    jobId,
    done,
    get cancelRequested() {
      return cancelRequested;
    },
    cancel() {
      cancelRequested = true;
      if (!cancelCall) {
        cancelCall = api.cancelJob(jobId).catch((err: unknown) => {
          cancelCall = null; // let the user try again
          throw err;
        });
      }
      return cancelCall;
    },
  };
}
