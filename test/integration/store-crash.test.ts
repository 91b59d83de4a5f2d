/**
 * Crash safety of the embedded store: a child process writes jobs, blobs and edit nodes in a loop
 * (test/fixtures/store-crash/writer.ts), we SIGKILL it at various points, reopen the store and check that
 * nothing is half-written: integrityCheck() is empty, every node of a succeeded job has readable blobs, every
 * success the child acknowledged is there, and jobs left running are recovered as failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { openStore } from '../../server/store';
import { decodeLatent } from '../../server/store/latent';
import { INTERRUPTED_QUEUED_ERROR, INTERRUPTED_RUNNING_ERROR, SHA256_PATTERN, type Job } from '../../server/store/store';

const REPO = path.resolve(__dirname, '../..');
const ROUNDS = 5;
/** Kill points, run in this order against one data directory per round (each restart reopens a crashed store). */
const KILLS: KillWhen[] = [{ afterMs: 20 }, { afterMs: 60 }, { afterMs: 120 }, { afterSucceeded: 6 }];

type KillWhen = { afterMs: number } | { afterSucceeded: number } | { parked: true };

interface WriterRun {
  lines: string[];
  signal: NodeJS.Signals | null;
  stderr: string;
}

let work: string;
let bundle: string;

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'layerloop-crash-'));
  bundle = path.join(work, 'writer.js');
  // One bundle of the writer and the store, so the child starts in plain node without a TypeScript loader.
  // better-sqlite3 stays external (a native addon); NODE_PATH below lets the bundle in /tmp find it.
  buildSync({
    entryPoints: [path.join(REPO, 'test/fixtures/store-crash/writer.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['better-sqlite3'],
    logLevel: 'silent',
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Runs the writer until `when`, then SIGKILLs it. Timers start at its `ready` line: node's start-up time varies. */
function runWriter(dataDir: string, mode: 'loop' | 'park', when: KillWhen): Promise<WriterRun> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [bundle, dataDir, mode], {
      env: { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let succeeded = 0;
    const kill = () => child.kill('SIGKILL');
    const safety = setTimeout(kill, 8000); // a writer that never reaches its kill point must not hang the suite

    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (line === 'ready' && 'afterMs' in when) setTimeout(kill, when.afterMs);
        if (line.startsWith('succeeded ') && 'afterSucceeded' in when && ++succeeded === when.afterSucceeded) kill();
        if (line.startsWith('parked ') && 'parked' in when) kill();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(safety);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with code ${code} before it was killed:\n${stderr}`));
      else resolve({ lines, signal, stderr });
    });
  });
}

const idsOf = (lines: string[], verb: string) => lines.filter((l) => l.startsWith(`${verb} `)).map((l) => l.split(' ')[1]);

/** Reopens the store after a crash and checks everything the test promises. Returns the recovered jobs. */
async function checkAfterCrash(dataDir: string, run: WriterRun): Promise<Job[]> {
  const store = await openStore(dataDir);
  try {
    const recovered = await store.edits.recoverInterruptedJobs();
    for (const job of recovered) {
      expect(job.state).toBe('failed');
      expect([INTERRUPTED_RUNNING_ERROR, INTERRUPTED_QUEUED_ERROR]).toContain(job.error);
    }
    expect(await store.edits.listJobs({ states: ['queued', 'running'] })).toEqual([]);
    expect(await store.edits.integrityCheck({ verifyBlobHashes: true })).toEqual([]);

    // every acknowledged commit survived the kill
    for (const [verb, state] of [['succeeded', 'succeeded'], ['failed', 'failed'], ['cancelled', 'cancelled']] as const) {
      for (const id of idsOf(run.lines, verb)) expect((await store.edits.getJob(id))?.state).toBe(state);
    }

    // every node of a succeeded job is complete, down to the latent bytes
    const succeeded = await store.edits.listJobs({ states: ['succeeded'] });
    for (const job of succeeded) {
      expect(job.resultNodeIds).toHaveLength(2);
      for (const nodeId of job.resultNodeIds) {
        const node = (await store.edits.getNode(nodeId))!;
        expect(node.jobId).toBe(job.id);
        for (const sha of [node.sourceImageSha256, node.resultImageSha256, node.regions[0].maskSha256!]) {
          expect(await store.blobs.get(sha)).not.toBeNull();
        }
        const latentBytes = (await store.blobs.get(node.latent!.sha256))!;
        expect(decodeLatent(latentBytes, node.latent!.shape)).toHaveLength(256);
      }
    }

    // a temp file left by the kill is never a visible blob; once swept, only blobs remain
    await store.blobs.removeTempFiles({ olderThanMs: 0 });
    for (const a of readdirSync(store.blobs.dir)) {
      for (const b of readdirSync(path.join(store.blobs.dir, a))) {
        for (const name of readdirSync(path.join(store.blobs.dir, a, b))) {
          expect(name).toMatch(SHA256_PATTERN);
        }
      }
    }
    return recovered;
  } finally {
    await store.close();
  }
}

describe('store crash safety (SIGKILL)', () => {
  test(`${ROUNDS} rounds of kills at ${KILLS.map((k) => JSON.stringify(k)).join(', ')}`, async () => {
    let recoveredTotal = 0;
    let succeededTotal = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(work, `round-${round}`);
      for (const when of KILLS) {
        const run = await runWriter(dataDir, 'loop', when);
        expect(run.lines[0]).toBe('ready');
        const recovered = await checkAfterCrash(dataDir, run);
        recoveredTotal += recovered.length;
        succeededTotal += idsOf(run.lines, 'succeeded').length;
      }
    }
    // the kills landed mid-work (a job is running nearly all the time) and the writer made real progress
    expect(recoveredTotal).toBeGreaterThan(0);
    expect(succeededTotal).toBeGreaterThanOrEqual(ROUNDS * 6);
  });

  test('a kill between a blob\'s temp write and its rename leaves no blob and no half-written node', async () => {
    const dataDir = path.join(work, 'parked');
    const run = await runWriter(dataDir, 'park', { parked: true });
    const parked = run.lines.find((l) => l.startsWith('parked '))!.split(' ');
    const [tempPath, jobId] = [parked[1], parked[2]];
    expect(existsSync(tempPath)).toBe(true); // the temp file was written...
    const sha = path.basename(tempPath).split('.')[1];
    const store = await openStore(dataDir);
    expect(await store.blobs.has(sha)).toBe(false); // ...but never became the blob
    expect((await store.edits.getJob(jobId))?.state).toBe('running');
    await store.close();

    const recovered = await checkAfterCrash(dataDir, run);
    expect(recovered).toEqual([expect.objectContaining({ id: jobId, state: 'failed', error: INTERRUPTED_RUNNING_ERROR, resultNodeIds: [] })]);
    expect(existsSync(tempPath)).toBe(false); // swept by checkAfterCrash
  });
});
