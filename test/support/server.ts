/**
 * Test helpers: the real server process (dist/server/main.js, built by `npm run build`) on 127.0.0.1 with an
 * ephemeral port, and the typed tRPC client the plugins use. Shared by the ops and crash tests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import type { AppRouter } from '../../server/api/router';
import type { EditRequestInput, JobSnapshot } from '../../shared/protocol';

export const ROOT = path.resolve(__dirname, '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'server', 'main.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const LISTENING = /^layerloop (?:listening|worker) on http:\/\/([^\s]+):(\d+) \(model (\S+) on (\S+)\)$/m;

export interface ServerProcess {
  url: string;
  pid: number;
  dataDir: string;
  proc: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** resolves with the exit code (null when killed by a signal) */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (graceful) unless another signal is given; resolves once the process is gone */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-server-'));
}

/** `env` adds to (or overrides) this process's environment, e.g. the AWS_* variables of an S3 server. */
export function startServer(opts: { dataDir?: string; args?: string[]; token?: string; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const args = [MAIN, '--port', '0', '--data-dir', dataDir, '--device', 'cpu', ...(opts.token ? ['--token', opts.token] : []), ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, LAYERLOOP_TOKEN: '', LAYERLOOP_HOST: '', ...opts.env } });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${err}`)), 60_000);
    let listening = false;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = LISTENING.exec(out);
      if (!m || listening) return;
      listening = true;
      clearTimeout(timer);
      resolve({
        url: `http://127.0.0.1:${m[2]}`,
        pid: proc.pid!,
        dataDir,
        proc,
        stdout: () => out,
        stderr: () => err,
        exited,
        stop: async (signal = 'SIGTERM') => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}) before listening:\n${err}`));
    });
  });
}

export function makeClient(url: string, token?: string) {
  const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${url}/trpc`,
          EventSource,
          eventSourceOptions: {
            fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...auth } }),
          },
        }),
        false: httpLink({ url: `${url}/trpc`, headers: auth }),
      }),
    ],
  });
}
export type Client = ReturnType<typeof makeClient>;

export async function upload(url: string, body: Uint8Array, contentType = 'image/png', token?: string): Promise<{ sha256: string; width: number; height: number }> {
  const res = await fetch(`${url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': contentType, ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body });
  const json = (await res.json()) as { sha256: string; width: number; height: number; error?: string };
  if (!res.ok) throw new Error(`upload failed (${res.status}): ${json.error}`);
  return json;
}

export async function waitForJob(client: Client, jobId: string, until: (s: JobSnapshot) => boolean = (s) => s.finishedAt !== null, timeoutMs = 60_000, pollMs = 50): Promise<JobSnapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await client.jobs.get.query({ jobId });
    if (until(snap)) return snap;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${snap.state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function runEdit(client: Client, request: EditRequestInput): Promise<{ jobId: string; snap: JobSnapshot }> {
  const { jobId } = await client.edits.create.mutate(request);
  const snap = await waitForJob(client, jobId);
  if (snap.state !== 'succeeded') throw new Error(`job ${jobId} ended ${snap.state}: ${snap.error}`);
  return { jobId, snap };
}

export const instruction = (text: string, maskSha256: string | null = null) => [{ instruction: text, maskSha256 }];

/** The server's stderr as parsed JSON log lines (lines that are not JSON are skipped). */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
