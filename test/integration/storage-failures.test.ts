/**
 * Acknowledged means stored, on real file systems that fail: the data directory on a 3 MiB tmpfs that fills up,
 * the blob directory bind-mounted read-only under the running server, the data directory deleted or replaced
 * while the server runs, and blob files damaged on disk. An upload answered 201/200 must be readable afterwards,
 * health says what is wrong, edits.create answers 507/503 with a message (not a cancelled job), job errors name no
 * server path or errno, and damaged bytes are never served as valid.
 *
 * Needs root (mount). CI runs as root on this kind of machine, so there a missing mount fails the suite; elsewhere
 * the mount-based tests are skipped with a notice.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { mountProblem } from '../support/mount';
import { FIXTURES, ROOT, instruction, makeClient, startServer, tempDataDir, waitForJob, type ServerProcess } from '../support/server';

const cannotMount = mountProblem();
if (cannotMount && process.env.CI) throw new Error(`storage-failure tests need mount (run as root): ${cannotMount}`);
if (cannotMount) console.warn(`storage-failures: mount-based tests SKIPPED (${cannotMount}); in CI they fail instead`);
const withMount = cannotMount ? describe.skip : describe;

const mount = (...args: string[]) => execFileSync('mount', args, { stdio: 'pipe' });
const umount = (dir: string) => execFileSync('umount', [dir], { stdio: 'pipe' });

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function put(url: string, body: Uint8Array, contentType = 'image/png', query = ''): Promise<Reply> {
  const res = await fetch(`${url}/v1/blobs${query}`, { method: 'PUT', headers: { 'Content-Type': contentType }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function trpc(url: string, proc: string, input: unknown): Promise<Reply> {
  const res = await fetch(`${url}/trpc/${proc}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(input) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

const errorMessage = (r: Reply) => (typeof r.body.error === 'string' ? r.body.error : ((r.body.error as { message?: string })?.message ?? ''));

/** A PNG of random pixels (incompressible), different for each seed. */
async function noisePng(seed: number, side = 256): Promise<Buffer> {
  const raw = Buffer.alloc(side * side * 4);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < raw.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    raw[i] = x >>> 24;
  }
  for (let i = 3; i < raw.length; i += 4) raw[i] = 255;
  return sharp(raw, { raw: { width: side, height: side, channels: 4 } }).png().toBuffer();
}

