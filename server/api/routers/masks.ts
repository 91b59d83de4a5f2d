/**
 * Masks from words (iEdit's localisation): a region's maskText becomes a soft mask from the server's segmenter.
 *
 * The mask is the segmenter's region (probability at least one half, server/engine/segmenter.ts regionMask).
 * `deriveMask` is the one place that does it, for edits.create and for masks.preview, so what the preview shows
 * is the mask the edit gets (same image, same segmenter, same stored blob: content addressed). A phrase that
 * names nothing the segmenter can find is a 400, never an edit of the whole image.
 */
import { TRPCError } from '@trpc/server';
import { maskPreviewInputSchema, maskPreviewResultSchema, type MaskPreviewResult } from '../../../shared/protocol';
import { SegmenterInputError, maskCoverage, maskIsEmpty } from '../../engine/segmenter';
import { maskToImage, type RgbaImage } from '../../imaging/image';
import type { Services } from '../trpc';
import { authedProcedure, router } from '../trpc';
import { planStartImage } from '../../jobs/plan';
import { asHttpError, callerOf } from '../access';

/**
 * The mask `maskText` names in `image`, stored as a blob the owner's workspace may read (so the preview can be
 * downloaded); BAD_REQUEST (with `field`) when the words name nothing.
 */
export async function deriveMask(
  { segmenter, images, store }: Services,
  owner: { workspaceId: string; userId: string },
  image: RgbaImage,
  maskText: string,
  field: string,
): Promise<MaskPreviewResult> {
  let mask: Float32Array;
  try {
    mask = await segmenter.region(image, maskText);
  } catch (err) {
    if (err instanceof SegmenterInputError) throw new TRPCError({ code: 'BAD_REQUEST', message: `${field}: ${err.message}` });
    throw err;
  }
  if (maskIsEmpty(mask)) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `${field}: "${maskText}" matches nothing in this image (the mask came out empty): name something the image shows, or draw a mask`,
    });
  }
  const stored = await images.put(maskToImage(mask, image.width, image.height));
  await store.edits.accounts.grantBlob({ workspaceId: owner.workspaceId, sha256: stored.sha256, size: stored.size, userId: owner.userId });
  return { maskSha256: stored.sha256, width: image.width, height: image.height, coverage: maskCoverage(mask), segmenter: segmenter.info.name };
}

export const masksRouter = router({
  /** The mask an edit with this maskText would get on this image ("what will change"), before Apply. */
  preview: authedProcedure
    .input(maskPreviewInputSchema)
    .output(maskPreviewResultSchema)
    .mutation(async ({ ctx, input }) => {
      const { store, images } = ctx.services;
      const { document, image } = await asHttpError(() => planStartImage({ edits: store.edits, images, caller: callerOf(ctx.services, ctx.principal) }, input));
      return deriveMask(ctx.services, { workspaceId: document.workspaceId, userId: ctx.principal.user.id }, image, input.maskText, 'maskText');
    }),
});
