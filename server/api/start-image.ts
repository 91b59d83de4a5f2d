/**
 * The pixels a request refers to, looked up for the checks made before a job is queued (edits.create) and for
 * masks.preview: NOT_FOUND / BAD_REQUEST with the field to fix.
 */
import { TRPCError } from '@trpc/server';
import type { EditRequest } from '../../shared/protocol';
import type { RgbaImage } from '../imaging/image';
import { NotAnImageError } from '../imaging/image-blobs';
import type { Principal } from '../store';
import { visibleBlob } from './access';
import type { Services } from './trpc';

/**
 * An uploaded image's pixels; NOT_FOUND when absent or not visible to the caller's workspaces (the same answer),
 * BAD_REQUEST when the blob is not an image.
 */
export async function blobImage(services: Services, principal: Principal, sha256: string, field: string): Promise<RgbaImage> {
  let image: RgbaImage | null;
  try {
    image = (await visibleBlob(services, principal, sha256)) ? await services.images.get(sha256) : null;
  } catch (err) {
    if (!(err instanceof NotAnImageError)) throw err;
    throw new TRPCError({ code: 'BAD_REQUEST', message: `${field}: blob ${sha256} is not an image: pass the sha256 that PUT /v1/blobs returned for an image` });
  }
  if (!image) throw new TRPCError({ code: 'NOT_FOUND', message: `${field}: no blob ${sha256} on this server: upload the image with PUT /v1/blobs first` });
  return image;
}

/** The image the edit applies to (the uploaded source, the painted layer, or the parent's result). */
export async function startImage(services: Services, principal: Principal, request: Pick<EditRequest, 'documentId' | 'parent'>): Promise<RgbaImage> {
  const { parent, documentId } = request;
  if (parent.kind === 'source') return blobImage(services, principal, parent.imageSha256, 'parent.imageSha256');
  // the document is visible (checked first), so a node of it is too; a node of another document is not found
  const node = await services.store.edits.getNode(parent.editId);
  if (!node || node.documentId !== documentId) {
    throw new TRPCError({
      code: 'NOT_FOUND',
      message: `parent.editId: ${parent.editId} is not an edit of document ${documentId}: use an id from documents.history or a job result`,
    });
  }
  if (parent.pixelsSha256 !== undefined && parent.pixelsSha256 !== node.resultImageSha256) {
    return blobImage(services, principal, parent.pixelsSha256, 'parent.pixelsSha256');
  }
  return blobImage(services, principal, node.resultImageSha256, `the result of edit ${node.id}`);
}
