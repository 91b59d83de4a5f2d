import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, DEFAULT_BATCH, isLoopbackHost, parseConfig, shippedModels } from '../../../server/config';
import { MAX_QUEUE_LENGTH } from '../../../shared/protocol';

const REPO = path.resolve('/repo');
const parse = (argv: string[] = [], env: Record<string, string> = {}) => parseConfig(argv, env, REPO).config;

describe('server config', () => {
  test('defaults', () => {
    const c = parse();
    expect(c).toEqual({
      host: '127.0.0.1',
      port: 7860,
      token: null,
      dataDir: path.join(REPO, 'data'),
      modelDir: path.join(REPO, 'models', 'tiny-pix2pix'),
      segmenterDir: path.join(REPO, 'models', 'tiny-clipseg'),
      modelsRoot: path.join(REPO, 'models'),
      device: 'auto',
      batch: DEFAULT_BATCH,
      maxQueue: MAX_QUEUE_LENGTH,
      maxQueuePerDocument: MAX_QUEUE_LENGTH / 4,
      queueWaitSeconds: 30,
      allowOrigins: [],
      store: null,
      blobs: null,
      queue: null,
      role: 'all',
      jobLeaseSeconds: 30,
      engineThreads: null,
      usersOnly: false,
      maxQueuedPerUser: 16,
      maxUploadsPerUser: 32,
      maxStoredBytesPerUser: null,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  test('--users-only: personal tokens only, allowed off loopback without --token, refused beside --token; per-user limits', () => {
    expect(parse(['--host', '0.0.0.0', '--users-only'])).toMatchObject({ host: '0.0.0.0', usersOnly: true, token: null });
    expect(parse(['--host', '0.0.0.0'], { LAYERLOOP_USERS_ONLY: '1' })).toMatchObject({ usersOnly: true });
    expect(() => parse(['--users-only', '--token', 'abcdefgh'])).toThrow(/--users-only accepts personal tokens only: leave out --token/);
    expect(() => parse(['--host', '0.0.0.0'])).toThrow(/or --users-only to accept personal tokens only/);
    expect(parse(['--max-queued-per-user', '3', '--max-uploads-per-user', '2', '--max-stored-mib-per-user', '5'])).toMatchObject({
      maxQueuedPerUser: 3,
      maxUploadsPerUser: 2,
      maxStoredBytesPerUser: 5 * 1024 * 1024,
    });
    expect(() => parse(['--max-queued-per-user', '0'])).toThrow(/max-queued-per-user must be at least 1/);
  });

  test('environment over defaults, flags over environment; empty variables count as unset', () => {
    const env = { LAYERLOOP_PORT: '9000', LAYERLOOP_DEVICE: 'cpu', LAYERLOOP_TOKEN: '', LAYERLOOP_DATA_DIR: '/var/ll' };
    expect(parse([], env)).toMatchObject({ port: 9000, device: 'cpu', token: null, dataDir: '/var/ll' });
    expect(parse(['--port', '0', '--device', 'cuda', '--max-queue', '3'], env)).toMatchObject({ port: 0, device: 'cuda', maxQueue: 3 });
  });

  test('--model names a shipped model (a folder of <repo>/models with model_index.json); --model-dir any folder', () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'll-config-'));
    try {
      for (const name of ['tiny-pix2pix', 'tiny-flux2-klein']) {
        fs.mkdirSync(path.join(repo, 'models', name), { recursive: true });
        fs.writeFileSync(path.join(repo, 'models', name, 'model_index.json'), '{}');
      }
      fs.mkdirSync(path.join(repo, 'models', 'not-a-model'));
      const at = (argv: string[], env: Record<string, string> = {}) => parseConfig(argv, env, repo).config.modelDir;
      expect(at(['--model', 'tiny-flux2-klein'])).toBe(path.join(repo, 'models', 'tiny-flux2-klein'));
      expect(at([], { LAYERLOOP_MODEL: 'tiny-flux2-klein' })).toBe(path.join(repo, 'models', 'tiny-flux2-klein'));
      // flags over environment, whichever of the two each names
      expect(at(['--model-dir', '/opt/m'], { LAYERLOOP_MODEL: 'tiny-flux2-klein' })).toBe('/opt/m');
      expect(at(['--model', 'tiny-pix2pix'], { LAYERLOOP_MODEL_DIR: '/opt/m' })).toBe(path.join(repo, 'models', 'tiny-pix2pix'));
      expect(shippedModels(path.join(repo, 'models'))).toEqual(['tiny-flux2-klein', 'tiny-pix2pix']);
      expect(() => at(['--model', 'tiny-klein'])).toThrow(`--model "tiny-klein" is not a shipped model; the models in ${path.join(repo, 'models')} are: tiny-flux2-klein, tiny-pix2pix (use --model-dir for a folder elsewhere)`);
      expect(() => at(['--model', 'not-a-model'])).toThrow(/is not a shipped model/);
      expect(() => at(['--model', '../models/tiny-pix2pix'])).toThrow(/is not a shipped model/);
      expect(() => at(['--model', 'tiny-pix2pix', '--model-dir', '/opt/m'])).toThrow('pass --model NAME (a shipped model) or --model-dir DIR (a folder), not both');
      expect(() => at([], { LAYERLOOP_MODEL: 'tiny-pix2pix', LAYERLOOP_MODEL_DIR: '/opt/m' })).toThrow(/not both/);
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
    }
  });

  test('--segmenter names the masks-from-words model (flag over LAYERLOOP_SEGMENTER), resolved to an absolute path', () => {
    expect(parse([], { LAYERLOOP_SEGMENTER: '/opt/clipseg' }).segmenterDir).toBe('/opt/clipseg');
    expect(parse(['--segmenter', 'seg'], { LAYERLOOP_SEGMENTER: '/opt/clipseg' }).segmenterDir).toBe(path.resolve('seg'));
  });

  test('malformed values and unknown flags are refused with what to fix', () => {
    expect(() => parse(['--port', '70000'])).toThrow(/port must be at most 65535/);
    expect(() => parse(['--port', 'http'])).toThrow(/port must be a whole number/);
    expect(() => parse(['--device', 'tpu'])).toThrow(/device must be one of auto, cuda, cpu, got "tpu"/);
    expect(() => parse(['--max-queue', '0'])).toThrow(/max-queue must be at least 1/);
    expect(() => parse(['--token', 'short'])).toThrow(/token must be at least 8 characters/);
    expect(() => parse(['--bogus'])).toThrow(ConfigError);
  });

  test('--batch (LAYERLOOP_BATCH): edits computed at once; 1 turns batching off', () => {
    expect(parse(['--batch', '1']).batch).toBe(1);
    expect(parse([], { LAYERLOOP_BATCH: '8' }).batch).toBe(8);
    expect(parse(['--batch', '2'], { LAYERLOOP_BATCH: '8' }).batch).toBe(2);
    expect(() => parse(['--batch', '0'])).toThrow(/batch must be at least 1/);
    expect(() => parse(['--batch', 'many'])).toThrow(/batch must be a whole number between 1 and 64, got "many"/);
  });

  test('per-document queue cap: a quarter of the queue by default, never above it', () => {
    expect(parse(['--max-queue', '8']).maxQueuePerDocument).toBe(2);
    expect(parse(['--max-queue', '1']).maxQueuePerDocument).toBe(1);
    expect(parse(['--max-queue', '8', '--max-queue-per-document', '20']).maxQueuePerDocument).toBe(8);
    expect(parse([], { LAYERLOOP_MAX_QUEUE_PER_DOCUMENT: '3' }).maxQueuePerDocument).toBe(3);
  });

  test('allowed web origins: repeated flags or a comma-separated variable; origins only', () => {
    expect(parse(['--allow-origin', 'https://a.example', '--allow-origin', 'http://localhost:3000/']).allowOrigins).toEqual(['https://a.example', 'http://localhost:3000']);
    expect(parse([], { LAYERLOOP_ALLOW_ORIGIN: 'https://a.example, https://b.example:8443' }).allowOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(() => parse(['--allow-origin', 'https://a.example/path'])).toThrow(/allow-origin must be an origin like https:\/\/example\.com/);
    expect(() => parse(['--allow-origin', '*'])).toThrow(/allow-origin must be an origin/);
  });

  test('--store and --blobs (or LAYERLOOP_STORE / LAYERLOOP_BLOBS) name the team backends; malformed ones are refused', () => {
    const env = { LAYERLOOP_STORE: 'postgres://ll:pw@db:5432/layerloop', LAYERLOOP_BLOBS: 's3://ll-blobs?endpoint=http://minio:9000' };
    expect(parse([], env)).toMatchObject({
      store: { kind: 'postgres', url: 'postgres://ll:pw@db:5432/layerloop' },
      blobs: { kind: 's3', bucket: 'll-blobs', prefix: '', endpoint: 'http://minio:9000', region: 'us-east-1', forcePathStyle: true },
    });
    expect(parse(['--store', 'postgresql://other/db'], env).store).toEqual({ kind: 'postgres', url: 'postgresql://other/db' });
    expect(() => parse(['--store', 'sqlite:///tmp/x'])).toThrow(/^invalid configuration:\nstore must be a postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE URL \(leave it out for the embedded SQLite store\), got sqlite:\/\/…\nusage:/);
    expect(() => parse([], { LAYERLOOP_BLOBS: 's3://b?endpoint=x' })).toThrow(/blobs names the bucket "b", which is not a bucket name/);
  });

  test('a non-loopback host needs a token', () => {
    expect(() => parse(['--host', '0.0.0.0'])).toThrow(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(() => parse([], { LAYERLOOP_HOST: '192.168.1.5' })).toThrow(ConfigError);
    expect(parse(['--host', '0.0.0.0', '--token', 'long-enough-secret']).token).toBe('long-enough-secret');
    expect(parse(['--host', 'localhost']).host).toBe('localhost');
  });

  test('loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.0.1', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe('roles and the shared queue', () => {
  const team = ['--queue', 'redis://queue.internal:6379', '--store', 'postgres://ll:pw@db.internal/layerloop'];

  test('serve and worker take the queue and store from flags or the environment', () => {
    expect(parse(['serve', ...team])).toMatchObject({ role: 'serve', queue: 'redis://queue.internal:6379' });
    expect(parse(['worker'], { LAYERLOOP_QUEUE: 'rediss://:secret@cache:6380/2', LAYERLOOP_STORE: 'postgres://ll:pw@db/ll' })).toMatchObject({ role: 'worker', queue: 'rediss://:secret@cache:6380/2' });
    expect(parse(['--queue', 'redis://localhost:6379'])).toMatchObject({ role: 'all', queue: 'redis://localhost:6379' });
  });

  test('a role without the shared queue and store, an unknown role or a queue that is not Redis say what to fix', () => {
    expect(() => parse(['serve'])).toThrow(/layerloop serve works with other processes, so it needs the shared queue and store: pass --queue redis:\/\/HOST:6379/);
    expect(() => parse(['worker', '--queue', 'redis://q:6379'])).toThrow(/needs the shared queue and store/);
    expect(() => parse(['server', ...team])).toThrow(/unexpected argument\(s\) "server": the only one is the role, serve or worker/);
    expect(() => parse(['serve', 'worker', ...team])).toThrow(ConfigError);
    expect(() => parse(['--queue', 'http://q:6379'])).toThrow(/queue must be a redis:\/\/ or rediss:\/\/ URL/);
  });
});

