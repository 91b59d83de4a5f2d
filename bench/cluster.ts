/**
 * A team server under clients, on loopback: Redis + PostgreSQL (started here, as the tests start them), blobs in
 * one shared directory, 2 API nodes (`serve`) and workers (`worker --engine-threads T`, so two workers split the
 * machine's cores instead of fighting over them). --clients clients, spread over both API nodes, each its own
 * document, run --chain-edit chains (upload, edit it, continue from the result) for --duration s per phase.
 *
 * Phases: 1 worker with --batch 1 and 1 worker with --batch B, alternating --rounds times (the batching gain:
 * their edits/min, summed over the rounds, so a load that drifts during the run weighs on both alike), then
 * 2 workers with --batch 1 (the scaling against 1 worker with --batch 1).
 *
 * Per phase: edits/min, p50/p95 seconds per edit (edits.create to succeeded), errors (429s are retried after
 * Retry-After and counted apart), lost edits (acknowledged jobs the store does not hold as succeeded with their
 * edits at the end) and duplicate commits (a job with more edit nodes than variations), read from PostgreSQL; and
 * the load average before and after (the machine may be shared).
 *
 *   npm run bench:cluster [-- --clients 16 --duration 60 --steps 8 --chain 3 --threads 1 --batch 4 --rounds 1 --model DIR]
 *
 * Prints one JSON object on stdout; progress on stderr.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTRPCClient, httpLink } from '@trpc/client';
import { Client as PgClient } from 'pg';
import type { AppRouter } from '../server/api/router';
import type { EditRequestInput } from '../shared/protocol';
import { startService } from '../test/support/services';
import { benchArgs, round } from './lib/args';

const REPO = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO, 'dist', 'server', 'main.js');
const SOURCE = path.join(REPO, 'test', 'fixtures', 'shapes-128.png');
const LISTENING = /^layerloop (?:listening|worker) on http:\/\/[^\s]+:(\d+) /m;

const args = benchArgs({ clients: 16, duration: 60, steps: 8, chain: 3, threads: 1, batch: 4, rounds: 1, model: '' });
const say = (line: string) => process.stderr.write(`${line}\n`);
if (!Number.isInteger(args.batch) || args.batch < 2) throw new Error(`--batch must be a whole number of 2 or more (it is compared with --batch 1), got ${args.batch}`);
if (!Number.isInteger(args.rounds) || args.rounds < 1) throw new Error(`--rounds must be a whole number of 1 or more, got ${args.rounds}`);

interface Proc {
  url: string;
  proc: ChildProcessWithoutNullStreams;
}

function start(role: 'serve' | 'worker', common: string[], batch = 1): Promise<Proc> {
  const extra = role === 'worker' ? ['--engine-threads', String(args.threads), '--batch', String(batch), ...(args.model ? ['--model-dir', args.model] : [])] : ['--queue-wait', '60'];
  const proc = spawn(process.execPath, [MAIN, role, '--port', '0', '--device', 'cpu', ...common, ...extra], { cwd: REPO, env: { ...process.env, LAYERLOOP_TOKEN: '' } });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = LISTENING.exec(out);
      if (m) resolve({ url: `http://127.0.0.1:${m[1]}`, proc });
    });
    proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before listening:\n${err}`)));
  });
}

function client(url: string) {
  return createTRPCClient<AppRouter>({ links: [httpLink({ url: `${url}/trpc` })] });
}

async function upload(url: string, png: Buffer): Promise<string> {
  const res = await fetch(`${url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: png });
  if (!res.ok) throw new Error(`upload: ${res.status}`);
  return ((await res.json()) as { sha256: string }).sha256;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** One client: chains of edits against one API node until `until`. */
async function runClient(url: string, index: number, until: number, tally: { latencies: number[]; errors: string[]; refused: number; jobs: string[] }) {
  const api = client(url);
  const { documentId } = await api.documents.open.mutate({ host: 'figma', hostDocumentKey: `bench-cluster:${index}:${Date.now()}` });
  const source = await upload(url, fs.readFileSync(SOURCE));
  while (Date.now() < until) {
    let parent: EditRequestInput['parent'] = { kind: 'source', imageSha256: source };
    for (let k = 0; k < args.chain && Date.now() < until; k++) {
      const began = performance.now();
      let jobId: string;
      try {
        ({ jobId } = await api.edits.create.mutate({ documentId, parent, regions: [{ instruction: `edit ${k}`, maskSha256: null }], options: { steps: args.steps, previewEvery: 0 } }));
      } catch (err) {
        const e = err as { data?: { httpStatus?: number }; message: string };
        if (e.data?.httpStatus === 429) {
          tally.refused++;
          await sleep(1000);
          k--;
          continue;
        }
        tally.errors.push(e.message);
        break;
      }
      tally.jobs.push(jobId);
      for (;;) {
        const s = await api.jobs.get.query({ jobId });
        if (s.state === 'succeeded') {
          tally.latencies.push((performance.now() - began) / 1000);
          parent = { kind: 'edit', editId: s.result!.editIds[0] };
          break;
        }
        if (s.state === 'failed' || s.state === 'cancelled') {
          tally.errors.push(`${s.state}: ${s.error}`);
          break;
        }
        await sleep(50);
      }
    }
  }
}

