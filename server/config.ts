/**
 * The server's configuration: CLI flags over environment variables over defaults, parsed once by zod into a
 * frozen object (STYLE rule 8). Every default lives in `defaults()`; nothing else reads process.env or argv.
 *
 *   --host        LAYERLOOP_HOST        127.0.0.1
 *   --port        LAYERLOOP_PORT        7860 (0 = any free port)
 *   --token       LAYERLOOP_TOKEN       none (required when --host is not a loopback address)
 *   --data-dir    LAYERLOOP_DATA_DIR    <repo>/data
 *   --model       LAYERLOOP_MODEL       none: a shipped model by name (a folder of <repo>/models, e.g. tiny-flux2-klein)
 *   --model-dir   LAYERLOOP_MODEL_DIR   <repo>/models/tiny-pix2pix (any model folder; one of --model / --model-dir)
 *   --device      LAYERLOOP_DEVICE      auto (auto | cuda | cpu)
 *   --batch       LAYERLOOP_BATCH       DEFAULT_BATCH (edits run at once, sharing the UNet's runs; 1 = one at a time)
 *   --max-queue   LAYERLOOP_MAX_QUEUE   MAX_QUEUE_LENGTH
 *   --max-queue-per-document  LAYERLOOP_MAX_QUEUE_PER_DOCUMENT  a quarter of --max-queue (at least 1)
 *   --queue-wait  LAYERLOOP_QUEUE_WAIT  30 (seconds edits.create may wait for room in a full queue; 0 = 429 at once)
 *   --allow-origin  LAYERLOOP_ALLOW_ORIGIN  none (repeatable / comma-separated: web origins allowed besides the defaults)
 *   --store       LAYERLOOP_STORE       none: SQLite in the data directory (else postgres://…)
 *   --blobs       LAYERLOOP_BLOBS       none: files in the data directory (else s3://bucket…)
 *   --queue       LAYERLOOP_QUEUE       none: in this process (else redis://…)
 *   --job-lease   LAYERLOOP_JOB_LEASE   30 (seconds a dead worker's job waits before another worker runs it)
 *   --engine-threads  LAYERLOOP_ENGINE_THREADS  none: onnxruntime's choice (CPU threads of one engine)
 *   role (first argument): serve | worker; none = both in one process
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { MAX_QUEUE_LENGTH, formatIssues } from '../shared/protocol';
import { type PostgresLocation, type S3Location, StoreUrlError, parseBlobsUrl, parseStoreUrl } from './store/urls';

export const DEVICES = ['auto', 'cuda', 'cpu'] as const;

/** What a process does: `serve` the API, be a `worker` (load the model, run jobs), or both (`all`, the default). */
export const ROLES = ['all', 'serve', 'worker'] as const;
export type Role = (typeof ROLES)[number];
/**
 * Edits computed at once by default: 1 (batching off). On the CPU the UNet costs the same per batch element at any
 * batch size, so sharing runs gains next to nothing there (bench/batching.ts; bench/RESULTS.md, "Cross-request
 * batching"); raise it on a GPU after measuring with `npm run bench:batching -- --provider cuda`.
 */
export const DEFAULT_BATCH = 1;

