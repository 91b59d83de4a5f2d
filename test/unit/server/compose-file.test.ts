/**
 * compose.yaml (the team server on one Docker host), checked without Docker (`docker compose config` is not
 * available where this project is built): its services, the API node's and worker's commands parsed by the
 * server's own flag parser (server/config.ts), every LAYERLOOP_ variable one the server reads, and the URLs, names
 * and credentials of the queue, store and bucket matching the services that provide them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type Config } from '../../../server/config';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/**
 * Compose's variable interpolation (`${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`,
 * `${NAME?message}`, `$$` for a literal `$`) over the file's text, with `vars` as the .env.
 */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}])*))?\}/g, (whole, name: string | undefined, colon: string, op: string, arg: string) => {
    if (name === undefined) return '$';
    const value = vars[name];
    const unset = value === undefined || (colon === ':' && value === '');
    if (op === '-') return unset ? arg : value;
    if (op === '?') {
      if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return value;
    }
    return value ?? '';
  });
}

/** The variables compose refuses to start without (`${NAME:?...}`). */
function requiredVariables(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g)].map((m) => m[1]))].sort();
}

interface Service {
  image?: string;
  build?: { context: string; dockerfile_inline: string; target: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { resources: { reservations: { devices: { driver: string; count: number; capabilities: string[] }[] } } };
}

const ENV = { POSTGRES_PASSWORD: 'pg-secret-1', MINIO_ROOT_PASSWORD: 'minio-secret-1', LAYERLOOP_TOKEN: 'team-token-1' };
const text = fs.readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8');
const compose = parseYaml(interpolate(text, ENV), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const { services } = compose;

/**
 * A server command (`node [node flags] dist/server/main.js ARGS`) as the server parses it, in its environment, in
 * the image (the repository is /app).
 */
function serverConfig(service: Service, env: Record<string, string> = service.environment ?? {}, repoRoot = '/app'): Config {
  const command = service.command ?? [];
  const main = command.indexOf('dist/server/main.js');
  expect(command[0]).toBe('node');
  expect(main).toBeGreaterThan(0);
  return parseConfig(command.slice(main + 1), env, repoRoot).config;
}

/**
 * The config, or the message it is refused with: what an environment variable changes shows in one or the other
 * (parsed elsewhere than /app, so that a variable repeating a default still shows).
 */
function outcome(service: Service, env: Record<string, string>): string {
  try {
    return JSON.stringify(serverConfig(service, env, '/elsewhere'));
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  }
}

describe('compose.yaml', () => {
  test('has the team server: redis, postgres, minio and its bucket, an API node and a GPU worker', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'minio', 'minio-setup', 'postgres', 'redis', 'worker']);
    expect(Object.keys(compose.volumes).sort()).toEqual(['minio-data', 'postgres-data', 'redis-data']);
    // .env must hold the secrets: compose refuses to start without them
    expect(requiredVariables(text)).toEqual(['LAYERLOOP_TOKEN', 'MINIO_ROOT_PASSWORD', 'POSTGRES_PASSWORD']);
    expect(() => interpolate(text, { ...ENV, POSTGRES_PASSWORD: '' })).toThrow(/required variable POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD in \.env/);
  });

