/**
 * edits.create: resolve an edit request into its plan (jobs/plan.ts), queue it, and answer once it is recorded.
 *
 * Everything that can be checked before the job runs is checked by the plan, so a bad request is a 4xx now
 * rather than a failed job later: the document is the caller's to see, the parent edit belongs to it, every
 * referenced blob is an image the caller's workspace may read, every mask has the size of the image it applies
 * to, and a region's maskText becomes a stored mask (masks.ts), so the job runs with the derived mask's blob.
 */
import { randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { createEditResultSchema, editRequestSchema, type EditRequest } from '../../../shared/protocol';
import { prepareEditPlan, type EditPlan } from '../../jobs/plan';
import { StoreError, type Principal } from '../../store';
import { asHttpError, callerOf } from '../access';
import { queuedLimitError, quotaError } from '../limits';
import type { Services } from '../trpc';
import { authedProcedure, router } from '../trpc';
import { deriveMask } from './masks';

/** The request's plan as the caller may make it, or the 4xx that says what to fix. */
function plan(services: Services, principal: Principal, input: EditRequest): Promise<EditPlan> {
  const { store, images, engine } = services;
  return asHttpError(() =>
    prepareEditPlan(
      {
        edits: store.edits,
        images,
        defaultSampler: engine.info.defaultSampler,
        model: engine.info,
        caller: callerOf(services, principal),
        maskFromWords: async (image, maskText, field, owner) => (await deriveMask(services, owner, image, maskText, field)).maskSha256,
      },
      input,
    ),
  );
}

/**
 * An edit stores results and latents that count toward its user's bytes (the store grants them to the author):
 * a user at or over --max-stored-mib-per-user gets the upload's 507 here, before anything is queued. An edit
 * accepted just under the quota may still take the user past it; the next one is refused.
 */
async function checkStorageQuota(services: Services, userId: string): Promise<void> {
  const limit = services.config.maxStoredBytesPerUser;
  if (limit === null) return;
  const stored = await services.store.edits.accounts.storedBytes(userId);
  if (stored >= limit) throw quotaError(stored, null, limit);
}

export const editsRouter = router({
  /**
   * Queue an edit. Returns at once with the job id (follow it with jobs.watch or jobs.get) and the seed it runs
   * with: the request's, or one the server picked and recorded, so the stored request reproduces the result.
   */
  create: authedProcedure
    .input(editRequestSchema)
    .output(createEditResultSchema)
    .mutation(async ({ ctx, input, signal }) => {
      const { queue, admission, owners, config } = ctx.services;
      const { principal } = ctx;
      const edit = await plan(ctx.services, principal, input);
      const { seed } = edit.request.options;
      const { userId, workspaceId } = edit.owner;
      if (owners.active(userId) >= config.maxQueuedPerUser) throw queuedLimitError(config.maxQueuedPerUser);
      await checkStorageQuota(ctx.services, userId);
      // The queue answers once the job is recorded (the client may then rely on its id). When the queue is full
      // the request waits its turn in the admission room (round-robin over users, then documents); a wait too
      // long, or a closing queue, throws here, before anything is recorded.
      const jobId = randomUUID();
      let queued: { jobId: string; position: number };
      try {
        queued = await admission.enter(
          input.documentId,
          () => {
            owners.assign(jobId, edit.owner); // before enqueue: the per-user counts see the job from its start
            return queue.enqueue(edit, { jobId });
          },
          signal,
          userId,
        );
      } catch (err) {
        owners.release(jobId);
        if (err instanceof StoreError && (err.code === 'full' || err.code === 'unavailable')) {
          throw new StoreError(err.code, `the edit was not queued: ${err.message}. Submit it again once that is fixed (the server's health says when)`, { cause: err.cause });
        }
        if (err instanceof StoreError) {
          throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `the server could not record the edit, so it was not queued: try again`, cause: err });
        }
        throw err;
      }
      const { position } = queued;
      ctx.log.info('edit queued', { jobId, documentId: input.documentId, position, seed });
      ctx.services.metrics.countEdit(workspaceId);
      return { jobId, documentId: input.documentId, position, seed };
    }),
});
