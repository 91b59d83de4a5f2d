/**
 * The real server (`npm start -- --store postgres://… --blobs s3://…`, dist/server/main.js) on a real PostgreSQL
 * and a real S3 API (test/support/services.ts), driven through its HTTP API as a plugin drives it: an upload, an
 * edit, an edit continuing from that one's latent, downloads. Then what is only true with these backends: the
 * data directory stays empty, the rows and objects are where the URLs say, a restart (and a SIGKILL mid-job)
 * finds everything again, the database or the bucket failing under the running server is answered 503 with a
 * message and reported by health until it works again, servers may share the database (the data directory's
 * lock is only the SQLite store's), and a configuration that cannot work stops the server at start with what to fix.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client as PgClient } from 'pg';
import sharp from 'sharp';
import { INTERRUPTED_RUNNING_ERROR } from '../../server/store/store';
import type { EditRequestInput } from '../../shared/protocol';
import { FIXTURES, instruction, logLines, makeClient, runEdit, startServer, tempDataDir, upload, waitForJob, type ServerProcess } from '../support/server';
import { describeWithServices } from '../support/services';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describeWithServices('team server on PostgreSQL and S3', ['postgres', 's3'], (services) => {
  let storeUrl: string;
  let bucket: string;
  let blobsUrl: string;
  let dataDir: string;
  const running: ServerProcess[] = [];

  beforeAll(async () => {
    dataDir = tempDataDir();
    storeUrl = await services().postgres.createDatabase();
    bucket = await services().s3.createBucket();
    blobsUrl = services().s3.blobsUrl(bucket, 'layerloop/');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop('SIGKILL')));
  });
  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** `npm start -- --store … --blobs …` with the S3 credentials in the environment, as an operator runs it. */
  async function start(args: string[] = ['--store', storeUrl, '--blobs', blobsUrl], env = services().s3.env()): Promise<ServerProcess> {
    const server = await startServer({ dataDir, args, env });
    running.push(server);
    return server;
  }

  async function rows(query: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    const client = new PgClient({ connectionString: storeUrl });
    await client.connect();
    try {
      return (await client.query(query, values)).rows;
    } finally {
      await client.end();
    }
  }

  async function object(sha: string): Promise<Uint8Array> {
    const client = services().s3.client();
    try {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `layerloop/${sha}` }));
      return await got.Body!.transformToByteArray();
    } finally {
      client.destroy();
    }
  }

  async function download(url: string, sha: string): Promise<Buffer> {
    const res = await fetch(`${url}/v1/blobs/${sha}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  let documentId: string;
  let first: { jobId: string; editId: string; resultSha256: string };
  let second: { jobId: string; editId: string; resultSha256: string };
  const edit = (parent: EditRequestInput['parent'], text: string, steps = 4): EditRequestInput => ({
    documentId,
    parent,
    regions: instruction(text),
    options: { steps, previewEvery: 0 },
  });

  test('an edit and an edit of that edit, end to end through the HTTP API', async () => {
    const server = await start();
    expect(logLines(server.stderr()).find((line) => line.msg === 'store opened')).toMatchObject({
      edits: storeUrl, // no password here; a password would read ***
      blobs: `s3://${bucket}/layerloop/ at ${services().s3.endpoint}`,
    });
    const client = makeClient(server.url);
    ({ documentId } = await client.documents.open.mutate({ host: 'figma', hostDocumentKey: 'team-file:page-1' }));
    const png = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
    const source = await upload(server.url, png);
    expect([source.width, source.height]).toEqual([128, 128]);

    const a = await runEdit(client, edit({ kind: 'source', imageSha256: source.sha256 }, 'make the circle blue'));
    first = { jobId: a.jobId, editId: a.snap.result!.editIds[0], resultSha256: a.snap.result!.resultSha256s[0] };
    const b = await runEdit(client, edit({ kind: 'edit', editId: first.editId }, 'make the square green'));
    second = { jobId: b.jobId, editId: b.snap.result!.editIds[0], resultSha256: b.snap.result!.resultSha256s[0] };

    const { nodes } = await client.documents.history.query({ documentId });
    const [root, one, two] = nodes;
    expect(nodes.map((n) => [n.kind, n.parentId])).toEqual([
      ['source', null],
      ['edit', root.id],
      ['edit', one.id],
    ]);
    expect(two).toMatchObject({ id: second.editId, conditioning: 'latent', resultImageSha256: second.resultSha256 });
    for (const sha of [first.resultSha256, second.resultSha256]) {
      const bytes = await download(server.url, sha);
      expect(sha256(bytes)).toBe(sha);
      expect(Buffer.from(await object(sha)).equals(bytes)).toBe(true); // the bucket holds exactly what is served
      const meta = await sharp(bytes).metadata();
      expect([meta.width, meta.height]).toEqual([128, 128]);
    }
    const latent = two.latent!;
    expect((await object(latent.sha256)).byteLength).toBe(2 * latent.shape.reduce((x, y) => x * y, 1));

    // the rows are in PostgreSQL, and nothing was written to the data directory
    expect(await rows('SELECT id::text, state FROM jobs ORDER BY seq')).toEqual([
      { id: first.jobId, state: 'succeeded' },
      { id: second.jobId, state: 'succeeded' },
    ]);
    expect((await rows('SELECT count(*)::integer AS n FROM nodes WHERE document_id = $1', [documentId]))[0].n).toBe(3);
    expect(fs.readdirSync(dataDir)).toEqual([]);
    expect((await client.health.query()).store.integrityProblems).toBe(0);
    expect((await server.stop()).code).toBe(0);
  });

  test('a restarted server finds everything; one killed mid-job leaves that job failed as interrupted', async () => {
    const server = await start();
    const client = makeClient(server.url);
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.map((n) => n.id).slice(1)).toEqual([first.editId, second.editId]);
    expect(sha256(await download(server.url, second.resultSha256))).toBe(second.resultSha256);

    const long = edit({ kind: 'edit', editId: second.editId }, 'make it stormy', 100);
    const { jobId } = await client.edits.create.mutate({ ...long, options: { ...long.options, variations: 4 } });
    await waitForJob(client, jobId, (s) => s.state === 'running' && (s.progress?.step ?? 0) > 0);
    // the queue records its states in the store a moment after it moves (JobStateRecorder): kill once the row says running
    for (let i = 0; i < 200 && (await rows('SELECT state FROM jobs WHERE id = $1', [jobId]))[0]?.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await server.stop('SIGKILL')).signal).toBe('SIGKILL');

    const again = await start();
    const after = makeClient(again.url);
    expect(await after.jobs.get.query({ jobId })).toMatchObject({ state: 'failed', error: INTERRUPTED_RUNNING_ERROR, result: null });
    expect(again.stderr()).toContain('job interrupted by the previous shutdown');
    // and it edits on
    const next = await runEdit(after, edit({ kind: 'edit', editId: second.editId }, 'make the circle yellow'));
    expect(sha256(await download(again.url, next.snap.result!.resultSha256s[0]))).toBe(next.snap.result!.resultSha256s[0]);
  });

  test('the database or the bucket failing under a running server: 503 with a message, health says why, and it recovers', async () => {
    const { postgres, s3 } = services();
    const url = await postgres.createDatabase();
    const outageBucket = await s3.createBucket();
    const server = await start(['--store', url, '--blobs', s3.blobsUrl(outageBucket)]);
    const client = makeClient(server.url);
    const { documentId: doc } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'outage' });
    const { sha256: source } = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')));
    const request = { documentId: doc, parent: { kind: 'source', imageSha256: source }, regions: instruction('make it red'), options: { steps: 2, previewEvery: 0 } };
    const call = async (method: string, route: string, body: string | Uint8Array, type = 'application/json') => {
      const res = await fetch(`${server.url}${route}`, { method, headers: { 'Content-Type': type }, body });
      const json = (await res.json()) as { error?: string | { message?: string } };
      return { status: res.status, message: typeof json.error === 'string' ? json.error : (json.error?.message ?? '') };
    };
    const health = async () => (await client.health.query()) as { status: string; store: { problems: string[] } };

    // the database stops taking connections
    await postgres.setConnections(url, false);
    const create = await call('POST', '/trpc/edits.create', JSON.stringify(request));
    expect(create).toEqual({ status: 503, message: expect.stringMatching(/the server cannot use its database right now: it cannot be reached/) });
    expect(await health()).toMatchObject({ status: 'degraded', store: { problems: ['database writes fail: the server cannot use its database right now: it cannot be reached'] } });
    await postgres.setConnections(url, true);
    expect((await health()).status).toBe('ok');
    await runEdit(client, request as EditRequestInput);

    // the bucket goes away (emptied and deleted by hand)
    const admin = s3.client();
    try {
      const { Contents = [] } = await admin.send(new ListObjectsV2Command({ Bucket: outageBucket }));
      await admin.send(new DeleteObjectsCommand({ Bucket: outageBucket, Delete: { Objects: Contents.map((o) => ({ Key: o.Key! })) } }));
      await admin.send(new DeleteBucketCommand({ Bucket: outageBucket }));
      const png = (color: string) => sharp({ create: { width: 8, height: 8, channels: 4, background: color } }).png().toBuffer();
      // The first upload after that is answered while its PUT is under way (the bucket worked a moment ago: the
      // window README's "Running a team server" names); the PUT fails, and from then on uploads wait for theirs.
      const unlucky = await call('PUT', '/v1/blobs', await png('#123456'), 'image/png');
      expect(unlucky.status).toBe(201);
      for (let i = 0; i < 100 && (await health()).status === 'ok'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await health()).toMatchObject({ status: 'degraded', store: { problems: ['blob writes fail: the server cannot use its blob storage right now: its bucket does not exist'] } });
      expect(await call('PUT', '/v1/blobs', await png('#654321'), 'image/png')).toEqual({
        status: 503,
        message: "the upload was not stored: the server cannot use its blob storage right now: its bucket does not exist. Upload it again once that is fixed (the server's health says when)",
      });
      await admin.send(new CreateBucketCommand({ Bucket: outageBucket }));
      expect((await health()).status).toBe('ok');
      const stored = await upload(server.url, await png('#654321'));
      expect(sha256(await download(server.url, stored.sha256))).toBe(stored.sha256);
    } finally {
      admin.destroy();
    }
    // the log keeps what users are not shown: where, and what S3 said
    expect(logLines(server.stderr()).find((line) => line.msg === 'request failed: storage')).toMatchObject({ cause: expect.stringContaining(`s3://${outageBucket}/`) });
  });

  test("the data directory's lock is the embedded SQLite store's: two servers share PostgreSQL and a blob directory; SQLite with S3 blobs refuses a second", async () => {
    const { postgres, s3 } = services();
    const dir = tempDataDir();
    const url = await postgres.createDatabase();
    const startIn = async (args: string[]) => {
      const server = await startServer({ dataDir: dir, args, env: s3.env() });
      running.push(server);
      return server;
    };
    try {
      const a = await startIn(['--store', url]);
      const b = await startIn(['--store', url]);
      const png = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
      const { sha256: uploaded } = await upload(a.url, png);
      // one blob directory, written by one, read by the other (once the file is durable: a moment after the answer)
      for (let i = 0; i < 100 && (await fetch(`${b.url}/v1/blobs/${uploaded}`, { method: 'HEAD' })).status !== 200; i++) await new Promise((r) => setTimeout(r, 20));
      expect(sha256(await download(b.url, uploaded))).toBe(uploaded);
      expect(fs.existsSync(path.join(dir, 'layerloop.lock'))).toBe(false);
      await Promise.all([a.stop(), b.stop()]);

      const c = await startIn(['--blobs', s3.blobsUrl(bucket)]);
      await expect(startServer({ dataDir: dir, args: ['--blobs', s3.blobsUrl(bucket)], env: s3.env() })).rejects.toThrow(
        `layerloop: the data directory ${dir} is in use by another layerloop server (pid ${c.pid})`,
      );
    } finally {
      await Promise.all(running.splice(0).map((server) => server.stop('SIGKILL')));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a configuration that cannot work stops the server at start, saying what to fix', async () => {
    const s3 = services().s3;
    await expect(start(['--store', storeUrl, '--blobs', s3.blobsUrl('no-such-bucket')])).rejects.toThrow(
      /server exited \(code 1\) before listening:\n[^]*\nlayerloop: cannot open the store: bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+ does not exist: create it \(for example: aws s3 mb s3:\/\/no-such-bucket --endpoint-url http:\/\/127\.0\.0\.1:\d+\) or fix the bucket name \(--blobs, LAYERLOOP_BLOBS\)/,
    );
    await expect(start(['--blobs', 's3://some-bucket?endpoint=http://127.0.0.1:1'])).rejects.toThrow(
      /layerloop: cannot open the store: cannot reach bucket "some-bucket" at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:1\): check \?endpoint= \(--blobs, LAYERLOOP_BLOBS\) and that the server is running/,
    );
    await expect(start(['--store', 'postgres://postgres:secret-pw@127.0.0.1:1/layerloop', '--blobs', blobsUrl])).rejects.toThrow(
      /layerloop: cannot open the store: nothing accepts connections at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/layerloop: is PostgreSQL running there, and is the host and port in --store \(LAYERLOOP_STORE\) right\?/,
    );
    // no credentials anywhere the SDK looks (environment, profile files, instance metadata)
    const nowhere = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_EC2_METADATA_DISABLED: 'true', HOME: dataDir };
    await expect(start(['--blobs', s3.blobsUrl(bucket)], nowhere)).rejects.toThrow(
      /layerloop: cannot open the store: no S3 credentials for bucket "layerloop-test-\w+" at http:\/\/127\.0\.0\.1:\d+: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(or AWS_PROFILE\)/,
    );
    await expect(start(['--store', 'mysql://x/y'])).rejects.toThrow(/server exited \(code 2\) before listening:\nlayerloop: invalid configuration:\nstore must be a postgres:/);

    const newer = await services().postgres.createDatabase();
    await (await start(['--store', newer, '--blobs', blobsUrl])).stop();
    const admin = new PgClient({ connectionString: newer });
    await admin.connect();
    await admin.query(`INSERT INTO layerloop_schema (version, description) VALUES (99, 'from a newer layerloop')`);
    await admin.end();
    await expect(start(['--store', newer, '--blobs', blobsUrl])).rejects.toThrow(
      /layerloop: cannot open the store: cannot prepare the database postgres:\/\/\S+: the database's schema version 99 is newer than this server understands \(2\): a newer layerloop has migrated it\. Upgrade this server to that version \(every process sharing the database must run it\), or point --store at another database/,
    );
  });
});
