/**
 * edits.create: resolve an edit request into its plan (jobs/plan.ts), queue it, and answer once it is recorded.
 *
 * Everything that can be checked before the job runs is checked by the plan, so a bad request is a 4xx now
 * rather than a failed job later: the document exists, the parent edit belongs to it, every referenced blob is
 * an uploaded image, and every mask has the size of the image it applies to.
 */
import { TRPCError } from '@trpc/server';
import { createEditResultSchema, editRequestSchema } from '../../../shared/protocol';
import { PlanError, prepareEditPlan, type EditPlan } from '../../jobs/plan';
import { StoreError } from '../../store';
import type { Services } from '../trpc';
import { authedProcedure, router } from '../trpc';

/** The request's plan, or the 4xx that says what to fix. */
async function plan({ store, images, engine }: Services, input: Parameters<typeof prepareEditPlan>[1]): Promise<EditPlan> {
  try {
    return await prepareEditPlan({ edits: store.edits, images, defaultSampler: engine.info.defaultSampler }, input);
  } catch (err) {
    if (err instanceof PlanError) throw new TRPCError({ code: err.code === 'not_found' ? 'NOT_FOUND' : 'BAD_REQUEST', message: err.message });
    throw err;
  }
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
      const { queue, admission } = ctx.services;
      const edit = await plan(ctx.services, input);
      const { seed } = edit.request.options;
      // The queue answers once the job is recorded (the client may then rely on its id). When the queue is full
      // the request waits its turn in the admission room (round-robin over documents); a wait too long, or a
      // closing queue, throws here, before anything is recorded.
      let queued: { jobId: string; position: number };
      try {
        queued = await admission.enter(input.documentId, () => queue.enqueue(edit), signal);
      } catch (err) {
        if (err instanceof StoreError && (err.code === 'full' || err.code === 'unavailable')) {
          throw new StoreError(err.code, `the edit was not queued: ${err.message}. Submit it again once that is fixed (the server's health says when)`, { cause: err.cause });
        }
        if (err instanceof StoreError) {
          throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `the server could not record the edit, so it was not queued: try again`, cause: err });
        }
        throw err;
      }
      const { jobId, position } = queued;
      ctx.log.info('edit queued', { jobId, documentId: input.documentId, position, seed });
      return { jobId, documentId: input.documentId, position, seed };
    }),
});