  test("the API node's command is `serve` off loopback with a token, on the queue, store and bucket of these services", () => {
    const api = serverConfig(services.api);
    expect(api).toMatchObject({ role: 'serve', host: '0.0.0.0', port: 7860, token: ENV.LAYERLOOP_TOKEN, queue: 'redis://redis:6379/0' });
    expect(services.api.ports).toEqual(['7860:7860']);
    expect(services.api.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:7860/trpc/health');
  });

  test('the worker is `worker --device cuda --batch N` with one NVIDIA GPU reserved, its health on its own port', () => {
    const worker = serverConfig(services.worker);
    expect(worker).toMatchObject({ role: 'worker', host: '0.0.0.0', port: 7870, device: 'cuda', token: ENV.LAYERLOOP_TOKEN });
    expect(worker.batch).toBeGreaterThan(1); // its jobs share the UNet's runs (server/jobs/redis/worker.ts runs `batch` at once)
    expect(services.worker.deploy?.resources.reservations.devices).toEqual([{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }]);
    expect(services.worker.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:7870/ready');
    expect(services.worker.volumes).toEqual(['./models:/app/models:ro']);
    expect(worker.modelDir).toBe('/app/models/tiny-pix2pix');
    expect(fs.existsSync(path.join(ROOT, 'models', path.relative('/app/models', worker.modelDir), 'unet'))).toBe(true); // the mounted ./models has it
  });

  test('every LAYERLOOP_ variable is one the server reads (each changes its configuration); the others are the S3 credentials', () => {
    for (const name of ['api', 'worker']) {
      const service = services[name];
      const env = service.environment ?? {};
      for (const variable of Object.keys(env)) {
        if (!variable.startsWith('LAYERLOOP_')) continue;
        const without = Object.fromEntries(Object.entries(env).filter(([k]) => k !== variable));
        expect({ variable, changes: outcome(service, env) !== outcome(service, without) }).toEqual({ variable, changes: true });
      }
      expect(Object.keys(env).filter((k) => !k.startsWith('LAYERLOOP_')).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
    }
  });

  test('the store, bucket and credentials are those postgres, minio and minio-setup provide', () => {
    const config = serverConfig(services.api);
    const pg = services.postgres.environment!;
    const store = new URL(config.store!.url);
    expect([store.hostname, store.port, decodeURIComponent(store.username), decodeURIComponent(store.password), store.pathname]).toEqual([
      'postgres',
      '5432',
      pg.POSTGRES_USER,
      pg.POSTGRES_PASSWORD,
      `/${pg.POSTGRES_DB}`,
    ]);
    expect(pg.POSTGRES_PASSWORD).toBe(ENV.POSTGRES_PASSWORD);
    expect(services.postgres.image).toMatch(/^postgres:(1[0-9])$/); // tested with 15; nothing newer than 10 is used

    expect(config.blobs).toMatchObject({ kind: 's3', endpoint: 'http://minio:9000', forcePathStyle: true });
    const minio = services.minio.environment!;
    const env = services.api.environment!;
    expect([env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY]).toEqual([minio.MINIO_ROOT_USER, minio.MINIO_ROOT_PASSWORD]);
    const setup = services['minio-setup'].entrypoint!.join(' ');
    expect(setup).toContain(`mc alias set layerloop http://minio:9000 "${minio.MINIO_ROOT_USER}" "${minio.MINIO_ROOT_PASSWORD}"`);
    expect(setup).toContain(`mc mb --ignore-existing layerloop/${config.blobs!.bucket}`);
    // BullMQ refuses a Redis that may evict its keys
    expect(services.redis.command).toEqual(expect.arrayContaining(['--maxmemory-policy', 'noeviction']));
    // the worker sees exactly what the API node sees
    expect(services.worker.environment).toEqual(services.api.environment);
  });

  test('the API node and the worker start after the services they need: healthy, and the bucket made', () => {
    for (const name of ['api', 'worker']) {
      expect(services[name].depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
        'minio-setup': { condition: 'service_completed_successfully' },
      });
    }
    expect(services['minio-setup'].depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    for (const service of Object.values(services)) for (const dependency of Object.keys(service.depends_on ?? {})) expect(Object.keys(services)).toContain(dependency);
  });

  test("the image's stages are the targets the services build, and what it copies is in the repository", () => {
    for (const [name, target] of [
      ['api', 'api'],
      ['worker', 'gpu'],
    ] as const) {
      const build = services[name].build!;
      expect(build.target).toBe(target);
      expect(build.dockerfile_inline).toMatch(new RegExp(`^FROM \\S+ AS ${target}$`, 'm'));
    }
    const dockerfile = services.api.build!.dockerfile_inline;
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(' '));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'server', 'shared', 'models']));
    for (const file of copied) expect({ file, exists: fs.existsSync(path.join(ROOT, file)) }).toEqual({ file, exists: true });
    // the build runs the repository's own scripts
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const m of dockerfile.matchAll(/npm run (\S+)/g)) expect(scripts).toHaveProperty(m[1]);
    // the GPU stage brings onnxruntime's CUDA provider (the npm package bundles the CPU one only)
    expect(dockerfile).toContain('npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12');
  });

  test('interpolation follows compose: defaults, required values, $$', () => {
    expect(interpolate('${A:-x} ${A-y} ${B:-z} ${B-w} $${A} ${C}', { A: '', B: 'b' })).toBe('x  b b ${A} ');
    expect(() => interpolate('${A:?say A}', {})).toThrow(/required variable A is missing a value: say A/);
    expect(interpolate('${A?say A}', { A: '' })).toBe('');
  });
});
