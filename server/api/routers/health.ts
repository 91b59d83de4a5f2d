/** health: is the server up, which model does it run, how busy is it, can it store. Public (no token), cheap. */
import { publicProcedure } from '../trpc';

/** Served at the top level as `health` (GET /trpc/health). */
export const healthProcedure = publicProcedure.query(async ({ ctx }) => {
  const { config, engine, queue, store, version, startedAt, integrity } = ctx.services;
  const stats = await queue.stats();
  // writes fail (disk full, read-only), or the data directory was removed or replaced: the causes, for operators
  const storage = await store.health();
  return {
    status: !stats.accepting ? ('shutting-down' as const) : storage.writable ? ('ok' as const) : ('degraded' as const),
    version,
    model: { name: engine.info.name, family: engine.info.family, readsReferences: engine.info.readsReferences, defaultTextScale: engine.info.defaultTextScale, provider: engine.info.provider, precision: engine.info.precision, nativeSize: engine.info.nativeSize },
    /** what was asked for (auto | cuda | cpu); model.provider is what runs */
    device: config.device,
    queue: { queued: stats.queued, running: stats.running, maxQueued: config.maxQueue, maxQueuedPerDocument: config.maxQueuePerDocument, averageJobMs: stats.averageDurationMs },
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    store: {
      /** the store's integrity check at start-up: 0 problems = consistent (details are in the log) */
      integrityProblems: integrity.problems,
      checkedAt: integrity.checkedAt,
      /** false while writes fail; `problems` says why (cleared by the next write that works) */
      writable: storage.writable,
      problems: storage.problems,
    },
    authRequired: config.token !== null || config.usersOnly,
  };
});