const loadAverage = () => os.loadavg().map((v) => round(v, 2));

async function phase(workerCount: number, batch: number, common: string[], storeUrl: string) {
  const procs: Proc[] = [];
  try {
    const apis = [await start('serve', common), await start('serve', common)];
    procs.push(...apis);
    for (let i = 0; i < workerCount; i++) procs.push(await start('worker', common, batch));
    for (const api of apis) while ((await fetch(`${api.url}/trpc/health`)).status !== 200) await sleep(200);
    say(`${workerCount} worker(s) with --batch ${batch}: ${args.clients} clients for ${args.duration} s (load average ${loadAverage().join(' ')})`);
    const loadAvgBefore = loadAverage();
    const tally = { latencies: [] as number[], errors: [] as string[], refused: 0, jobs: [] as string[] };
    const began = Date.now();
    const until = began + args.duration * 1000;
    await Promise.all(Array.from({ length: args.clients }, (_, i) => runClient(apis[i % 2].url, i, until, tally)));
    const minutes = (Date.now() - began) / 60_000;

    const pg = new PgClient({ connectionString: storeUrl });
    await pg.connect();
    const { rows } = await pg.query<{ id: string; state: string; nodes: string }>(
      `SELECT j.id, j.state, (SELECT count(*) FROM nodes n WHERE n.job_id = j.id) AS nodes FROM jobs j WHERE j.id = ANY($1::uuid[])`,
      [tally.jobs],
    );
    await pg.end();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const lost = tally.jobs.filter((id) => !byId.has(id) || (byId.get(id)!.state === 'succeeded' && Number(byId.get(id)!.nodes) === 0)).length;
    const duplicates = rows.filter((r) => Number(r.nodes) > 1).length;
    return {
      workers: workerCount,
      batch,
      loadAvgBefore,
      loadAvgAfter: loadAverage(),
      seconds: round(minutes * 60, 1),
      edits: tally.latencies.length,
      editsPerMin: round(tally.latencies.length / minutes, 1),
      p50Seconds: round(percentile(tally.latencies, 50) ?? NaN, 2),
      p95Seconds: round(percentile(tally.latencies, 95) ?? NaN, 2),
      errors: tally.errors.length,
      errorSamples: [...new Set(tally.errors)].slice(0, 3),
      refused429: tally.refused,
      lostEdits: lost,
      duplicateCommits: duplicates,
    };
  } finally {
    for (const p of procs) p.proc.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(MAIN)) throw new Error('run npm run build first');
  const [redis, postgres] = [await startService('redis'), await startService('postgres')];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-bench-cluster-'));
  try {
    const run = async (workers: number, batch: number) => {
      const storeUrl = await postgres.createDatabase();
      const common = ['--queue', redis.url, '--store', storeUrl, '--data-dir', dataDir, '--max-queue', '64'];
      await fetchFlush(redis.url);
      return phase(workers, batch, common, storeUrl);
    };
    const results = []; // in the order they ran
    for (let r = 0; r < args.rounds; r++) results.push(await run(1, 1), await run(1, args.batch));
    const two = await run(2, 1);
    results.push(two);
    const solo = results.filter((p) => p.workers === 1 && p.batch === 1);
    const batched = results.filter((p) => p.workers === 1 && p.batch === args.batch);
    const editsPerMin = (phases: { edits: number; seconds: number }[]) => phases.reduce((n, p) => n + p.edits, 0) / (phases.reduce((s, p) => s + p.seconds, 0) / 60);
    process.stdout.write(
      `${JSON.stringify(
        {
          clients: args.clients,
          durationS: args.duration,
          steps: args.steps,
          chain: args.chain,
          engineThreads: args.threads,
          batch: args.batch,
          rounds: args.rounds,
          cpus: os.cpus().length,
          results,
          // 2 workers against 1, both with --batch 1
          scaling: round(two.editsPerMin / editsPerMin(solo), 2),
          // 1 worker with --batch B against 1 with --batch 1, over the alternating rounds
          batchingGain: round(editsPerMin(batched) / editsPerMin(solo), 2),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await redis.stop();
    await postgres.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Each phase starts on an empty Redis (FLUSHALL over RESP; the queue's keys are all there is). */
async function fetchFlush(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(url);
  await r.flushall();
  r.disconnect();
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
