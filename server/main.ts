/**
 * The edit server's entry point (`npm start`, built to dist/server/main.js):
 * config -> the port (taken first: answers 503 until ready) -> the data directory's lock (embedded SQLite store
 * only) -> the shared queue's Redis (--queue) -> store (recover interrupted jobs, integrity check) -> engine
 * worker -> job queue -> HTTP.
 *
 * Roles (config.ts): both in one process (the default, with the in-process queue or --queue redis://), `serve`
 * (the API only: no model; edits go to the Redis queue) or `worker` (the model and a Redis queue worker; its port
 * answers /health, /ready and /metrics only).
 *
 * Prints exactly one line on stdout once it accepts connections:
 *   layerloop listening on http://HOST:PORT (model NAME on PROVIDER)
 * (a worker: `layerloop worker on http://HOST:PORT (model NAME on PROVIDER)`; a serve node before any worker
 * started: `(model of-the-workers on QUEUE-URL)`)
 * Everything else is JSON log lines (pino) on stderr; Prometheus metrics are served at GET /metrics.
 * SIGINT/SIGTERM shut down gracefully: stop accepting, let the running edit finish (or fail it after a grace
 * period), fail the queued ones, close the engine and the store.
 */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { version } from '../package.json';
import { StreamSlots } from './api/stream-slots';
import type { Services } from './api/trpc';
import { ConfigError, USAGE, findRepoRoot, parseConfig, type Config } from './config';
import { Engine } from './engine/engine';
import { Segmenter } from './engine/segmenter';
import { Authenticator } from './auth/authenticate';
import { createHttpServer, createRequestHandler, presentedToken } from './http/app';
import { ByteBudget, UPLOAD_BUDGET_BYTES } from './http/upload-budget';
import { ImageBlobs } from './imaging/image-blobs';
import { AdmissionRoom } from './jobs/admission';
import { JobLedger } from './jobs/ledger';
import { JobOwners, queueShare } from './jobs/owners';
import type { JobQueue as JobQueuePort } from './jobs/port';
import { JobQueue } from './jobs/queue';
import { RedisConfigError, connectRedis, redactRedisUrl } from './jobs/redis/connect';
import { RedisJobQueue } from './jobs/redis/queue';
import { DEFAULT_RECORD_OPTIONS } from './jobs/redis/records';
import { RedisJobWorker } from './jobs/redis/worker';
import { createEditRunner } from './jobs/runner';
import { createLogger, type Logger } from './log';
import { debouncedCollection } from './memory';
import { createServerMetrics, type ServerMetrics } from './metrics';
import { type ConfiguredStore, DATABASE_FILE, StoreError, openConfiguredStore } from './store';
import { DataDirLockedError, lockDataDir, type DataDirLock } from './store/data-dir-lock';
import { isSqliteCorruption } from './store/sqlite';
import { WorkersModel, publishModelInfo, workerRequestHandler, type WorkerStatus } from './team';

/** How long a shutdown lets the running edit finish before aborting it. */
const SHUTDOWN_FINISH_MS = 10_000;
/** A user whose last edit just ended still counts as busy this long (fair share: its next edit is on its way). */
const OWNER_LINGER_MS = 1_000;
/** How often an open event stream rereads its token: a revoked token or disabled user ends it within this. */
const AUTH_RECHECK_MS = 1_000;
const SHUTDOWN_GRACE_MS = 5_000;

function fail(message: string, code = 1): never {
  process.stderr.write(`layerloop: ${message}\n`);
  process.exit(code);
}

