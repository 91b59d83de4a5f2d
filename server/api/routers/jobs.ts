/**
 * jobs: follow an edit job by polling (get), streaming (watch, SSE) or stop it (cancel).
 *
 * The queue keeps active and recently finished jobs in memory with their events; older jobs (and jobs from
 * before a restart) are answered from the store: get and cancel still work, watch says to use get.
 */
import { TRPCError, tracked } from '@trpc/server';
import {
  cancelJobInputSchema,
  eventId,
  getJobInputSchema,
  jobSnapshotSchema,
  seqFromEventId,
  watchJobInputSchema,
  type JobEvent,
  type JobSnapshot,
  type WatchJobInput,
} from '../../../shared/protocol';
import { UnknownJobError } from '../../jobs/errors';
import type { JobQueue } from '../../jobs/port';
import type { Job, Principal, Store } from '../../store';
import { jobDocumentId, visibleDocument } from '../access';

import { TooManyStreamsError } from '../stream-slots';
import { type Services, authedProcedure, router } from '../trpc';

function notFound(jobId: string): TRPCError {
  return new TRPCError({ code: 'NOT_FOUND', message: `no job ${jobId}: use the jobId that edits.create returned` });
}

/**
 * Throws NOT_FOUND unless the job exists in one of the principal's workspaces. A job of another workspace gets
 * the same answer as an unknown one, after the same lookups.
 */
async function requireVisibleJob(services: Services, principal: Principal, jobId: string): Promise<void> {
  const documentId = await jobDocumentId(services, jobId);
  if (!(await visibleDocument(services, principal, documentId))) throw notFound(jobId);
}

/** Ends the stream with UNAUTHORIZED once the request's token no longer holds (revoked, its user disabled). */
async function* whileAuthorized<T>(recheck: () => Promise<boolean>, everyMs: number, events: (signal: AbortSignal) => AsyncIterable<T>, outer: AbortSignal | undefined): AsyncGenerator<T> {
  const stop = new AbortController();
  const onOuter = () => stop.abort();
  outer?.addEventListener('abort', onOuter, { once: true });
  let revoked = false;
  const timer = setInterval(() => {
    recheck().then(
      (ok) => {
        if (!ok) {
          revoked = true;
          stop.abort();
        }
      },
      () => {}, // the store failing is not a revocation: the next check decides
    );
  }, everyMs);
  timer.unref();
  try {
    for await (const event of events(stop.signal)) {
      if (revoked) break;
      yield event;
    }
  } finally {
    clearInterval(timer);
    outer?.removeEventListener('abort', onOuter);
  }
  if (revoked) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'the token of this stream was revoked or its user disabled: sign in again with a valid token' });
}

/** A snapshot of a job the queue no longer holds, from its store record. */
async function snapshotFromStore(store: Store, job: Job): Promise<JobSnapshot> {
  let result: JobSnapshot['result'] = null;
  if (job.state === 'succeeded') {
    const nodes = await Promise.all(job.resultNodeIds.map((id) => store.edits.getNode(id)));
    result = { editIds: [...job.resultNodeIds], resultSha256s: nodes.map((n) => n?.resultImageSha256 ?? '').filter((s) => s !== '') };
    if (result.resultSha256s.length !== result.editIds.length) result = null;
  }
  const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));
  return {
    jobId: job.id,
    documentId: job.documentId,
    state: job.state,
    position: null,
    cancelRequested: false,
    progress: null,
    previewStep: null,
    previewDataUrl: null,
    result,
    error: job.error,
    lastSeq: 0,
    enqueuedAt: Date.parse(job.createdAt),
    startedAt: ms(job.startedAt),
    finishedAt: ms(job.finishedAt),
  };
}

/** The job's events: live from the queue, or NOT_FOUND (saying to use jobs.get for a job finished too long ago). */
async function* watchEvents(queue: JobQueue, store: Store, input: WatchJobInput, signal: AbortSignal | undefined) {
  let events: AsyncIterable<JobEvent>;
  try {
    events = await queue.events(input.jobId, seqFromEventId(input.lastEventId), signal);
  } catch (err) {
    if (!(err instanceof UnknownJobError)) throw err;
    const stored = await store.edits.getJob(input.jobId);
    if (!stored) throw notFound(input.jobId);
    throw new TRPCError({
      code: 'NOT_FOUND',
      message: `job ${input.jobId} finished (${stored.state}) too long ago to stream its events: read it with jobs.get`,
    });
  }
  for await (const event of events) yield tracked(eventId(event), event);
}

export const jobsRouter = router({
  /** The job's state, progress, latest preview and result; cheap enough to poll every 500 ms. */
  get: authedProcedure
    .input(getJobInputSchema)
    .output(jobSnapshotSchema)
    .query(async ({ ctx, input }) => {
      const { queue, store } = ctx.services;
      await requireVisibleJob(ctx.services, ctx.principal, input.jobId);
      const live = await queue.get(input.jobId, { previewAfterStep: input.previewAfterStep });
      if (live) return live;
      const stored = await store.edits.getJob(input.jobId);
      if (!stored) throw notFound(input.jobId);
      return snapshotFromStore(store, stored);
    }),

  /**
   * The job's events over SSE: the retained ones first, then live ones, ending with the terminal event.
   * Each is sent with its seq as the SSE id, so a reconnecting client (lastEventId) resumes where it left off.
   */
  watch: authedProcedure.input(watchJobInputSchema).subscription(async function* ({ ctx, input, signal }) {
    const { queue, store, streams, authRecheckMs } = ctx.services;
    await requireVisibleJob(ctx.services, ctx.principal, input.jobId);
    let release: () => void;
    try {
      release = streams.acquire(input.jobId, ctx.clientAddress);
    } catch (err) {
      // thrown inside the stream, past the error-mapping middleware: a TRPCError already (sent as serialized-error)
      if (err instanceof TooManyStreamsError) throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: err.message });
      throw err;
    }
    try {
      yield* whileAuthorized(ctx.recheck, authRecheckMs, (stop) => watchEvents(queue, store, input, stop), signal);
    } finally {
      release();
    }
  }),

  /**
   * Cancel a queued job (it never starts) or a running one (it stops at the next step and ends 'cancelled').
   * `cancelled` is false when the job had already finished; `state` is its state now.
   */
  cancel: authedProcedure.input(cancelJobInputSchema).mutation(async ({ ctx, input }) => {
    const { queue, store } = ctx.services;
    await requireVisibleJob(ctx.services, ctx.principal, input.jobId); // before anything is cancelled
    const cancelled = await queue.cancel(input.jobId);
    const live = await queue.get(input.jobId);
    if (live) return { cancelled, state: live.state, cancelRequested: live.cancelRequested };
    const stored = await store.edits.getJob(input.jobId);
    if (!stored) throw notFound(input.jobId);
    return { cancelled: false, state: stored.state, cancelRequested: false };
  }),
});
