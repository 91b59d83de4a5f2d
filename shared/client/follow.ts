/**
 * Polling as a stream of JobEvents: what a client following a job by jobs.get (no event stream) has not seen
 * yet, from the previous snapshot and the new one. The events carry the snapshot's lastSeq (at least 1).
 */
import type { JobEvent, JobSnapshot } from '../protocol';

export function snapshotToEvents(prev: JobSnapshot | null, next: JobSnapshot): JobEvent[] {
  const base = { jobId: next.jobId, seq: Math.max(1, next.lastSeq) };
  const events: JobEvent[] = [];
  if (next.state === 'queued') {
    if (next.position !== null && (prev === null || prev.position !== next.position)) events.push({ type: 'queued', ...base, position: next.position });
    return events;
  }
  if ((prev === null || prev.state === 'queued') && next.startedAt !== null) events.push({ type: 'started', ...base });
  if (next.progress && (prev?.progress?.step !== next.progress.step || prev?.progress?.variation !== next.progress.variation)) {
    events.push({ type: 'progress', ...base, ...next.progress });
  }
  if (next.previewDataUrl && next.previewDataUrl.startsWith('data:image/png;base64,')) {
    const progress = next.progress ?? { step: next.previewStep ?? 0, totalSteps: 0, variation: 0 };
    events.push({ type: 'preview', ...base, ...progress, step: next.previewStep ?? progress.step, dataUrl: next.previewDataUrl });
  }
  if (next.state === 'succeeded') {
    if (next.result && next.result.editIds.length > 0 && next.result.editIds.length === next.result.resultSha256s.length) events.push({ type: 'succeeded', ...base, ...next.result });
    else events.push({ type: 'failed', ...base, message: 'The server reported success but sent no usable result: try again.' });
  } else if (next.state === 'failed') {
    events.push({ type: 'failed', ...base, message: next.error || 'The edit failed on the server (no reason given).' });
  } else if (next.state === 'cancelled') {
    events.push({ type: 'cancelled', ...base });
  }
  return events;
}