function readConfig(): Config {
  try {
    const { config, help } = parseConfig(process.argv.slice(2), process.env, findRepoRoot(__dirname));
    if (help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    return config;
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger();
  const metrics = createServerMetrics();
  const queueUrl = config.queue === null ? null : redactRedisUrl(config.queue);
  log.info('starting', { version, role: config.role, host: config.host, port: config.port, dataDir: config.dataDir, modelDir: config.modelDir, device: config.device, batch: config.batch, auth: config.usersOnly ? 'personal tokens only' : config.token !== null ? 'personal or shared token' : 'personal token or none (loopback)', queue: queueUrl });

  // The port first: a second server started by mistake must fail before it touches anyone's data. Until the
  // server is ready, connections are answered 503.
  let handle: http.RequestListener = answerStarting;
  const server = createHttpServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === 'EADDRINUSE' ? `: the port is in use; pass --port N (or --port 0 for any free port)` : '';
    fail(`cannot listen on ${config.host}:${config.port}: ${err.message}${hint}`);
  });
  server.on('error', (err) => log.error('server error', { error: err.message }));

  // Then the data directory, when the embedded SQLite store lives there: only the process holding its lock may
  // recover jobs or write. A PostgreSQL store is shared by design (each process recovers only the jobs of
  // processes that are gone), and blob files (content-addressed, written by renames) may be shared with it.
  let lock: DataDirLock | null = null;
  if (config.store === null) {
    try {
      lock = lockDataDir(config.dataDir);
    } catch (err) {
      fail(err instanceof DataDirLockedError ? err.message : `cannot lock the data directory ${config.dataDir}: ${(err as Error).message}`);
    }
  }
  // The shared queue's Redis, checked now: an unreachable one refuses the start with what to fix.
  const redis = config.queue === null ? null : await connectRedis(config.queue).catch((err: unknown) => fail(err instanceof RedisConfigError ? err.message : String(err)));
  if (redis) redis.on('error', (err: Error) => log.warn('redis connection problem (reconnecting)', { error: err.message }));
  // With a shared queue the jobs live in Redis, where workers run them (a dead worker's job runs again on
  // another): a process starting up must not fail them in the store.
  const { store, integrity } = await openCheckedStore(config, log, { recoverJobs: redis === null }).catch((err: unknown) => fail(storeProblem(config, err)));
  log.info('store opened', store.location);
  metrics.storeIntegrityProblems.set(integrity.problems);

  const engine =
    config.role === 'serve'
      ? null
      : await Engine.start({
          modelDir: config.modelDir,
          device: config.device,
          batch: config.batch,
          ...(config.engineThreads === null ? {} : { threads: config.engineThreads }),
          log: (message) => (message.startsWith('WARNING') ? log.warn : log.info)(message, { component: 'engine' }),
        }).catch(async (err: Error) => {
          await store.close();
          lock?.release();
          redis?.disconnect();
          return fail(`cannot load the model from ${config.modelDir}: ${err.message}`);
        });

  const images = new ImageBlobs(store.blobs);
  const owners = new JobOwners({ lingerMs: OWNER_LINGER_MS });
  const ledger = new JobLedger(store.edits);
  const prefix = DEFAULT_RECORD_OPTIONS.prefix;
  const worker =
    redis && engine
      ? await RedisJobWorker.start({
          redis,
          ledger,
          concurrency: config.batch, // as many jobs as the engine computes at once, sharing the UNet's runs
          lockMs: config.jobLeaseSeconds * 1000,
          onStateChange: (jobId, state, info) => {
            metrics.onJobState(jobId, state, info);
            if (state === 'succeeded' || state === 'failed' || state === 'cancelled') {
              (state === 'failed' ? log.warn : log.info)('job ended', { jobId, documentId: info.documentId, state, error: info.error ?? null });
            }
          },
          run: createEditRunner({ store, images, engine, log: log.child({ component: 'runner' }), observer: metrics }),
          log: (message) => log.warn(message, { component: 'worker' }),
        })
      : null;
  if (redis && engine) await publishModelInfo(redis, prefix, engine.info);

  if (config.role === 'worker' && worker && engine) {
    let state: WorkerStatus['status'] = 'ok';
    const startedAt = Date.now();
    const workerAuth = new Authenticator(store.edits.accounts, { sharedToken: config.token, tokenless: config.token === null && !config.usersOnly });
    handle = workerRequestHandler({
      mayReadMetrics: async (req) => {
        const who = await workerAuth.authenticate(presentedToken(req));
        return who.ok && who.principal.user.role === 'admin';
      },
      metrics,
      status: () => ({
        role: 'worker',
        status: state,
        version,
        model: { name: engine.info.name, provider: engine.info.provider, precision: engine.info.precision, nativeSize: engine.info.nativeSize },
        activeJobs: worker.active,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      }),
    });
    let stopping: Promise<void> | null = null;
    installSignalHandlers(log, metrics, (reason, exitCode) => {
      stopping ??= (async () => {
        log.info('shutting down', { reason });
        state = 'shutting-down';
        await worker.close({ timeoutMs: SHUTDOWN_FINISH_MS, graceMs: SHUTDOWN_GRACE_MS });
        server.close();
        server.closeAllConnections();
        await engine.close().catch((err: Error) => log.warn('engine did not close cleanly', { error: err.message }));
        redis?.disconnect();
        await store.close();
        log.info('stopped');
        process.exit(exitCode);
      })();
      return stopping;
    });
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    log.info('worker pulling edits', { queue: queueUrl, batch: config.batch });
    process.stdout.write(`layerloop worker on http://${host}:${port} (model ${engine.info.name} on ${engine.info.provider})\n`);
    return;
  }
  // Masks from words are derived where edits are made (the API): a worker needs no segmenter.
  const segmenter = await Segmenter.load(config.segmenterDir, {
    // where the engine ended up: `auto` is probed once, by the engine, and said once
    device: engine?.info.provider ?? 'cpu',
    log: (message) => log.info(message, { component: 'segmenter' }),
  }).catch(async (err: Error) => {
    await engine?.close().catch(() => {});
    await store.close();
    lock?.release();
    redis?.disconnect();
    return fail(`cannot load the segmenter (masks from words) from ${config.segmenterDir}: ${err.message}`);
  });
  log.info('segmenter loaded', { segmenter: segmenter.info.name, size: `${segmenter.info.width}x${segmenter.info.height}` });

  const admission: AdmissionRoom = new AdmissionRoom({
    hasRoom: (documentId, userId) =>
      queue.hasRoom(documentId) && owners.queued(userId) < queueShare(config.maxQueue, [...owners.activeUsers(), ...admission.waitingUsers(), userId]),
    estimateWaitMs: (ahead) => queue.estimatedWaitMs(ahead),
    queueLength: config.maxQueue,
    maxWaitMs: config.queueWaitSeconds * 1000,
    maxWaiting: Math.max(32, 4 * config.maxQueue),
    maxWaitingPerDocument: config.maxQueuePerDocument,
  });
  let queue: JobQueuePort;
  if (redis) {
    const shared = new RedisJobQueue({
      redis,
      ledger,
      blobs: store.blobs,
      maxLength: config.maxQueue,
      maxPerDocument: config.maxQueuePerDocument,
      onRoom: () => admission.wake(),
      // this node learns of no job's start or end: its per-user counts hold a job only while it is admitted
      onEnqueued: (jobId) => owners.release(jobId),
      log: (message) => log.warn(message, { component: 'queue' }),
    });
    metrics.watchQueue(() => shared.cachedStats());
    queue = shared;
  } else if (engine) {
    const local = new JobQueue({
      maxLength: config.maxQueue,
      concurrency: config.batch, // the engine computes up to this many edits at once, sharing the UNet's runs
      maxPerDocument: config.maxQueuePerDocument,
      run: createEditRunner({ store, images, engine, log: log.child({ component: 'runner' }), observer: metrics }),
      ledger,
      onStateChange: (jobId, state, info) => {
        metrics.onJobState(jobId, state, info);
        if (state === 'running') owners.start(jobId);
        if (state !== 'queued') queueMicrotask(() => admission.wake()); // a slot may have freed (outside the queue's own call)
        if (state === 'succeeded' || state === 'failed' || state === 'cancelled') {
          const owner = owners.get(jobId);
          (state === 'failed' ? log.warn : log.info)('job ended', { jobId, documentId: info.documentId, userId: owner?.userId ?? null, workspaceId: owner?.workspaceId ?? null, state, error: info.error ?? null });
          owners.release(jobId);
        }
      },
      log: (message) => log.warn(message, { component: 'queue' }),
    });
    metrics.watchQueue(() => local.stats());
    queue = local;
  } else {
    return fail('an API without a model needs the shared queue (--queue redis://…)'); // config.ts refuses this already
  }
  const model = engine ?? (await WorkersModel.open(redis!, prefix));
  metrics.watchImageCache(() => images.cacheStats());
  const auth = new Authenticator(store.edits.accounts, { sharedToken: config.token, tokenless: config.token === null && !config.usersOnly });
  const services: Services = {
    config,
    store,
    images,
    queue,
    admission,
    uploads: new ByteBudget(UPLOAD_BUDGET_BYTES, debouncedCollection(2000)),
    streams: new StreamSlots(),
    engine: model,
    segmenter,
    version,
    startedAt: Date.now(),
    log,
    metrics,
    integrity,
    auth,
    owners,
    uploadsByUser: new Map(),
    authRecheckMs: AUTH_RECHECK_MS,
  };
  handle = createRequestHandler(services);

  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string, exitCode: number): Promise<void> => {
    stopping ??= (async () => {
      log.info('shutting down', { reason });
      server.close();
      server.closeIdleConnections();
      await queue.close({ timeoutMs: SHUTDOWN_FINISH_MS, graceMs: SHUTDOWN_GRACE_MS }); // every ending recorded
      await worker?.close({ timeoutMs: SHUTDOWN_FINISH_MS, graceMs: SHUTDOWN_GRACE_MS });
      server.closeAllConnections(); // watchers got their final events; end the streams
      await engine?.close().catch((err: Error) => log.warn('engine did not close cleanly', { error: err.message }));
      if (model instanceof WorkersModel) model.close();
      await segmenter.release().catch(() => {});
      redis?.disconnect();
      await store.close();
      lock?.release();
      log.info('stopped');
      process.exit(exitCode);
    })();
    return stopping;
  };
  installSignalHandlers(log, metrics, shutdown);

  // only now: a SIGTERM sent the moment this line is read must find the handlers in place (a graceful stop)
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const shown = engine?.info ?? (model instanceof WorkersModel && model.known ? model.info : null);
  process.stdout.write(`layerloop listening on http://${host}:${port} (model ${shown?.name ?? 'of-the-workers'} on ${shown?.provider ?? queueUrl})\n`);
}

