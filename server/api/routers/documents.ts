/** documents: a host document <-> documentId, and its history (the tree of edit nodes). */
import { TRPCError } from '@trpc/server';
import { NO_HISTORY_MESSAGE, documentHistoryInputSchema, openDocumentSchema } from '../../../shared/protocol';
import { inWorkspaces, visibleDocument } from '../access';
import type { AccountStore } from '../../store/accounts';
import { DEFAULT_USER_ID } from '../../store/store';
import { authedProcedure, router } from '../trpc';

export function noDocument(documentId: string): TRPCError {
  return new TRPCError({ code: 'NOT_FOUND', message: `no document ${documentId}: get a documentId from documents.open` });
}

/**
 * The names of a document's authors (one lookup per distinct user). Only a member of the document's workspace
 * can have added a node to it (edits and uploads are made in the caller's view), and memberships are never
 * removed, so these are names the workspace already shares; disabled users keep theirs on what they made.
 * The server's default user (shared token, no token) is no person: it gets none.
 */
async function authorNames(accounts: AccountStore, userIds: readonly string[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const userId of new Set(userIds)) {
    if (userId === DEFAULT_USER_ID) continue;
    const user = await accounts.getUser(userId);
    if (user) names.set(userId, user.name);
  }
  return names;
}

export const documentsRouter = router({
  /**
   * Same (workspace, host, hostDocumentKey) -> same documentId, also across restarts. The workspace is the one
   * named (the caller must be a member) or the caller's default one; another workspace opening the same file gets
   * a history of its own. With create: false only an existing history opens; none in this workspace is a 404
   * that is the same whoever else knows the key.
   */
  open: authedProcedure.input(openDocumentSchema).mutation(async ({ ctx, input }) => {
    const workspaceId = input.workspaceId ?? ctx.principal.user.defaultWorkspaceId;
    if (!inWorkspaces(ctx.principal, workspaceId)) {
      throw new TRPCError({ code: 'NOT_FOUND', message: `no workspace ${workspaceId}: use one of the workspaces that \`me\` lists` });
    }
    if (!input.create) {
      const documentId = await ctx.services.store.edits.findDocument(input.host, input.hostDocumentKey, workspaceId);
      if (documentId === null) throw new TRPCError({ code: 'NOT_FOUND', message: NO_HISTORY_MESSAGE });
      return { documentId, created: false };
    }
    const { documentId, created } = await ctx.services.store.edits.openDocument(input.host, input.hostDocumentKey, workspaceId);
    return { documentId, created };
  }),

  /** Which workspace the document belongs to (the panels show it). */
  get: authedProcedure.input(documentHistoryInputSchema).query(async ({ ctx, input }) => {
    const document = await visibleDocument(ctx.services, ctx.principal, input.documentId);
    if (!document) throw noDocument(input.documentId);
    const workspace = ctx.principal.workspaces.find((w) => w.id === document.workspaceId)!;
    return { documentId: document.id, host: document.host, workspace: { id: workspace.id, name: workspace.name }, createdAt: document.createdAt };
  }),

  /**
   * Every node of the document in creation order (a parent always before its children); build the tree from
   * `parentId` (null for roots). Source nodes hold uploaded or re-synced pixels; edit nodes one variation each.
   * `authorId` is who added each node; `authorName` their user name (null for the server's default user).
   */
  history: authedProcedure.input(documentHistoryInputSchema).query(async ({ ctx, input }) => {
    const document = await visibleDocument(ctx.services, ctx.principal, input.documentId);
    const history = document ? await ctx.services.store.edits.history(document.id) : null;
    if (!document || !history) throw noDocument(input.documentId);
    const names = await authorNames(ctx.services.store.edits.accounts, history.nodes.map((n) => n.authorId));
    return { ...history, nodes: history.nodes.map((n) => ({ ...n, authorName: names.get(n.authorId) ?? null })) };
  }),
});
