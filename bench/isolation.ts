/**
 * Whether timing tells what another workspace holds: the real server (dist/server/main.js, its own temp data
 * dir, two users made with the admin CLI). Tenant A uploads an image and runs an edit; tenant B then asks, in
 * alternation, for A's things and for unknown things of the same kind (blob GET, documents.history, jobs.get),
 * --rounds times each. Prints per question the median and p90 answer time of both, and their ratio; the answers
 * themselves are checked to be 404 (test/integration/isolation.test.ts checks they are identical).
 *
 *   npm run bench:isolation [-- --rounds 300]
 *
 * Prints one JSON object on stdout; progress on stderr.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchArgs, median, round } from './lib/args';

const REPO = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO, 'dist', 'server', 'main.js');
const USERS = path.join(REPO, 'dist', 'cli', 'users.js');

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function addUser(dataDir: string, name: string): string {
  const out = execFileSync(process.execPath, [USERS, 'add', name, '--workspace', `ws-${name}`, '--data-dir', dataDir], { env: { ...process.env, LAYERLOOP_STORE: '' }, stdio: ['ignore', 'pipe', 'ignore'] });
  return out.toString().trim().split('\n').pop()!;
}

async function startServer(dataDir: string): Promise<{ url: string; stop: () => void }> {
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--data-dir', dataDir, '--device', 'cpu', '--users-only'], { env: { ...process.env, LAYERLOOP_TOKEN: '', LAYERLOOP_HOST: '' } });
  proc.stderr.resume();
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], stop: () => proc.kill('SIGTERM') });
    });
    proc.once('exit', () => reject(new Error('the server exited before listening')));
  });
}

async function main(): Promise<void> {
  const args = benchArgs({ rounds: 300 });
  if (!fs.existsSync(MAIN) || !fs.existsSync(USERS)) throw new Error(`run 'npm run build' first`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-bench-isolation-'));
  const alice = addUser(dataDir, 'alice');
  const bob = addUser(dataDir, 'bob');
  const server = await startServer(dataDir);
  try {
    const ask = async (token: string, url: string, init: RequestInit = {}) => {
      const res = await fetch(`${server.url}${url}`, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } });
      return { status: res.status, text: await res.text() };
    };
    const data = <T>(text: string) => (JSON.parse(text) as { result: { data: T } }).result.data;
    // A's work: an upload, a document, one finished edit
    const pixels = new Uint8Array(64 * 64 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 13) & 255));
    const put = JSON.parse((await ask(alice, '/v1/blobs?width=64&height=64', { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: pixels })).text) as { sha256: string };
    const doc = data<{ documentId: string }>((await ask(alice, '/trpc/documents.open', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ host: 'web', hostDocumentKey: 'a' }) })).text);
    const job = data<{ jobId: string }>(
      (
        await ask(alice, '/trpc/edits.create', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ documentId: doc.documentId, parent: { kind: 'source', imageSha256: put.sha256 }, regions: [{ instruction: 'make it blue', maskSha256: null }], options: { steps: 2 } }),
        })
      ).text,
    );
    for (let i = 0; i < 400; i++) {
      const snap = data<{ state: string }>((await ask(alice, `/trpc/jobs.get?input=${encodeURIComponent(JSON.stringify({ jobId: job.jobId }))}`)).text);
      if (snap.state === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const unknownSha = () => randomUUID().replace(/-/g, '').padEnd(64, 'a').slice(0, 64);
    const questions: { name: string; url: (id: string) => string; foreign: string; unknown: () => string }[] = [
      { name: 'GET /v1/blobs/:sha256', url: (id) => `/v1/blobs/${id}`, foreign: put.sha256, unknown: unknownSha },
      { name: 'documents.history', url: (id) => `/trpc/documents.history?input=${encodeURIComponent(JSON.stringify({ documentId: id }))}`, foreign: doc.documentId, unknown: randomUUID },
      { name: 'jobs.get', url: (id) => `/trpc/jobs.get?input=${encodeURIComponent(JSON.stringify({ jobId: id }))}`, foreign: job.jobId, unknown: randomUUID },
    ];
    const results = [];
    for (const q of questions) {
      const times = { foreign: [] as number[], unknown: [] as number[] };
      const statuses = new Set<number>();
      for (let r = 0; r < args.rounds; r++) {
        // alternate which goes first, so neither always finds the caches warmer
        const order = r % 2 === 0 ? (['foreign', 'unknown'] as const) : (['unknown', 'foreign'] as const);
        for (const kind of order) {
          const id = kind === 'foreign' ? q.foreign : q.unknown();
          const t0 = performance.now();
          const answer = await ask(bob, q.url(id));
          times[kind].push(performance.now() - t0);
          statuses.add(answer.status);
        }
      }
      const f = median(times.foreign);
      const u = median(times.unknown);
      results.push({
        question: q.name,
        statuses: [...statuses],
        foreignMs: { median: round(f, 3), p90: round(percentile(times.foreign, 90), 3) },
        unknownMs: { median: round(u, 3), p90: round(percentile(times.unknown, 90), 3) },
        medianRatio: round(f / u, 3),
      });
      process.stderr.write(`${q.name}: other workspace ${round(f, 3)} ms, unknown ${round(u, 3)} ms (median of ${args.rounds})\n`);
    }
    process.stdout.write(`${JSON.stringify({ benchmark: 'isolation-timing', rounds: args.rounds, results, machine: { cpus: os.cpus().length, loadAvg: os.loadavg().map((v) => round(v, 2)) } }, null, 2)}\n`);
  } finally {
    server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
