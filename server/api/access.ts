/**
 * Workspace isolation, in one place: what a request may see. Anything of another workspace answers exactly as
 * what does not exist (same status, same message, the same lookups on the way), so no route is an oracle for
 * what other teams hold.
 */
import { TRPCError } from '@trpc/server';
import { PlanError, type PlanDeps } from '../jobs/plan';
import type { Document, Principal } from '../store';
import type { Services } from './trpc';

/** A uuid no row has: looked up in place of an unknown id, so unknown and foreign ids cost the same. */
const NO_SUCH_ID = '00000000-0000-4000-8000-00000000ffff';

export function workspaceIdsOf(principal: Principal): string[] {
  return principal.workspaces.map((w) => w.id);
}

export function inWorkspaces(principal: Principal, workspaceId: string): boolean {
  return principal.workspaces.some((w) => w.id === workspaceId);
}

/** The document when it exists in one of the principal's workspaces; null otherwise (unknown or foreign alike). */
export async function visibleDocument(services: Services, principal: Principal, documentId: string | null): Promise<Document | null> {
  const document = await services.store.edits.getDocument(documentId ?? NO_SUCH_ID);
  return document && inWorkspaces(principal, document.workspaceId) ? document : null;
}

/** Whether one of the principal's workspaces uploaded or produced the blob (unknown and foreign alike: false). */
export function visibleBlob(services: Services, principal: Principal, sha256: string): Promise<boolean> {
  return services.store.edits.accounts.blobVisible(workspaceIdsOf(principal), sha256);
}

/** The document of a job this process holds, else of the stored job; null when there is no such job. */
export async function jobDocumentId(services: Services, jobId: string): Promise<string | null> {
  const live = await services.queue.get(jobId);
  if (live) return live.documentId;
  return (await services.store.edits.getJob(jobId))?.documentId ?? null;
}

/** The caller as a plan sees it (jobs/plan.ts): its user, and what of the store it may see. */
export function callerOf(services: Services, principal: Principal): PlanDeps['caller'] {
  return {
    userId: principal.user.id,
    seesDocument: (document) => inWorkspaces(principal, document.workspaceId),
    readsBlob: (sha256) => visibleBlob(services, principal, sha256),
  };
}

/** Runs a planning step; what it refuses (PlanError) becomes the 404/400 that says what to fix. */
export async function asHttpError<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof PlanError) throw new TRPCError({ code: err.code === 'not_found' ? 'NOT_FOUND' : 'BAD_REQUEST', message: err.message });
    throw err;
  }
}
