/** documents: a host document <-> documentId, and its history (the tree of edit nodes). */
import { TRPCError } from '@trpc/server';
import { documentHistoryInputSchema, openDocumentSchema } from '../../../shared/protocol';
import { authedProcedure, router } from '../trpc';

export const documentsRouter = router({
  /** Same (host, hostDocumentKey) -> same documentId, also across restarts. */
  open: authedProcedure.input(openDocumentSchema).mutation(async ({ ctx, input }) => {
    const { documentId, created } = await ctx.services.store.edits.openDocument(input.host, input.hostDocumentKey);
    return { documentId, created };
  }),

  /**
   * Every node of the document in creation order (a parent always before its children); build the tree from
   * `parentId` (null for roots). Source nodes hold uploaded or re-synced pixels; edit nodes one variation each.
   */
  history: authedProcedure.input(documentHistoryInputSchema).query(async ({ ctx, input }) => {
    const history = await ctx.services.store.edits.history(input.documentId);
    if (!history) throw new TRPCError({ code: 'NOT_FOUND', message: `no document ${input.documentId}: get a documentId from documents.open` });
    return history;
  }),
});
