/**
 * The API: domain routers composed into appRouter (STYLE rule 9). Clients import only the type:
 *
 *   import type { AppRouter } from '../server/api/router';
 *
 * health (public) | me | documents.open, documents.history | edits.create | jobs.get, jobs.watch (SSE), jobs.cancel
 * | masks.preview | models.list. Served under /trpc by server/http/app.ts.
 */
import { documentsRouter } from './routers/documents';
import { editsRouter } from './routers/edits';
import { healthProcedure } from './routers/health';
import { jobsRouter } from './routers/jobs';
import { meProcedure } from './routers/me';
import { masksRouter } from './routers/masks';
import { modelsRouter } from './routers/models';
import { router } from './trpc';

export const appRouter = router({
  health: healthProcedure,
  me: meProcedure,
  documents: documentsRouter,
  edits: editsRouter,
  jobs: jobsRouter,
  masks: masksRouter,
  models: modelsRouter,
});

export type AppRouter = typeof appRouter;