export interface Config {
  readonly host: string;
  readonly port: number;
  /** null: no authentication (only allowed on loopback hosts) */
  readonly token: string | null;
  readonly dataDir: string;
  readonly modelDir: string;
  /** the text-conditioned segmenter (CLIPSeg's ONNX interface) that turns a region's maskText into a mask */
  readonly segmenterDir: string;
  /** where models.list looks for other model folders */
  readonly modelsRoot: string;
  readonly device: (typeof DEVICES)[number];
  /**
   * Most edits the engine runs at once; their UNet calls share batched runs step by step (server/engine/batching.ts).
   * 1: one edit at a time, as without batching.
   */
  readonly batch: number;
  readonly maxQueue: number;
  /** edits one document may have waiting, so one document cannot fill the whole queue */
  readonly maxQueuePerDocument: number;
  /** seconds an edits.create may wait in the admission room for a full queue before a 429 (0: at once) */
  readonly queueWaitSeconds: number;
  /**
   * Web page origins (`https://example.com`) that may call the server from a browser, besides the ones always
   * allowed: the server's own pages and Figma's plugin iframe (origin `null`). See server/http/browser-access.ts.
   */
  readonly allowOrigins: readonly string[];
  /** where documents, edits and jobs live; null: SQLite in dataDir */
  readonly store: PostgresLocation | null;
  /** where image, mask and latent bytes live; null: files in dataDir/blobs */
  readonly blobs: S3Location | null;
  /** the shared queue (redis://…); null: the in-process queue */
  readonly queue: string | null;
  /**
   * seconds a worker's hold on its running job lasts without renewal (it renews at half of it): a worker that
   * died has its job run again by another after this (and at most as long again)
   */
  readonly jobLeaseSeconds: number;
  /** CPU threads of the engine's onnxruntime sessions; null: its own choice (all cores) */
  readonly engineThreads: number | null;
  readonly role: Role;
  /**
   * Only personal tokens (`npm run users`) are accepted: no shared --token, no token-less loopback access. Lets a
   * team server listen off loopback without a shared token.
   */
  readonly usersOnly: boolean;
  /** edits one user may have queued or running at once (429 past it) */
  readonly maxQueuedPerUser: number;
  /** uploads one user may have in flight at once (429 past it) */
  readonly maxUploadsPerUser: number;
  /** bytes one user may bring into its workspaces (uploads and results; 507 past it); null: no limit */
  readonly maxStoredBytesPerUser: number | null;
}

/** A configuration the server refuses to start with; `message` says what to change. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const USAGE = `usage: npm start -- [serve | worker] [options]      (flags win over environment variables)
  serve              the API only: edits go to the --queue, run by workers (needs --queue and --store)
  worker             load the model and run the --queue's edits; --port serves its health and metrics
                     (needs --queue and --store); neither: both in this process (the default)
  --host HOST        LAYERLOOP_HOST       address to listen on (default 127.0.0.1)
  --port N           LAYERLOOP_PORT       port, 0 = any free port (default 7860)
  --token SECRET     LAYERLOOP_TOKEN      require 'Authorization: Bearer SECRET' (required off loopback)
  --data-dir DIR     LAYERLOOP_DATA_DIR   documents, edits and blobs (default <repo>/data)
  --model NAME       LAYERLOOP_MODEL      a shipped model by name: tiny-pix2pix (InstructPix2Pix, the default),
                                          tiny-flux2-klein (FLUX.2 [klein]), or any folder of <repo>/models
  --model-dir DIR    LAYERLOOP_MODEL_DIR  model folder anywhere (default <repo>/models/tiny-pix2pix)
  --segmenter DIR    LAYERLOOP_SEGMENTER  segmenter for masks from words: a CLIPSeg ONNX export
                                          (default <repo>/models/tiny-clipseg)
  --device D         LAYERLOOP_DEVICE     auto | cuda | cpu (default auto)
  --batch N          LAYERLOOP_BATCH      edits computed at once, sharing the UNet's runs step by step
                                          (default ${DEFAULT_BATCH}; 1 = one edit at a time)
  --max-queue N      LAYERLOOP_MAX_QUEUE  edits that may wait (default ${MAX_QUEUE_LENGTH})
  --max-queue-per-document N
                     LAYERLOOP_MAX_QUEUE_PER_DOCUMENT  edits one document may have waiting
                                          (default a quarter of --max-queue, at least 1)
  --queue-wait S     LAYERLOOP_QUEUE_WAIT  seconds an edit may wait for room in a full queue, taking its turn
                                          fairly, before the server answers 429 (default 30; 0 = at once)
  --allow-origin ORIGIN
                     LAYERLOOP_ALLOW_ORIGIN  a web page origin (https://host[:port]) that may call the server
                                          from a browser; repeat it, or separate origins with commas
                                          (the server's own pages and Figma's plugin are always allowed)
  --store URL        LAYERLOOP_STORE      postgres://USER:PASSWORD@HOST:PORT/DATABASE (default: SQLite in the data directory)
  --blobs URL        LAYERLOOP_BLOBS      s3://BUCKET[/PREFIX]?endpoint=URL (default: files in the data directory;
                                          credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE)
  --queue URL        LAYERLOOP_QUEUE      redis://[:PASSWORD@]HOST:PORT[/DB] (default: the queue lives in this process)
  --job-lease S      LAYERLOOP_JOB_LEASE  with --queue: seconds before a dead worker's job runs on another (default 30)
  --engine-threads N LAYERLOOP_ENGINE_THREADS  CPU threads of the engine (default: onnxruntime's, all cores);
                                          several workers on one machine split the cores with it
  --users-only       LAYERLOOP_USERS_ONLY=1  accept personal tokens only (npm run users): no shared token, no
                                          token-less access; allowed off loopback without --token
  --max-queued-per-user N    LAYERLOOP_MAX_QUEUED_PER_USER   edits one user may have queued or running (default 16)
  --max-uploads-per-user N   LAYERLOOP_MAX_UPLOADS_PER_USER  uploads one user may send at once (default 32)
  --max-stored-mib-per-user N  LAYERLOOP_MAX_STORED_MIB_PER_USER  MiB of images one user may store (default: no limit)`;

function defaults(repoRoot: string) {
  return {
    host: '127.0.0.1',
    port: '7860',
    dataDir: path.join(repoRoot, 'data'),
    modelDir: path.join(repoRoot, 'models', 'tiny-pix2pix'),
    segmenterDir: path.join(repoRoot, 'models', 'tiny-clipseg'),
    modelsRoot: path.join(repoRoot, 'models'),
    device: 'auto',
    batch: String(DEFAULT_BATCH),
    maxQueue: String(MAX_QUEUE_LENGTH),
    queueWait: '30',
    jobLease: '30',
    maxQueuedPerUser: '16',
    maxUploadsPerUser: '32',
  } as const;
}

/** The model folders of `root` (those holding a model_index.json), by name. */
export function shippedModels(root: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.') && fs.existsSync(path.join(root, n, 'model_index.json'))).sort();
}

