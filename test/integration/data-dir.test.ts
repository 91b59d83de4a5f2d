/**
 * The data directory is one server's: a second server on it refuses to start (naming the holder's pid) without
 * touching the first one's jobs, whether the port is taken or not; and a damaged or emptied database stops the
 * start with a message that says what to do, instead of a stack trace or a silently empty store.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openStore } from '../../server/store';
import type { EditRequestInput } from '../../shared/protocol';
import { FIXTURES, MAIN, ROOT, instruction, makeClient, runEdit, startServer, tempDataDir, upload, waitForJob } from '../support/server';

/** Runs the server to its exit (it is expected to refuse to start); resolves with its exit code and stderr. */
function refusedStart(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [MAIN, '--device', 'cpu', ...args], { cwd: ROOT, env: { ...process.env, LAYERLOOP_TOKEN: '', LAYERLOOP_HOST: '' } });
    let stderr = '';
    let stdout = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

/** The store's own view of a data directory (the server must be stopped). */
async function storedJobs(dataDir: string): Promise<{ id: string; state: string; error: string | null }[]> {
  const store = await openStore(dataDir);
  try {
    return (await store.edits.listJobs()).map((j) => ({ id: j.id, state: j.state, error: j.error }));
  } finally {
    await store.close();
  }
}

describe('a second server on the same data directory', () => {
  it("refuses to start, names the holder's pid, and leaves the first server's jobs alone", async () => {
    const first = await startServer();
    const client = makeClient(first.url);
    try {
      const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'lock' });
      const { sha256 } = await upload(first.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
      const long = (steps: number): EditRequestInput => ({ documentId, parent: { kind: 'source', imageSha256: sha256 }, regions: instruction('make it stormy'), options: { steps, previewEvery: 0 } });
      const running = await client.edits.create.mutate({ ...long(100), options: { steps: 100, variations: 4, previewEvery: 0 } });
      const queued = await client.edits.create.mutate(long(4));
      await waitForJob(client, running.jobId, (s) => s.state === 'running');

      const port = new URL(first.url).port;
      // the same port (a second `npm start`): the port is checked before the store is touched
      const samePort = await refusedStart(['--port', port, '--data-dir', first.dataDir]);
      expect(samePort.code).not.toBe(0);
      expect(samePort.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*the port is in use/);
      // another port: the data directory's lock refuses it
      const otherPort = await refusedStart(['--port', '0', '--data-dir', first.dataDir]);
      expect(otherPort.code).not.toBe(0);
      expect(otherPort.stderr).toContain(`the data directory ${first.dataDir} is in use by another layerloop server (pid ${first.pid})`);
      expect(otherPort.stdout).toBe(''); // never said it was listening
      expect(otherPort.stderr).not.toMatch(/interrupted|\n\s+at /);

      // the first server's jobs were not touched: both finish normally
      expect((await waitForJob(client, queued.jobId, (s) => s.finishedAt !== null, 120_000)).state).toBe('succeeded');
      expect((await client.jobs.get.query({ jobId: running.jobId })).state).toBe('succeeded');
      await runEdit(client, long(2));
    } finally {
      expect((await first.stop()).code).toBe(0);
    }
    expect((await storedJobs(first.dataDir)).map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // the lock went with the first server: the directory opens again
    const again = await startServer({ dataDir: first.dataDir });
    expect((await again.stop()).code).toBe(0);
    fs.rmSync(first.dataDir, { recursive: true, force: true });
  });

  it('a SIGKILLed holder leaves no lock behind', async () => {
    const first = await startServer();
    await first.stop('SIGKILL');
    const second = await startServer({ dataDir: first.dataDir });
    expect((await second.stop()).code).toBe(0);
    fs.rmSync(first.dataDir, { recursive: true, force: true });
  });
});

describe('a damaged or emptied database', () => {
  /** A data directory with one document, one image and one finished edit, written by a real server. */
  async function populated(): Promise<string> {
    const server = await startServer();
    const client = makeClient(server.url);
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'damage' });
    const { sha256 } = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    await runEdit(client, { documentId, parent: { kind: 'source', imageSha256: sha256 }, regions: instruction('make the circle blue'), options: { steps: 2 } });
    for (let i = 0; i < 200; i++) await client.documents.open.mutate({ host: 'web', hostDocumentKey: `filler-${i}` }); // a few pages to damage
    expect((await server.stop()).code).toBe(0); // checkpointed: everything is in layerloop.sqlite
    return server.dataDir;
  }

  it('page-level damage: a clear message naming the database and the way out, no stack trace', async () => {
    const dataDir = await populated();
    const db = path.join(dataDir, 'layerloop.sqlite');
    const fd = fs.openSync(db, 'r+');
    fs.writeSync(fd, Buffer.concat([Buffer.from([0x0d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(400, 0xde)]), 0, 408, 4096); // page 2's b-tree header
    fs.closeSync(fd);
    const start = await refusedStart(['--port', '0', '--data-dir', dataDir]);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain(`layerloop: cannot open the data directory ${dataDir}: its database ${db} is damaged`);
    expect(start.stderr).toMatch(/Restore it from a backup, or recover what it still holds with the sqlite3 shell: sqlite3 .*layerloop\.sqlite \.recover/);
    expect(start.stderr).not.toMatch(/SqliteError|\n\s+at /);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a zero-length database beside stored blobs is refused, not started empty', async () => {
    const dataDir = await populated();
    fs.truncateSync(path.join(dataDir, 'layerloop.sqlite'), 0);
    const start = await refusedStart(['--port', '0', '--data-dir', dataDir]);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toMatch(/layerloop\.sqlite is empty \(or new\), but the blob store beside it holds stored images: the database was lost or truncated\. Restore it from a backup/);
    expect(start.stdout).toBe('');
    expect(fs.statSync(path.join(dataDir, 'layerloop.sqlite')).size).toBe(0); // nothing was written over it
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an empty data directory still starts (a new store)', async () => {
    const dataDir = tempDataDir();
    const server = await startServer({ dataDir });
    expect((await server.stop()).code).toBe(0);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
