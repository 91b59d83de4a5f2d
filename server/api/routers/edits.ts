/**
 * edits.create: check an edit request against the store, fill in the seed, queue the job and record it.
 *
 * Everything that can be checked before the job runs is checked here, so a bad request is a 4xx now rather
 * than a failed job later: the document exists, the parent edit belongs to it, every referenced blob is an
 * uploaded image, and every mask has the size of the image it applies to. A region's maskText is turned into
 * a mask here (masks.ts), so the job runs with, and the node records, the derived mask's blob.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { MAX_SEED, createEditResultSchema, editRequestSchema, type EditRequest, type ResolvedEditRegion } from '../../../shared/protocol';
import type { RgbaImage } from '../../imaging/image';
import { maskSizeProblem } from '../../jobs/runner';
import { StoreError } from '../../store';
import { visibleDocument } from '../access';
import { queuedLimitError } from '../limits';
import { blobImage, startImage } from '../start-image';
import { authedProcedure, router } from '../trpc';
import { deriveMask } from './masks';

/** True when no pixel of the mask (its first channel, as the engine reads it) is above 0. */
function maskIsEmpty(mask: RgbaImage): boolean {
  for (let i = 0; i < mask.data.length; i += 4) if (mask.data[i] > 0) return false;
  return true;
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
      const document = await visibleDocument(ctx.services, principal, input.documentId);
      if (!document) {
        throw new TRPCError({ code: 'NOT_FOUND', message: `documentId: no document ${input.documentId}: get one from documents.open` });
      }
      if (input.regions.every((r) => r.instruction === '')) {
        throw new TRPCError({ code: 'BAD_REQUEST', message: 'regions: every instruction is empty: say what to change in at least one region' });
      }
      const image = await startImage(ctx.services, principal, input);
      const { info } = ctx.services.engine;
      if (input.references.length > 0 && !info.readsReferences) {
        throw new TRPCError({ code: 'BAD_REQUEST', message: `references: the ${info.family} model ${info.name} reads no reference images: send the edit without references` });
      }
      // each reference must be an image this workspace may read (foreign and unknown answer alike)
      for (const [i, sha256] of input.references.entries()) await blobImage(ctx.services, principal, sha256, `references[${i}]`);
      for (const [i, region] of input.regions.entries()) {
        if (region.maskSha256 == null) continue;
        const field = `regions[${i}].maskSha256`;
        const mask = await blobImage(ctx.services, principal, region.maskSha256, field);
        const problem = maskSizeProblem(mask, image);
        if (problem) throw new TRPCError({ code: 'BAD_REQUEST', message: `${field}: ${problem}` });
        if (maskIsEmpty(mask)) {
          throw new TRPCError({
            code: 'BAD_REQUEST',
            message: `${field}: the mask is empty (all black): paint the area to edit white, or send maskSha256: null to edit the whole image`,
          });
        }
      }

      // masks from words: derived now (a phrase that names nothing is a 400 here, never a whole-image edit),
      // stored as blobs, and queued as ordinary masks with their words beside them
      const regions: ResolvedEditRegion[] = [];
      for (const [i, region] of input.regions.entries()) {
        if (region.maskText === undefined) {
          regions.push({ instruction: region.instruction, maskSha256: region.maskSha256 ?? null });
          continue;
        }
        const derived = await deriveMask(ctx.services, { workspaceId: document.workspaceId, userId: principal.user.id }, image, region.maskText, `regions[${i}].maskText`);
        regions.push({ instruction: region.instruction, maskSha256: derived.maskSha256, maskText: region.maskText });
      }

      // the stored request is complete: the seed and the sampler the edit runs with, whether sent or the defaults
      const seed = input.options.seed ?? randomInt(0, MAX_SEED);
      const sampler = input.options.sampler ?? ctx.services.engine.info.defaultSampler;
      const request: EditRequest = { ...input, regions, options: { ...input.options, seed, sampler } };
      // Queue first: the runner posts the edit to the engine on a microtask, and the queue's state recorder
      // writes the job's row a macrotask later, while the engine works. The client gets the job id only once
      // that row is durable. When the queue is full the request waits its turn in the admission room (round-robin
      // over documents); a wait too long, or a closing queue, throws here, before anything is recorded.
      const userId = principal.user.id;
      if (owners.active(userId) >= config.maxQueuedPerUser) throw queuedLimitError(config.maxQueuedPerUser);
      const jobId = randomUUID();
      const owner = { userId, workspaceId: document.workspaceId };
      const { position, recorded } = await admission.enter(
        input.documentId,
        () => {
          owners.assign(jobId, owner); // before enqueue: the job's first state is recorded with its user
          try {
            return queue.enqueue(input.documentId, request, { jobId });
          } catch (err) {
            owners.release(jobId);
            throw err;
          }
        },
        signal,
        userId,
      );
      try {
        await recorded;
      } catch (err) {
        // never acknowledged: the job is undone (not counted as a job), the answer says why
        queue.withdraw(jobId);
        owners.release(jobId);
        if (err instanceof StoreError && (err.code === 'full' || err.code === 'unavailable')) {
          throw new StoreError(err.code, `the edit was not queued: ${err.message}. Submit it again once that is fixed (the server's health says when)`, { cause: err.cause });
        }
        throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `the server could not record the edit, so it was not queued: try again`, cause: err });
      }
      ctx.log.info('edit queued', { jobId, documentId: input.documentId, position, seed });
      ctx.services.metrics.countEdit(document.workspaceId);
      return { jobId, documentId: input.documentId, position, seed };
    }),
});