/**
 * The model folder from --model NAME (a folder of `modelsRoot`) or --model-dir DIR, flags over environment; null
 * when neither is set. Naming both at one level is refused, as is a name that is not a shipped model.
 */
export function chooseModelDir(nameFlag: string | undefined, dirFlag: string | undefined, nameEnv: string | undefined, dirEnv: string | undefined, modelsRoot: string): string | null {
  if (nameFlag !== undefined && dirFlag !== undefined) throw new ConfigError('pass --model NAME (a shipped model) or --model-dir DIR (a folder), not both');
  if (nameFlag === undefined && dirFlag === undefined && nameEnv !== undefined && dirEnv !== undefined) {
    throw new ConfigError('set LAYERLOOP_MODEL (a shipped model) or LAYERLOOP_MODEL_DIR (a folder), not both');
  }
  const name = nameFlag ?? (dirFlag === undefined ? nameEnv : undefined);
  if (name === undefined) return dirFlag ?? dirEnv ?? null;
  const shipped = shippedModels(modelsRoot);
  if (!shipped.includes(name)) {
    throw new ConfigError(`--model ${JSON.stringify(name)} is not a shipped model; the models in ${modelsRoot} are: ${shipped.join(', ') || 'none'} (use --model-dir for a folder elsewhere)`);
  }
  return path.join(modelsRoot, name);
}

/** The repository root: the nearest folder above `start` holding package.json (works from sources and dist/). */
export function findRepoRoot(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start);
  }
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** A quarter of the queue: with the round-robin admission, four busy documents share a full queue. */
export function defaultPerDocument(maxQueue: number): number {
  return Math.max(1, Math.ceil(maxQueue / 4));
}

