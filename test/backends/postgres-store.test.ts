/**
 * PostgresEditStore against a real PostgreSQL (test/support/services.ts): the EditStore contract, then what is
 * PostgreSQL's own: migrations and the schema-version check, start-up errors, several processes sharing one
 * database (recovery that spares a live process's jobs, transitions that race), and the integrity check.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { FsBlobStore } from '../../server/store/blobs';
import { POSTGRES_MIGRATIONS, type PostgresMigration, migratePostgres, postgresSchemaVersion } from '../../server/store/postgres-migrations';
import { PostgresConfigError, PostgresEditStore, type PostgresEditStoreOptions } from '../../server/store/postgres';
import { DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID, INTERRUPTED_RUNNING_ERROR, type BlobStore, StoreError, combineHealth } from '../../server/store/store';
import { mountProblem } from '../support/mount';
import { describeWithServices } from '../support/services';
import { TestClock, bytesOf, editStoreContract, expectStoreError, putLatent } from '../unit/store/contract';
import pg from 'pg';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'layerloop-pg-blobs-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** psql-like access to a database, behind the store's back. */
async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new PgClient({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

describeWithServices('PostgresEditStore', ['postgres'], (services) => {

  /** every store a test opened, closed after it whatever happened */
  const opened: PostgresEditStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  const open = async (url: string, blobs: BlobStore = new FsBlobStore(path.join(root, 'blobs')), options: PostgresEditStoreOptions = {}) => {
    const store = await PostgresEditStore.open(url, blobs, { now: new TestClock().now, ...options });
    opened.push(store);
    return store;
  };
  /** what opening `url` fails with */
  const openError = (url: string): Promise<Error> =>
    open(url).then(
      () => new Error('it opened'),
      (error: Error) => error,
    );

  describe('EditStore contract', () => {
    editStoreContract(async (options) => {
      const clock = new TestClock();
      const blobs = options?.blobs ?? new FsBlobStore(path.join(root, 'blobs'));
      const url = await services().postgres.createDatabase();
      const edits = await open(url, blobs, { now: clock.now });
      return {
        store: { blobs, edits, health: async () => combineHealth([await blobs.health(), await edits.health()]), close: () => edits.close() },
        clock,
        cutOff: () => services().postgres.setConnections(url, false),
      };
    });
  });

  /** A document with a source node and a running job, in a fresh database. */
  async function populate(url: string) {
    const blobs = new FsBlobStore(path.join(root, 'blobs'));
    const store = await open(url, blobs);
    const { documentId } = await store.openDocument('photoshop', 'psd-1');
    const image = (await blobs.put(bytesOf(1))).sha256;
    const source = await store.addSourceNode({ documentId, imageSha256: image });
    const job = await store.updateJobState((await store.createJob({ documentId, request: { a: 1 } })).id, 'running');
    return { blobs, store, documentId, source, job, image };
  }

  describe('schema', () => {
    test('a fresh database is migrated once; data survives reopening', async () => {
      const url = await services().postgres.createDatabase();
      const { store, documentId, source, job } = await populate(url);
      expect(await store.diagnostics()).toMatchObject({ schemaVersion: POSTGRES_MIGRATIONS.length });
      const before = await store.history(documentId);
      await store.close();
      await store.close(); // idempotent

      const again = await open(url);
      expect(await again.history(documentId)).toEqual(before);
      expect(before?.nodes).toEqual([source]);
      expect(await again.getJob(job.id)).toEqual(job);
      await again.close();
      expect((await sql(url, 'SELECT version, description FROM layerloop_schema ORDER BY version')).rows).toEqual(
        POSTGRES_MIGRATIONS.map(({ version, description }) => ({ version, description })),
      );
    });

    test('processes opening a fresh database at once apply each migration once', async () => {
      const url = await services().postgres.createDatabase();
      const stores = await Promise.all([open(url), open(url), open(url)]);
      expect((await sql(url, 'SELECT count(*)::integer AS n FROM layerloop_schema')).rows).toEqual([{ n: POSTGRES_MIGRATIONS.length }]);
      expect(new Set(await Promise.all(stores.map(async (s) => (await s.diagnostics()).instanceKey)))).toHaveProperty('size', 3);
      await Promise.all(stores.map((s) => s.close()));
    });

    test('a later migration is applied on top of existing data; a failing one leaves nothing behind', async () => {
      const url = await services().postgres.createDatabase();
      const { store, source } = await populate(url);
      await store.close();
      const pool = new pg.Pool({ connectionString: url });
      try {
        const latest = POSTGRES_MIGRATIONS.length;
        const broken: PostgresMigration = { version: latest + 1, description: 'broken', sql: 'CREATE TABLE t (a int); SELECT * FROM nope' };
        await expect(migratePostgres(pool, [...POSTGRES_MIGRATIONS, broken])).rejects.toThrow(/relation "nope" does not exist/);
        expect(await postgresSchemaVersion(pool)).toBe(latest);
        expect((await pool.query(`SELECT to_regclass('t') AS t`)).rows).toEqual([{ t: null }]);

        const label: PostgresMigration = { version: latest + 1, description: 'a later column', sql: `ALTER TABLE nodes ADD COLUMN label text NOT NULL DEFAULT ''` };
        expect(await migratePostgres(pool, [...POSTGRES_MIGRATIONS, label])).toEqual({ from: latest, to: latest + 1 });
        expect(await migratePostgres(pool, [...POSTGRES_MIGRATIONS, label])).toEqual({ from: latest + 1, to: latest + 1 });
        expect((await pool.query('SELECT label FROM nodes WHERE id = $1', [source.id])).rows).toEqual([{ label: '' }]);
        await expect(migratePostgres(pool, [{ ...label, version: latest + 2 }])).rejects.toThrow(/numbered 1, 2, 3/);
      } finally {
        await pool.end();
      }
    });

    test('version 2 moves a version-1 database into the default workspace: rows kept, their blobs granted', async () => {
      const url = await services().postgres.createDatabase();
      const pool = new pg.Pool({ connectionString: url });
      const doc = '7a1c0e52-54b9-4d3a-9c55-0d3f0e1a2b3c';
      const node = '8b2d1f63-65ca-4e4b-8d66-1e4f1f2b3c4d';
      const image = 'a'.repeat(64);
      try {
        await migratePostgres(pool, POSTGRES_MIGRATIONS.slice(0, 1));
        await pool.query(`INSERT INTO documents (id, host, host_key, created_at) VALUES ($1, 'figma', 'file-1', now())`, [doc]);
        await pool.query(
          `INSERT INTO nodes (id, document_id, kind, regions, options, source_image_sha256, result_image_sha256, created_at)
           VALUES ($1, $2, 'source', '[]', '{}', $3, $3, now())`,
          [node, doc, image],
        );
        expect(await migratePostgres(pool)).toEqual({ from: 1, to: POSTGRES_MIGRATIONS.length });
        expect((await pool.query('SELECT workspace_id FROM documents')).rows).toEqual([{ workspace_id: DEFAULT_WORKSPACE_ID }]);
        expect((await pool.query('SELECT author_id FROM nodes')).rows).toEqual([{ author_id: DEFAULT_USER_ID }]);
        expect((await pool.query('SELECT workspace_id, sha256, size FROM blob_grants')).rows).toEqual([{ workspace_id: DEFAULT_WORKSPACE_ID, sha256: image, size: '0' }]);
        // the key is (workspace, host, key) now: another workspace may hold the same file
        const other = (await pool.query(`INSERT INTO workspaces (id, name, created_at) VALUES (gen_random_uuid(), 'b', now()) RETURNING id`)).rows[0].id;
        await pool.query(`INSERT INTO documents (id, workspace_id, host, host_key, created_at) VALUES (gen_random_uuid(), $1, 'figma', 'file-1', now())`, [other]);
      } finally {
        await pool.end();
      }
    });

    test('a database with a newer schema is refused at start, saying what to do', async () => {
      const url = await services().postgres.createDatabase();
      await (await open(url)).close();
      await sql(url, `INSERT INTO layerloop_schema (version, description) VALUES (7, 'from the future')`);
      const error = await openError(url);
      expect(error).toBeInstanceOf(PostgresConfigError);
      expect(error.message).toMatch(
        /schema version 7 is newer than this server understands \(2\): a newer layerloop has migrated it\. Upgrade this server to that version .* or point --store at another database/,
      );
    });
  });

  describe('start-up errors say what to fix', () => {
    test('a missing database, a wrong password, nothing listening', async () => {
      const admin = new URL(services().postgres.adminUrl);
      const missing = new URL(admin);
      missing.pathname = '/no_such_database';
      await expect(open(missing.toString())).rejects.toThrow(/database "no_such_database" does not exist at .*: create it \(createdb NAME, or CREATE DATABASE\) or fix the database name in --store/);

      // a role with a password, and a connection that gives the wrong one (the cluster trusts loopback, so
      // password checking is proved by a nonexistent role instead)
      const stranger = new URL(admin);
      stranger.username = 'nobody_here';
      stranger.password = 'secret-password';
      const refused = await openError(stranger.toString());
      expect(refused).toBeInstanceOf(PostgresConfigError);
      expect(refused.message).toMatch(/role "nobody_here" does not exist|password authentication failed/);
      expect(refused.message).not.toContain('secret-password');
      expect(refused.message).toContain('***');

      const closed = new URL(admin);
      closed.port = '1';
      await expect(open(closed.toString())).rejects.toThrow(/nothing accepts connections at postgres:\/\/postgres@127\.0\.0\.1:1\/postgres: is PostgreSQL running there/);
    });
  });

  describe('several processes on one database', () => {
    test("recovery fails a dead process's unfinished jobs and spares a live one's", async () => {
      const url = await services().postgres.createDatabase();
      const blobs = new FsBlobStore(path.join(root, 'blobs'));
      const alive = await open(url, blobs);
      const dying = await open(url, blobs);
      const { documentId } = await alive.openDocument('figma', 'shared');
      const ownedByAlive = await alive.updateJobState((await alive.createJob({ documentId, request: {} })).id, 'running');
      const queuedByAlive = await alive.createJob({ documentId, request: {} });
      const ownedByDying = await dying.updateJobState((await dying.createJob({ documentId, request: {} })).id, 'running');

      // a process started now must leave both alone: their owners hold their locks
      const starting = await open(url, blobs);
      expect(await starting.recoverInterruptedJobs()).toEqual([]);

      // the dying process is killed: PostgreSQL ends its sessions, its lock goes with them
      const { instanceKey } = await dying.diagnostics();
      await sql(url, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::integer::oid AND objsubid = 2`, [instanceKey]);
      await dying.close().catch(() => {});
      const recovered = await starting.recoverInterruptedJobs();
      expect(recovered.map((j) => [j.id, j.state, j.error])).toEqual([[ownedByDying.id, 'failed', INTERRUPTED_RUNNING_ERROR]]);
      expect((await alive.getJob(ownedByAlive.id))?.state).toBe('running');
      expect((await alive.getJob(queuedByAlive.id))?.state).toBe('queued');

      // a process that closes cleanly lets go of its jobs too (they are nobody's now)
      await alive.close();
      expect((await starting.recoverInterruptedJobs()).map((j) => j.id)).toEqual([ownedByAlive.id, queuedByAlive.id]);
      await starting.close();
    });

    test('the instance lock is taken again when its connection breaks', async () => {
      const url = await services().postgres.createDatabase();
      const errors: string[] = [];
      const store = await open(url, undefined, { onError: (message) => errors.push(message) });
      const { instanceKey } = await store.diagnostics();
      const holders = async () =>
        (await sql(url, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1::integer::oid AND objsubid = 2`, [instanceKey])).rows.map((r) => r.pid);
      const [first] = await holders();
      await sql(url, 'SELECT pg_terminate_backend($1)', [first]);
      let now = await holders();
      for (let i = 0; i < 100 && (now.length !== 1 || now[0] === first); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        now = await holders();
      }
      expect(now).toHaveLength(1);
      expect(now[0]).not.toBe(first);
      expect(errors[0]).toMatch(new RegExp(`lost the connection holding this server's instance lock ${instanceKey}; taking it again`));
      await store.close();
      expect(await holders()).toEqual([]);
    });

    test('racing transitions of one job: exactly one wins, the others are refused', async () => {
      const url = await services().postgres.createDatabase();
      const blobs = new FsBlobStore(path.join(root, 'blobs'));
      const stores = [await open(url, blobs), await open(url, blobs), await open(url, blobs)];
      const { documentId } = await stores[0].openDocument('web', 'race');
      for (let round = 0; round < 5; round++) {
        const job = await stores[0].updateJobState((await stores[0].createJob({ documentId, request: {} })).id, 'running');
        const outcomes = await Promise.allSettled([
          stores[0].updateJobState(job.id, 'succeeded'),
          stores[1].updateJobState(job.id, 'cancelled'),
          stores[2].updateJobState(job.id, 'failed', { error: 'x' }),
        ]);
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as Error).message).toMatch(/is not allowed \(.* is final\)/);
      }
      // and the same (host, key) opened at once by all gives one document
      const opened = await Promise.all(stores.map((s) => s.openDocument('figma', 'together')));
      expect(new Set(opened.map((o) => o.documentId)).size).toBe(1);
      expect(opened.filter((o) => o.created)).toHaveLength(1);
      // and one source node for the same pixels
      const image = (await blobs.put(bytesOf(3))).sha256;
      const sources = await Promise.all(stores.map((s) => s.addSourceNode({ documentId: opened[0].documentId, imageSha256: image })));
      expect(new Set(sources.map((n) => n.id)).size).toBe(1);
      await Promise.all(stores.map((s) => s.close()));
    });
  });

  describe('the database failing while the store runs', () => {
    test('it stops answering: unavailable in words for users, health degraded until it answers again', async () => {
      const url = await services().postgres.createDatabase();
      const store = await open(url);
      const { documentId } = await store.openDocument('web', 'outage');
      await services().postgres.setConnections(url, false);
      const unreachable = 'the server cannot use its database right now: it cannot be reached';
      const refused = await expectStoreError(store.getDocument(documentId), 'unavailable', new RegExp(`^${unreachable}$`));
      expect(String(refused.cause)).toMatch(/not currently accepting connections|terminat/); // pg's own words, for the log
      await expectStoreError(store.createJob({ documentId, request: {} }), 'unavailable', new RegExp(`^${unreachable}$`));
      expect(await store.health()).toEqual({ writable: false, problems: [`database writes fail: ${unreachable}`] });
      await services().postgres.setConnections(url, true);
      expect(await store.health()).toEqual({ writable: true, problems: [] }); // health asked it
      expect((await store.createJob({ documentId, request: {} })).state).toBe('queued');
    });

    // Its disk fills for real: the jobs table moved to a tablespace on a 1 MiB tmpfs (needs mount, so root, and
    // a server on this machine whose user owns the mount).
    const fullDisk = mountProblem() ?? (process.env.LAYERLOOP_TEST_POSTGRES_URL ? 'the PostgreSQL server is not one started here' : null);
    if (fullDisk && process.env.CI) throw new Error(`the full-disk test needs mount (run as root) and a local PostgreSQL: ${fullDisk}`);
    if (fullDisk) console.warn(`PostgresEditStore: the full-disk test is SKIPPED (${fullDisk}); in CI it fails instead`);
    (fullDisk ? test.skip : test)("its disk is full: writes fail 'full' (\"the server's database is full\"), health says so until a write works", async () => {
      const { adminUrl, localUser } = services().postgres;
      const url = await services().postgres.createDatabase();
      const name = new URL(url).pathname.slice(1);
      const mnt = mkdtempSync(path.join(os.tmpdir(), 'layerloop-pg-full-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=1m,mode=0700,uid=${localUser!.uid},gid=${localUser!.gid}`, 'tmpfs', mnt]);
      let store: PostgresEditStore | null = null;
      try {
        await sql(adminUrl, `CREATE TABLESPACE ${name} LOCATION '${mnt}'`);
        store = await open(url);
        const { documentId } = await store.openDocument('web', 'full');
        await sql(url, `ALTER TABLE jobs SET TABLESPACE ${name}`); // its TOAST table goes with it
        let full: unknown;
        for (let i = 0; i < 40 && full === undefined; i++) {
          // 192 KiB of random text per job: PostgreSQL cannot compress it away
          await store.createJob({ documentId, request: { noise: randomBytes(144 * 1024).toString('base64') } }).catch((error: unknown) => (full = error));
        }
        expect(full).toBeInstanceOf(StoreError);
        expect(full).toMatchObject({ code: 'full', message: "the server's database is full" });
        expect(String((full as StoreError).cause)).toMatch(/No space left on device/);
        expect(await store.health()).toEqual({ writable: false, problems: ["database writes fail: the server's database is full"] });
        execFileSync('mount', ['-o', 'remount,size=64m', mnt]); // the operator makes room
        expect((await store.createJob({ documentId, request: {} })).state).toBe('queued');
        expect(await store.health()).toEqual({ writable: true, problems: [] });
      } finally {
        await store?.close();
        await sql(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await sql(adminUrl, `DROP TABLESPACE IF EXISTS ${name}`);
        execFileSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    });
  });

  describe('integrityCheck', () => {
    test("rows written behind the store: a broken JSON column, a result that is not the job's, a missing parent", async () => {
      const url = await services().postgres.createDatabase();
      const { store, documentId, source, job, image, blobs } = await populate(url);
      const latent = await putLatent(blobs, 1);
      const [edit] = await store.addEditNodes(
        job.id,
        [{ parentId: source.id, instruction: 'x', regions: [{ instruction: 'x', maskSha256: null }], options: {}, seed: 1, variation: 0, sourceImageSha256: image, resultImageSha256: image, latent, conditioning: 'pixels' }],
        { markSucceeded: true },
      );
      expect(await store.integrityCheck({ verifyBlobHashes: true })).toEqual([]);

      const damaged = await store.createJob({ documentId, request: {} });
      await sql(url, `UPDATE jobs SET request = '[1, 2]' WHERE id = $1`, [damaged.id]);
      await expectStoreError(store.getJob(damaged.id), 'corrupt', new RegExp(`jobs row ${damaged.id}: request: .*expected record`));
      const other = await store.createJob({ documentId, request: {} });
      await sql(url, `UPDATE jobs SET result_node_ids = $2 WHERE id = $1`, [other.id, JSON.stringify([edit.id])]);
      // what only a restore with triggers off could do
      await sql(url, `SET session_replication_role = replica; UPDATE nodes SET parent_id = '11111111-1111-4111-8111-111111111111' WHERE id = '${source.id}'`);
      const problems = await store.integrityCheck();
      expect(problems).toEqual([
        { kind: 'foreign_key', message: `nodes row ${source.id} references a missing nodes row 11111111-1111-4111-8111-111111111111` },
        { kind: 'corrupt_row', message: expect.stringMatching(new RegExp(`^jobs row ${damaged.id}: request: `)) },
        { kind: 'job_results', message: `job ${other.id}: result node ${edit.id} is not a node of this job` },
        { kind: 'job_results', message: `job ${other.id} is queued but lists result nodes` },
      ]);
      await store.close();
    });
  });

  test('a bigint past 2^53 or an infinite timestamp reads as a corrupt row, never as a wrong value', async () => {
    const url = await services().postgres.createDatabase();
    const { store, source, job } = await populate(url);
    await sql(url, `UPDATE nodes SET seed = 9007199254740993 WHERE id = $1`, [source.id]);
    await expectStoreError(store.getNode(source.id), 'corrupt', new RegExp(`nodes row ${source.id}: seed`));
    await sql(url, `UPDATE jobs SET started_at = 'infinity' WHERE id = $1`, [job.id]);
    await expectStoreError(store.getJob(job.id), 'corrupt', new RegExp(`jobs row ${job.id}: started_at`));
    await store.close();
  });
});