/** What a request gets while the server is still starting (the port is taken before the model is loaded). */
function answerStarting(_req: http.IncomingMessage, res: http.ServerResponse): void {
  const body = JSON.stringify({ error: 'the server is starting (loading its data and the model): try again in a moment' });
  res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '2', 'Cache-Control': 'no-store' });
  res.end(body);
}

/**
 * Opens the configured store and makes it consistent before anything else runs: jobs a previous process left
 * unfinished are marked failed (the embedded store's only by the lock holder; PostgreSQL's only those of
 * processes that are gone), temp files of cut-off blob writes are swept, and the integrity check runs.
 * Page-level damage to an SQLite database refuses the start.
 */
async function openCheckedStore(config: Config, log: Logger, opts: { recoverJobs: boolean }): Promise<{ store: ConfiguredStore; integrity: Services['integrity'] }> {
  const store = await openConfiguredStore(config, { onError: (message, error) => log.warn(message, { component: 'store', error: error.message }) });
  try {
    const interrupted = opts.recoverJobs ? await store.edits.recoverInterruptedJobs() : [];
    for (const job of interrupted) {
      log.warn('job interrupted by the previous shutdown', { jobId: job.id, documentId: job.documentId, error: job.error });
    }
    // temp files of blob writes a crash cut short (older than an hour: never a write in flight)
    try {
      const swept = await store.removeTempFiles();
      if (swept > 0) log.info('removed temp files left by interrupted blob writes', { count: swept });
    } catch (err) {
      log.warn('could not sweep blob temp files', { error: (err as Error).message });
    }
    const problems = await store.edits.integrityCheck();
    for (const problem of problems) log.warn('store integrity problem', { kind: problem.kind, problem: problem.message });
    const damage = problems.find((p) => p.kind === 'sqlite');
    if (damage) throw new StoreError('corrupt', `SQLite's integrity check failed: ${damage.message.replace(/\s+/g, ' ')}`);
    if (problems.length === 0) log.info('store integrity check passed');
    return { store, integrity: { problems: problems.length, checkedAt: Date.now() } };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/** The start-up failure message for a store that cannot be used, with what to do about it. */
function storeProblem(config: Config, err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  if (config.store === null && (isSqliteCorruption(err) || (err instanceof StoreError && err.code === 'corrupt'))) {
    const database = path.join(config.dataDir, DATABASE_FILE);
    return (
      `cannot open the data directory ${config.dataDir}: its database ${database} is damaged (${message}). ` +
      `Restore it from a backup, or recover what it still holds with the sqlite3 shell: ` +
      `sqlite3 ${database} .recover | sqlite3 recovered.sqlite, then move recovered.sqlite into its place. The blobs/ folder is not touched`
    );
  }
  return config.store || config.blobs ? `cannot open the store: ${message}` : `cannot open the data directory ${config.dataDir}: ${message}`;
}

function installSignalHandlers(log: Logger, metrics: ServerMetrics, shutdown: (reason: string, exitCode: number) => Promise<void>): void {
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (signalled) {
        log.warn('second signal: exiting now', { signal });
        process.exit(1);
      }
      signalled = true;
      void shutdown(signal, 0);
    });
  }
  // A bug must not take the server down with a client's request; log it. An exception thrown outside any
  // request leaves the process in an unknown state: shut down cleanly and exit non-zero.
  process.on('unhandledRejection', (reason) => {
    metrics.errors.inc({ source: 'process' });
    log.error('unhandled rejection', { error: reason instanceof Error ? reason.message : String(reason), stack: reason instanceof Error ? (reason.stack ?? null) : null });
  });
  process.on('uncaughtException', (err) => {
    metrics.errors.inc({ source: 'process' });
    log.error('uncaught exception', { error: err.message, stack: err.stack ?? null });
    void shutdown('uncaught exception', 1);
  });
}

main().catch((err: Error) => fail(err.stack ?? err.message));
