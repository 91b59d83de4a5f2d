/** A JobSnapshot as jobs.get returns it, every field at its "nothing yet" value unless `patch` sets it. */
import type { JobSnapshot } from '../../shared/protocol';

export function jobSnapshot(patch: Partial<JobSnapshot> & Pick<JobSnapshot, 'jobId' | 'documentId'>): JobSnapshot {
  return {
    state: 'queued',
    position: null,
    cancelRequested: false,
    progress: null,
    previewStep: null,
    previewDataUrl: null,
    result: null,
    error: null,
    lastSeq: 1,
    enqueuedAt: 0,
    startedAt: null,
    finishedAt: null,
    ...patch,
  };
}