interface Health {
  status: string;
  queue: { queued: number; running: number };
  store: { writable: boolean; problems: string[] };
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url}/trpc/health`);
  return ((await res.json()) as { result: { data: Health } }).result.data;
}

async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

/** Paths, errno names and store function names: none may reach a user. */
const INTERNALS = /\/tmp\/|\/srv\/|E[A-Z]{3,}\b|SQLITE_|addEditNodes|createJob|errno/;

withMount('a full disk (the data directory on a 3 MiB tmpfs)', () => {
  let mnt: string;
  let server: ServerProcess;
  let documentId: string;

  beforeAll(async () => {
    mnt = tempDataDir();
    mount('-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt);
    server = await startServer({ dataDir: mnt });
    ({ documentId } = await makeClient(server.url).documents.open.mutate({ host: 'web', hostDocumentKey: 'full' }));
  });
  afterAll(async () => {
    if (server) await server.stop();
    umount(mnt);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('answers an upload only when it is stored: every 201/200 is readable afterwards, the rest get 507', async () => {
    const source = await put(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    expect(source.status).toBe(201);
    const images = await Promise.all(Array.from({ length: 27 }, (_, i) => noisePng(i)));
    const replies = await Promise.all(images.map((png) => put(server.url, png)));
    const stored = replies.filter((r) => r.status === 201 || r.status === 200);
    const refused = replies.filter((r) => r.status === 507);
    expect(stored.length + refused.length).toBe(27);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(errorMessage(r)).toMatch(/^the upload was not stored: the server's disk is full\. Upload it again once that is fixed/);
    await new Promise((r) => setTimeout(r, 200)); // any write in the background would have ended by now
    for (const r of stored) {
      const res = await fetch(`${server.url}/v1/blobs/${r.body.sha256 as string}`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(r.body.size);
    }
    const h = await health(server.url);
    expect(h.status).toBe('degraded');
    expect(h.store.problems.join('\n')).toMatch(/blob writes fail: the server's disk is full/);
  });

  it("edits.create on a full disk answers 507 with a message, counted as a failed create, not a cancelled job", async () => {
    const sourceSha = (await put(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')))).body.sha256 as string;
    expect(sourceSha).toMatch(/^[0-9a-f]{64}$/);
    // fill what is left (a few KiB between blobs) so that even the job's row cannot be written
    const filler = path.join(mnt, 'filler');
    try {
      fs.writeFileSync(filler, Buffer.alloc(4 * 1024 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const created = await trpc(server.url, 'edits.create', { documentId, parent: { kind: 'source', imageSha256: sourceSha }, regions: instruction('make it blue'), options: { steps: 2 } });
    expect(created.status).toBe(507);
    expect(errorMessage(created)).toMatch(/^the edit was not queued: the server's disk is full\. Submit it again once that is fixed/);
    expect(errorMessage(created)).not.toMatch(INTERNALS);
    expect(await metric(server.url, 'layerloop_jobs_total{state="cancelled"}')).toBe(0);
    expect(await metric(server.url, 'layerloop_http_requests_total{route="/trpc/edits.create",method="POST",status="507"}')).toBe(1);
    // the withdrawn job (the runner may have started it already) leaves the engine at its next step
    for (let i = 0; i < 200 && (await health(server.url)).queue.running > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await health(server.url)).queue).toMatchObject({ queued: 0, running: 0 });

    // the operator makes room (the tmpfs grows past the store's 64 MiB headroom): writes work, health is ok again
    fs.rmSync(filler, { force: true });
    mount('-o', 'remount,size=100m', mnt);
    expect((await trpc(server.url, 'documents.open', { host: 'web', hostDocumentKey: 'room-again' })).status).toBe(200);
    expect((await put(server.url, await noisePng(1000, 32))).status).toBe(201);
    expect((await health(server.url)).status).toBe('ok');
  });
});

withMount('a read-only blob directory (bind-mounted under the running server)', () => {
  let server: ServerProcess;
  let blobs: string;
  let readOnly = false;

  beforeAll(async () => {
    server = await startServer();
    blobs = path.join(server.dataDir, 'blobs');
  });
  afterAll(async () => {
    if (readOnly) umount(blobs);
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('refuses uploads with 503 and acknowledges nothing; a job that cannot store its result says so without paths', async () => {
    const client = makeClient(server.url);
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'ro' });
    const source = await put(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    expect(source.status).toBe(201);
    await new Promise((r) => setTimeout(r, 100)); // durable before the mount changes
    mount('--bind', blobs, blobs);
    readOnly = true;
    mount('-o', 'remount,ro,bind', blobs);

    const png = await noisePng(7, 64);
    const refused = await put(server.url, png);
    expect(refused.status).toBe(503);
    expect(errorMessage(refused)).toMatch(/^the upload was not stored: the server cannot store data right now: its storage is read-only/);
    const sha = (await put(server.url, png).catch(() => null))?.body.sha256;
    expect(sha).toBeUndefined();
    const h = await health(server.url);
    expect(h.status).toBe('degraded');
    expect(h.store.problems.join('\n')).toMatch(/read-only/);

    // the job's row is written (SQLite is elsewhere), its result blob is not: the job fails with a clean message
    const { jobId } = await client.edits.create.mutate({ documentId, parent: { kind: 'source', imageSha256: source.body.sha256 as string }, regions: instruction('make it blue'), options: { steps: 2 } });
    const snap = await waitForJob(client, jobId);
    expect(snap.state).toBe('failed');
    expect(snap.error).toBe('the result was not stored: the server cannot store data right now: its storage is read-only. Submit the edit again once that is fixed');
    expect(snap.error).not.toMatch(INTERNALS);
    expect(server.stderr()).toMatch(/EROFS/); // the log keeps the detail

    umount(blobs);
    readOnly = false;
    expect((await put(server.url, png)).status).toBe(201);
    expect((await health(server.url)).status).toBe('ok');
  });
});

describe('the data directory deleted or replaced while the server runs', () => {
  for (const how of ['deleted', 'replaced'] as const) {
    it(`${how}: health turns degraded, writes are refused with a message, nothing is written into the old files`, async () => {
      const server = await startServer();
      const client = makeClient(server.url);
      const moved = `${server.dataDir}.old`;
      try {
        const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: how });
        const source = await put(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
        await new Promise((r) => setTimeout(r, 100));
        if (how === 'deleted') fs.rmSync(server.dataDir, { recursive: true, force: true });
        else {
          fs.renameSync(server.dataDir, moved);
          fs.mkdirSync(path.join(server.dataDir, 'blobs'), { recursive: true });
          fs.writeFileSync(path.join(server.dataDir, 'layerloop.sqlite'), '');
        }
        const h = await health(server.url);
        expect(h.status).toBe('degraded');
        expect(h.store.problems.join('\n')).toMatch(new RegExp(`blob directory was ${how === 'deleted' ? 'removed' : 'replaced'} while it ran`));
        expect(h.store.problems.join('\n')).toMatch(new RegExp(`database file was ${how === 'deleted' ? 'removed' : 'replaced'} while it ran`));

        const upload = await put(server.url, await noisePng(3, 32));
        expect(upload.status).toBe(503);
        expect(errorMessage(upload)).toMatch(/the upload was not stored: .*restart the server/);
        const created = await trpc(server.url, 'edits.create', { documentId, parent: { kind: 'source', imageSha256: source.body.sha256 }, regions: instruction('x'), options: { steps: 2 } });
        expect(created.status).toBe(503);
        expect(errorMessage(created)).toMatch(/^the edit was not queued: the server cannot store data: its database file was (removed|replaced) while it ran \(restart the server\)/);
        const opened = await trpc(server.url, 'documents.open', { host: 'web', hostDocumentKey: `${how}-new` });
        expect(opened.status).toBe(503);
        // nothing was recreated or written where the old directory was
        if (how === 'deleted') expect(fs.existsSync(server.dataDir)).toBe(false);
        else expect(fs.readdirSync(path.join(server.dataDir, 'blobs'))).toEqual([]);
      } finally {
        await server.stop();
        fs.rmSync(server.dataDir, { recursive: true, force: true });
        fs.rmSync(moved, { recursive: true, force: true });
      }
    });
  }
});

describe('damaged blobs are never served as valid', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  const fileOf = (sha: string) => path.join(server.dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4), sha);
  const verify = () => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli', 'store.js'), 'verify', '--data-dir', server.dataDir], { encoding: 'utf8' }) };
    } catch (err) {
      return { code: (err as { status: number }).status, out: String((err as { stdout: string }).stdout) };
    }
  };

  for (const damage of ['bit-flipped', 'truncated'] as const) {
    it(`${damage}: a clear 5xx (no immutable caching), found by 'npm run store -- verify', repaired by the next upload`, async () => {
      const png = await noisePng(damage === 'truncated' ? 21 : 22, 64);
      const first = await put(server.url, png);
      expect(first.status).toBe(201);
      const sha = first.body.sha256 as string;
      await new Promise((r) => setTimeout(r, 100));
      const bytes = fs.readFileSync(fileOf(sha));
      if (damage === 'bit-flipped') bytes[bytes.length >> 1] ^= 0x10;
      fs.writeFileSync(fileOf(sha), damage === 'truncated' ? bytes.subarray(0, 100) : bytes);

      const res = await fetch(`${server.url}/v1/blobs/${sha}`);
      expect(res.status).toBe(500);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('etag')).toBeNull();
      expect(((await res.json()) as { error: string }).error).toMatch(new RegExp(`^blob ${sha} is damaged on the server .*: upload the same image again to repair it`));
      const checked = verify();
      expect(checked.code).toBe(1);
      expect(checked.out).toMatch(new RegExp(`corrupt_blob: blob ${sha} is damaged`));

      const again = await put(server.url, png);
      expect(again.status).toBe(201); // rewritten, not "already stored"
      await new Promise((r) => setTimeout(r, 100));
      const healed = await fetch(`${server.url}/v1/blobs/${sha}`);
      expect(healed.status).toBe(200);
      expect(Buffer.from(await healed.arrayBuffer()).equals(fs.readFileSync(fileOf(sha)))).toBe(true);
      expect(verify()).toMatchObject({ code: 0, out: expect.stringMatching(/blob files rehashed, no problems/) });
    });
  }
});
