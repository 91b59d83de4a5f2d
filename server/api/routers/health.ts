/** health: is the server up, which model does it run, how busy is it. Public (no token), cheap. */
import { publicProcedure } from '../trpc';

/** Served at the top level as `health` (GET /trpc/health). */
export const healthProcedure = publicProcedure.query(({ ctx }) => {
    const { config, engine, queue, version, startedAt, integrity } = ctx.services;
    const stats = queue.stats();
    return {
      status: stats.accepting ? ('ok' as const) : ('shutting-down' as const),
      version,
      model: { name: engine.info.name, provider: engine.info.provider, precision: engine.info.precision, nativeSize: engine.info.nativeSize },
      /** what was asked for (auto | cuda | cpu); model.provider is what runs */
      device: config.device,
      queue: { queued: stats.queued, running: stats.running, maxQueued: config.maxQueue, averageJobMs: stats.averageDurationMs },
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      /** the store's integrity check at start-up: 0 problems = consistent (details are in the log) */
      store: { integrityProblems: integrity.problems, checkedAt: integrity.checkedAt },
      authRequired: config.token !== null,
    };
});
