/**
 * Submitting an edit, with the one behaviour both plugins share for a parent edit the server no longer knows
 * (another server, a wiped store): when the layer's own pixels went up with the request (parent.pixelsSha256),
 * the edit starts from them instead, and the caller gets a warning for the user; otherwise the server's
 * not-found error stands, saying what to do.
 */
import type { CreateEditResult, EditRequestInput } from '../protocol';
import type { LayerloopClient, SignalLike } from './client';
import { ClientError } from './errors';

export const PARENT_UNKNOWN_WARNING =
  'The server does not know the edit this layer came from (another server, or its history was reset): this edit started from the layer’s pixels instead.';

export async function submitEdit(client: LayerloopClient, request: EditRequestInput, signal?: SignalLike): Promise<{ created: CreateEditResult; warning: string | null }> {
  try {
    return { created: await client.createEdit(request, signal), warning: null };
  } catch (err) {
    const parent = request.parent;
    if (!(err instanceof ClientError && err.kind === 'not-found' && parent.kind === 'edit')) throw err;
    if (!parent.pixelsSha256) {
      throw new ClientError('not-found', `The server does not know the edit to continue from (${err.message}): select the layer itself (not a history entry) and Apply, to start from its pixels.`, err.status, err.code);
    }
    const created = await client.createEdit({ ...request, parent: { kind: 'source', imageSha256: parent.pixelsSha256 } }, signal);
    return { created, warning: PARENT_UNKNOWN_WARNING };
  }
}