function intString(name: string, min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, { error: (iss) => `${name} must be a whole number between ${min} and ${max}, got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: `${name} must be at least ${min}` }).max(max, { error: `${name} must be at most ${max}` }));
}

/** What a browser sends as `Origin`: scheme://host[:port], nothing else. */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

/** An optional backend URL, parsed by `parse` (whose StoreUrlError message names the flag and what to fix). */
function backendUrl<T>(parse: (text: string) => T) {
  return z
    .string()
    .nullable()
    .transform((text, ctx) => {
      if (text === null) return null;
      try {
        return parse(text);
      } catch (err) {
        if (!(err instanceof StoreUrlError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    });
}

const configSchema = z.strictObject({
  host: z.string().min(1, { error: 'host must not be empty' }),
  port: intString('port', 0, 65535),
  token: z
    .string()
    .min(8, { error: 'token must be at least 8 characters' })
    .max(512, { error: 'token must be at most 512 characters' })
    .regex(/^[\x21-\x7e]+$/, { error: 'token must be printable ASCII without spaces (it travels in an HTTP header)' })
    .nullable(),
  dataDir: z.string().min(1),
  modelDir: z.string().min(1),
  segmenterDir: z.string().min(1),
  modelsRoot: z.string().min(1),
  device: z.enum(DEVICES, { error: (iss) => `device must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(iss.input)}` }),
  batch: intString('batch', 1, 64),
  maxQueue: intString('max-queue', 1, 100_000),
  maxQueuePerDocument: intString('max-queue-per-document', 1, 100_000).nullable(),
  queueWaitSeconds: intString('queue-wait', 0, 3600),
  allowOrigins: z.array(
    z.string().refine(isOrigin, {
      error: (iss) => `allow-origin must be an origin like https://example.com or http://localhost:3000 (scheme, host and port only, no path), got ${JSON.stringify(iss.input)}`,
    }),
  ),
  store: backendUrl(parseStoreUrl),
  blobs: backendUrl(parseBlobsUrl),
  queue: z
    .string()
    .refine(isRedisUrl, { error: 'queue must be a redis:// or rediss:// URL, like redis://localhost:6379 (or redis://:PASSWORD@HOST:6379/0)' })
    .nullable(),
  role: z.enum(ROLES),
  jobLeaseSeconds: intString('job-lease', 1, 3600),
  engineThreads: intString('engine-threads', 1, 1024).nullable(),
  usersOnly: z.boolean(),
  maxQueuedPerUser: intString('max-queued-per-user', 1, 100_000),
  maxUploadsPerUser: intString('max-uploads-per-user', 1, 10_000),
  maxStoredMibPerUser: intString('max-stored-mib-per-user', 1, 1 << 30).nullable(),
});

