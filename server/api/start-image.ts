/**
 * The pixels a request refers to, looked up for the checks made before a job is queued (edits.create) and for
 * masks.preview: NOT_FOUND / BAD_REQUEST with the field to fix.
 */
import { TRPCError } from '@trpc/server';
import type { EditRequest } from '../../shared/protocol';
import type { RgbaImage } from '../imaging/image';
import { NotAnImageError, type ImageBlobs } from '../imaging/image-blobs';
import type { Services } from './trpc';

/** An uploaded image's pixels; NOT_FOUND when absent, BAD_REQUEST when the blob is not an image. */
export async function blobImage(images: ImageBlobs, sha256: string, field: string): Promise<RgbaImage> {
  let image: RgbaImage | null;
  try {
    image = await images.get(sha256);
  } catch (err) {
    if (!(err instanceof NotAnImageError)) throw err;
    throw new TRPCError({ code: 'BAD_REQUEST', message: `${field}: blob ${sha256} is not an image: pass the sha256 that PUT /v1/blobs returned for an image` });
  }
  if (!image) throw new TRPCError({ code: 'NOT_FOUND', message: `${field}: no blob ${sha256} on this server: upload the image with PUT /v1/blobs first` });
  return image;
}

/** The image the edit applies to (the uploaded source, the painted layer, or the parent's result). */
export async function startImage({ store, images }: Services, request: Pick<EditRequest, 'documentId' | 'parent'>): Promise<RgbaImage> {
  const { parent, documentId } = request;
  if (parent.kind === 'source') return blobImage(images, parent.imageSha256, 'parent.imageSha256');
  const node = await store.edits.getNode(parent.editId);
  if (!node || node.documentId !== documentId) {
    throw new TRPCError({
      code: 'NOT_FOUND',
      message: `parent.editId: ${parent.editId} is not an edit of document ${documentId}: use an id from documents.history or a job result`,
    });
  }
  if (parent.pixelsSha256 !== undefined && parent.pixelsSha256 !== node.resultImageSha256) {
    return blobImage(images, parent.pixelsSha256, 'parent.pixelsSha256');
  }
  return blobImage(images, node.resultImageSha256, `the result of edit ${node.id}`);
}
