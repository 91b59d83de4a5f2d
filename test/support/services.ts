/**
 * Real backing services for the backend suites (test/backends/): PostgreSQL, Redis and an S3-compatible server,
 * each started by the test file that needs it, on 127.0.0.1 and a free port, in a temporary directory that is
 * removed afterwards. Never imitations: the suites talk to the real servers over the network.
 *
 * - PostgreSQL: a throwaway cluster (initdb + postgres from Debian's postgresql package, or any on PATH). It
 *   refuses to run as root, so as root it runs as the `postgres` user (spawn's uid/gid). Each test gets its own
 *   database (createDatabase), so tests never see each other's rows.
 * - Redis: redis-server without persistence.
 * - S3: s3rver (an npm devDependency) in this process; the docs name MinIO, R2 and AWS S3 for production. Each
 *   test gets its own bucket (createBucket).
 *
 * A CI that runs the services itself names them instead (nothing is started then):
 *   LAYERLOOP_TEST_POSTGRES_URL  postgres://user:password@host:port/db of a superuser role (the suites create
 *                                a database per test, and write behind the store with triggers off)
 *   LAYERLOOP_TEST_REDIS_URL     redis://host:port
 *   LAYERLOOP_TEST_S3_ENDPOINT   http(s)://host:port of an S3 API where the AWS_ACCESS_KEY_ID /
 *                                AWS_SECRET_ACCESS_KEY (and AWS_REGION) in the environment may create buckets
 *
 * A service that is neither installed nor named skips its suites with a warning, except in CI (process.env.CI
 * set, as .ci/run does), where the suites fail: .ci/run installs them first (as test/support/browser.ts does for
 * Chromium).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Client as PgClient } from 'pg';

export type ServiceName = 'postgres' | 'redis' | 's3';

const inCI = Boolean(process.env.CI);
const START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// finding the services

/** Debian's postgresql-NN (highest version first), then whatever is on PATH. */
function postgresBinDir(): string | null {
  const debian = '/usr/lib/postgresql';
  const versions = fs.existsSync(debian) ? fs.readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const dir = path.join(debian, version, 'bin');
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'))) return dir;
  }
  const onPath = which('initdb');
  return onPath && fs.existsSync(path.join(path.dirname(onPath), 'postgres')) ? path.dirname(onPath) : null;
}

function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    if (dir !== '' && fs.existsSync(file)) return file;
  }
  return null;
}

function s3rverInstalled(): boolean {
  try {
    require.resolve('s3rver');
    return true;
  } catch {
    return false;
  }
}

const env = (name: string): string | undefined => (process.env[name]?.trim() ? process.env[name]!.trim() : undefined);

/** Why a service cannot be had here, or null when it can (named in the environment, or installed). */
export function missingService(name: ServiceName): string | null {
  switch (name) {
    case 'postgres':
      return env('LAYERLOOP_TEST_POSTGRES_URL') || postgresBinDir()
        ? null
        : 'PostgreSQL is not installed (apt-get install postgresql) and LAYERLOOP_TEST_POSTGRES_URL is not set';
    case 'redis':
      return env('LAYERLOOP_TEST_REDIS_URL') || which('redis-server') ? null : 'redis-server is not installed (apt-get install redis-server) and LAYERLOOP_TEST_REDIS_URL is not set';
    case 's3':
      return env('LAYERLOOP_TEST_S3_ENDPOINT') || s3rverInstalled() ? null : 's3rver is not installed (npm ci installs it) and LAYERLOOP_TEST_S3_ENDPOINT is not set';
  }
}

// ---------------------------------------------------------------------------------------------
// the services

