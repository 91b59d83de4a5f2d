/** me: who the request acts as, and the workspaces it sees (the panels show it; documents.open takes a workspaceId). */
import { authedProcedure } from '../trpc';

export const meProcedure = authedProcedure.query(({ ctx }) => {
  const { user, workspaces } = ctx.principal;
  return {
    user: { id: user.id, name: user.name, role: user.role },
    workspaces: workspaces.map((w) => ({ id: w.id, name: w.name })),
    defaultWorkspaceId: user.defaultWorkspaceId,
    /** how the request signed in: a personal token, the server's shared token, or none (loopback) */
    via: ctx.authMode,
  };
});