function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * Parse flags and environment. Throws ConfigError for unknown flags, malformed values, or a non-loopback
 * host without a token. `help` is true when --help was given (the caller prints USAGE and exits).
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, repoRoot: string): { config: Config; help: boolean } {
  let values: Record<string, string | string[] | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        token: { type: 'string' },
        'data-dir': { type: 'string' },
        model: { type: 'string' },
        'model-dir': { type: 'string' },
        segmenter: { type: 'string' },
        device: { type: 'string' },
        batch: { type: 'string' },
        'max-queue': { type: 'string' },
        'max-queue-per-document': { type: 'string' },
        'queue-wait': { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        store: { type: 'string' },
        blobs: { type: 'string' },
        queue: { type: 'string' },
        'job-lease': { type: 'string' },
        'engine-threads': { type: 'string' },
        'users-only': { type: 'boolean' },
        'max-queued-per-user': { type: 'string' },
        'max-uploads-per-user': { type: 'string' },
        'max-stored-mib-per-user': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${USAGE}`);
  }
  if (positionals.length > 1 || (positionals.length === 1 && positionals[0] !== 'serve' && positionals[0] !== 'worker')) {
    throw new ConfigError(`unexpected argument(s) ${positionals.map((p) => JSON.stringify(p)).join(' ')}: the only one is the role, serve or worker\n${USAGE}`);
  }
  const envValue = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const flag = (name: string): string | undefined => values[name] as string | undefined;
  const origins = (values['allow-origin'] as string[] | undefined) ?? envValue('LAYERLOOP_ALLOW_ORIGIN')?.split(',') ?? [];
  const d = defaults(repoRoot);
  const raw = {
    host: flag('host') ?? envValue('LAYERLOOP_HOST') ?? d.host,
    port: flag('port') ?? envValue('LAYERLOOP_PORT') ?? d.port,
    token: flag('token') ?? envValue('LAYERLOOP_TOKEN') ?? null,
    dataDir: path.resolve(flag('data-dir') ?? envValue('LAYERLOOP_DATA_DIR') ?? d.dataDir),
    modelDir: path.resolve(chooseModelDir(flag('model'), flag('model-dir'), envValue('LAYERLOOP_MODEL'), envValue('LAYERLOOP_MODEL_DIR'), d.modelsRoot) ?? d.modelDir),
    segmenterDir: path.resolve(flag('segmenter') ?? envValue('LAYERLOOP_SEGMENTER') ?? d.segmenterDir),
    modelsRoot: d.modelsRoot,
    device: flag('device') ?? envValue('LAYERLOOP_DEVICE') ?? d.device,
    batch: flag('batch') ?? envValue('LAYERLOOP_BATCH') ?? d.batch,
    maxQueue: flag('max-queue') ?? envValue('LAYERLOOP_MAX_QUEUE') ?? d.maxQueue,
    maxQueuePerDocument: flag('max-queue-per-document') ?? envValue('LAYERLOOP_MAX_QUEUE_PER_DOCUMENT') ?? null,
    queueWaitSeconds: flag('queue-wait') ?? envValue('LAYERLOOP_QUEUE_WAIT') ?? d.queueWait,
    allowOrigins: origins.flatMap((o) => o.split(',')).map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== ''),
    store: flag('store') ?? envValue('LAYERLOOP_STORE') ?? null,
    blobs: flag('blobs') ?? envValue('LAYERLOOP_BLOBS') ?? null,
    queue: flag('queue') ?? envValue('LAYERLOOP_QUEUE') ?? null,
    role: positionals[0] ?? 'all',
    jobLeaseSeconds: flag('job-lease') ?? envValue('LAYERLOOP_JOB_LEASE') ?? d.jobLease,
    engineThreads: flag('engine-threads') ?? envValue('LAYERLOOP_ENGINE_THREADS') ?? null,
    usersOnly: values['users-only'] === true || ['1', 'true', 'yes'].includes((envValue('LAYERLOOP_USERS_ONLY') ?? '').toLowerCase()),
    maxQueuedPerUser: flag('max-queued-per-user') ?? envValue('LAYERLOOP_MAX_QUEUED_PER_USER') ?? d.maxQueuedPerUser,
    maxUploadsPerUser: flag('max-uploads-per-user') ?? envValue('LAYERLOOP_MAX_UPLOADS_PER_USER') ?? d.maxUploadsPerUser,
    maxStoredMibPerUser: flag('max-stored-mib-per-user') ?? envValue('LAYERLOOP_MAX_STORED_MIB_PER_USER') ?? null,
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${formatIssues(parsed.error)}\n${USAGE}`);
  const { maxQueuePerDocument, maxStoredMibPerUser, ...rest } = parsed.data;
  const config: Config = {
    ...rest,
    maxStoredBytesPerUser: maxStoredMibPerUser === null ? null : maxStoredMibPerUser * 1024 * 1024,
    maxQueuePerDocument: Math.min(maxQueuePerDocument ?? defaultPerDocument(rest.maxQueue), rest.maxQueue),
    allowOrigins: [...new Set(rest.allowOrigins)],
  };
  if (config.role !== 'all' && (config.queue === null || config.store === null)) {
    throw new ConfigError(
      `layerloop ${config.role} works with other processes, so it needs the shared queue and store: pass --queue redis://HOST:6379 ` +
        `and --store postgres://USER:PASSWORD@HOST/DATABASE (and --blobs s3://… unless every process sees the same --data-dir), ` +
        `or leave out '${config.role}' to run the API and a worker in this one process`,
    );
  }
  if (config.usersOnly && config.token !== null) {
    throw new ConfigError('--users-only accepts personal tokens only: leave out --token (LAYERLOOP_TOKEN), or leave out --users-only');
  }
  if (config.token === null && !config.usersOnly && !isLoopbackHost(config.host)) {
    throw new ConfigError(
      `refusing to listen on ${config.host} without a token: anyone who can reach it could use the server. ` +
        `Pass --token SECRET (or set LAYERLOOP_TOKEN), or --users-only to accept personal tokens only (npm run users), or listen on 127.0.0.1`,
    );
  }
  return { config: Object.freeze({ ...config }), help: values.help === true };
}