export interface PostgresService {
  /** a URL of the server's administrative database (CREATE DATABASE works there) */
  readonly adminUrl: string;
  /** the user a server started here runs as (its files' owner); null for one named by LAYERLOOP_TEST_POSTGRES_URL */
  readonly localUser: { uid: number; gid: number } | null;
  /** A new empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Makes a database refuse new connections and ends its open ones, as an outage would (`allow`: lets them in again). */
  setConnections(url: string, allow: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisService {
  readonly url: string;
  stop(): Promise<void>;
}

export interface S3Service {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** A new empty bucket; its name. */
  createBucket(): Promise<string>;
  /** The --blobs URL of a bucket (credentials travel in the environment: env()). */
  blobsUrl(bucket: string, prefix?: string): string;
  /** AWS_* variables a child process needs to reach this server. */
  env(): Record<string, string>;
  /** A client for looking at (and damaging) buckets behind the store's back. */
  client(): S3Client;
  stop(): Promise<void>;
}

export interface ServiceSet {
  postgres: PostgresService;
  redis: RedisService;
  s3: S3Service;
}

const uniqueName = (prefix: string): string => `${prefix}${randomBytes(6).toString('hex')}`;

/** A port nobody listens on right now (the service binds it a moment later). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Children this process started: stopped hard if the test process exits without stopping them. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Spawns `command` and resolves once `ready` appears in its output (rejects with that output on exit or timeout). */
function spawnUntil(command: string, args: string[], ready: RegExp, options: { uid?: number; gid?: number; cwd?: string } = {}): Promise<ChildProcess> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(command)} did not start in ${START_TIMEOUT_MS / 1000} s:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(command)} exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`));
    });
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The uid/gid PostgreSQL's binaries must run as: ours, unless we are root (it refuses root). */
function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as (PostgreSQL refuses to run as root): apt-get install postgresql creates it');
  }
}

async function startPostgres(): Promise<PostgresService> {
  const external = env('LAYERLOOP_TEST_POSTGRES_URL');
  if (external) return postgresAt(external, null, async () => {});
  const bin = postgresBinDir();
  if (!bin) throw new Error(missingService('postgres')!);
  const user = postgresUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-postgres-'));
  if (user.uid !== undefined) fs.chownSync(dir, user.uid, user.gid!);
  const data = path.join(dir, 'data');
  try {
    execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...user, cwd: dir, stdio: 'pipe' });
    const port = await freePort();
    // fsync off: a throwaway cluster; the store's durability is PostgreSQL's, not something these tests can observe
    const server = await spawnUntil(
      path.join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      /database system is ready to accept connections/,
      { ...user, cwd: dir },
    );
    const localUser = { uid: user.uid ?? process.getuid!(), gid: user.gid ?? process.getgid!() };
    return postgresAt(`postgres://postgres@127.0.0.1:${port}/postgres`, localUser, async () => {
      await stopChild(server, 'SIGINT'); // fast shutdown: ends open sessions
      fs.rmSync(dir, { recursive: true, force: true });
    });
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function postgresAt(adminUrl: string, localUser: PostgresService['localUser'], shutdown: () => Promise<void>): PostgresService {
  const created: string[] = [];
  const admin = async <T>(fn: (client: PgClient) => Promise<T>): Promise<T> => {
    const client = new PgClient({ connectionString: adminUrl });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    adminUrl,
    localUser,
    async createDatabase() {
      const name = uniqueName('layerloop_test_');
      await admin((client) => client.query(`CREATE DATABASE ${name}`));
      created.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async setConnections(url, allow) {
      const name = new URL(url).pathname.slice(1);
      await admin(async (client) => {
        await client.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${allow}`);
        if (!allow) await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      });
    },
    async stop() {
      // a server we did not start keeps running: leave it as we found it
      if (env('LAYERLOOP_TEST_POSTGRES_URL')) await admin(async (client) => {
        for (const name of created) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      await shutdown();
    },
  };
}

async function startRedis(): Promise<RedisService> {
  const external = env('LAYERLOOP_TEST_REDIS_URL');
  if (external) return { url: external, stop: async () => {} };
  const server = which('redis-server');
  if (!server) throw new Error(missingService('redis')!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-redis-'));
  const port = await freePort();
  try {
    const child = await spawnUntil(server, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], /Ready to accept connections/, { cwd: dir });
    return {
      url: `redis://127.0.0.1:${port}`,
      stop: async () => {
        await stopChild(child, 'SIGTERM');
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startS3(): Promise<S3Service> {
  const region = env('AWS_REGION') ?? 'us-east-1';
  const external = env('LAYERLOOP_TEST_S3_ENDPOINT');
  if (external) {
    const accessKeyId = env('AWS_ACCESS_KEY_ID');
    const secretAccessKey = env('AWS_SECRET_ACCESS_KEY');
    if (!accessKeyId || !secretAccessKey) throw new Error('LAYERLOOP_TEST_S3_ENDPOINT is set: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for it too');
    return s3At(external, region, { accessKeyId, secretAccessKey }, async () => {});
  }
  // required here, not imported: only the suites that use it pay for loading it
  const S3rver = require('s3rver') as typeof import('s3rver');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir });
  const { port } = (await server.run()) as net.AddressInfo;
  // s3rver checks signatures made with its fixed key pair
  return s3At(`http://127.0.0.1:${port}`, region, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

function s3At(endpoint: string, region: string, credentials: S3Service['credentials'], shutdown: () => Promise<void>): S3Service {
  const client = () => new S3Client({ endpoint, region, credentials, forcePathStyle: true });
  const admin = client();
  return {
    endpoint,
    region,
    credentials,
    async createBucket() {
      const bucket = uniqueName('layerloop-test-');
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    blobsUrl: (bucket, prefix = '') => `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=${region}`,
    env: () => ({ AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_REGION: region }),
    client,
    async stop() {
      admin.destroy();
      await shutdown();
    },
  };
}

const STARTERS: { [K in ServiceName]: () => Promise<ServiceSet[K]> } = { postgres: startPostgres, redis: startRedis, s3: startS3 };

/** Starts one service outside jest (the benchmarks); throws with the reason when it is missing. */
export function startService<N extends ServiceName>(name: N): Promise<ServiceSet[N]> {
  const missing = missingService(name);
  if (missing) return Promise.reject(new Error(missing));
  return STARTERS[name]();
}

// ---------------------------------------------------------------------------------------------

/**
 * `describe` with the named services started before its tests (once per file) and stopped after them;
 * `services()` returns them inside tests and hooks. Where a service is missing: `describe.skip` with a warning
 * naming the suite, except in CI, where every test fails with the reason.
 */
export function describeWithServices<const N extends ServiceName>(name: string, needs: readonly N[], fn: (services: () => Pick<ServiceSet, N>) => void): void {
  const missing = needs.map(missingService).filter((reason): reason is string => reason !== null);
  if (missing.length > 0 && !inCI) {
    console.warn(`${name}: SKIPPED, ${missing.join('; ')}. In CI it fails instead.`);
    describe.skip(name, () => fn(() => ({}) as Pick<ServiceSet, N>));
    return;
  }
  describe(name, () => {
    const started: Partial<ServiceSet> = {};
    let failure: Error | null = null;
    beforeAll(async () => {
      if (missing.length > 0) {
        failure = new Error(`${missing.join('; ')}: CI must provide it (.ci/run installs postgresql and redis-server with apt-get)`);
        throw failure;
      }
      const results = await Promise.allSettled(needs.map(async (need) => Object.assign(started, { [need]: await STARTERS[need]() })));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) {
        failure = rejected.reason instanceof Error ? rejected.reason : new Error(String(rejected.reason));
        throw failure;
      }
    }, 2 * START_TIMEOUT_MS);
    afterAll(async () => {
      await Promise.all(Object.values(started).map((service) => service.stop()));
    });
    fn(() => {
      if (failure) throw failure;
      return started as Pick<ServiceSet, N>;
    });
  });
}
