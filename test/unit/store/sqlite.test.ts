import { randomUUID } from 'node:crypto';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE, DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID, combineHealth, openStore } from '../../../server/store';
import { MIGRATIONS, type Migration, migrate, schemaVersion } from '../../../server/store/migrations';
import { SqliteEditStore } from '../../../server/store/sqlite';
import { FsBlobStore } from '../../../server/store/blobs';
import { TestClock, bytesOf, editStoreContract, expectStoreError, putLatent } from './contract';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'layerloop-sqlite-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('SqliteEditStore: EditStore contract', () => {
  editStoreContract(async (options) => {
    const clock = new TestClock();
    const dataDir = path.join(root, `data-${randomUUID()}`);
    const cutOff = () => fs.rm(path.join(dataDir, DATABASE_FILE));
    if (!options?.blobs) return { store: await openStore(dataDir, { now: clock.now }), clock, cutOff };
    const blobs = options.blobs;
    await fs.mkdir(dataDir, { recursive: true });
    const edits = new SqliteEditStore(path.join(dataDir, DATABASE_FILE), blobs, { now: clock.now });
    return { store: { blobs, edits, health: async () => combineHealth([await blobs.health(), await edits.health()]), close: async () => edits.close() }, clock, cutOff };
  });
});

/** A document with a source node and one succeeded edit job (one node with mask + latent). */
async function populate(dataDir: string) {
  const store = await openStore(dataDir);
  const { documentId } = await store.edits.openDocument('photoshop', 'psd-1');
  const image = (await store.blobs.put(bytesOf(1))).sha256;
  const source = await store.edits.addSourceNode({ documentId, imageSha256: image });
  const job = await store.edits.updateJobState((await store.edits.createJob({ documentId, request: { a: 1 } })).id, 'running');
  const mask = (await store.blobs.put(bytesOf(2))).sha256;
  const result = (await store.blobs.put(bytesOf(3))).sha256;
  const latent = await putLatent(store.blobs, 1);
  const [edit] = await store.edits.addEditNodes(
    job.id,
    [
      {
        parentId: source.id,
        instruction: 'turn the mug red',
        regions: [{ instruction: 'turn the mug red', maskSha256: mask }],
        options: {},
        seed: 7,
        variation: 0,
        sourceImageSha256: image,
        resultImageSha256: result,
        latent,
        conditioning: 'pixels',
      },
    ],
    { markSucceeded: true },
  );
  return { store, documentId, source, edit, job, image, mask, result, latent };
}

describe('opening', () => {
  test('creates dataDir/blobs and dataDir/layerloop.sqlite with WAL, synchronous=FULL and foreign keys on', async () => {
    const dataDir = path.join(root, 'nested', 'data');
    const store = await openStore(dataDir);
    expect((await fs.stat(path.join(dataDir, 'blobs'))).isDirectory()).toBe(true);
    expect((await fs.stat(path.join(dataDir, 'layerloop.sqlite'))).isFile()).toBe(true);
    expect(store.edits.diagnostics()).toEqual({ schemaVersion: MIGRATIONS.length, journalMode: 'wal', synchronous: 'full', foreignKeys: true });
    await store.close();
    await store.close(); // idempotent
  });

  test('data survives close and reopen; migrations are idempotent', async () => {
    const dataDir = path.join(root, 'data');
    const { store, documentId, source, edit, job } = await populate(dataDir);
    const before = await store.edits.history(documentId);
    await store.close();

    const again = await openStore(dataDir);
    expect(again.edits.diagnostics().schemaVersion).toBe(MIGRATIONS.length);
    expect(await again.edits.history(documentId)).toEqual(before);
    expect(before?.nodes).toEqual([source, edit]);
    expect(await again.edits.getJob(job.id)).toMatchObject({ state: 'succeeded', resultNodeIds: [edit.id] });
    expect(await again.edits.openDocument('photoshop', 'psd-1')).toEqual({ documentId, created: false });
    await again.close();

    const db = new Database(path.join(dataDir, 'layerloop.sqlite'));
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(migrate(db)).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length });
    db.close();
  });
});

describe('migrations', () => {
  const latest = MIGRATIONS.length;
  const addColumn: Migration = {
    version: latest + 1,
    description: 'a later column',
    up: (db) => db.exec("ALTER TABLE nodes ADD COLUMN label TEXT NOT NULL DEFAULT ''"),
  };

  test('a later migration is applied once, on top of existing data', async () => {
    const dataDir = path.join(root, 'data');
    const { store, edit } = await populate(dataDir);
    await store.close();
    const db = new Database(path.join(dataDir, 'layerloop.sqlite'));
    expect(migrate(db, [...MIGRATIONS, addColumn])).toEqual({ from: latest, to: latest + 1 });
    expect(migrate(db, [...MIGRATIONS, addColumn])).toEqual({ from: latest + 1, to: latest + 1 });
    expect(db.prepare('SELECT label FROM nodes WHERE id = ?').get(edit.id)).toEqual({ label: '' });
    db.close();
  });

  test('version 2 moves a version-1 store into the default workspace: documents, jobs and nodes kept, their blobs granted', async () => {
    const dataDir = path.join(root, 'v1');
    await fs.mkdir(dataDir, { recursive: true });
    const blobs = new FsBlobStore(path.join(dataDir, 'blobs'));
    await fs.mkdir(blobs.dir, { recursive: true });
    const image = (await blobs.put(bytesOf(1))).sha256;
    const mask = (await blobs.put(bytesOf(2))).sha256;
    const result = (await blobs.put(bytesOf(3))).sha256;
    const unreferenced = (await blobs.put(bytesOf(4))).sha256;
    const db = new Database(path.join(dataDir, DATABASE_FILE));
    migrate(db, MIGRATIONS.slice(0, 1));
    const [doc, job, source, edit] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const at = '2025-01-02T03:04:05.000Z';
    db.prepare('INSERT INTO documents (id, host, host_key, created_at) VALUES (?, ?, ?, ?)').run(doc, 'figma', 'file-1', at);
    db.prepare(`INSERT INTO jobs (id, document_id, state, request, result_node_ids, created_at) VALUES (?, ?, 'succeeded', '{}', ?, ?)`).run(job, doc, JSON.stringify([edit]), at);
    const insertNode = db.prepare(
      `INSERT INTO nodes (id, document_id, parent_id, kind, instruction, regions, options, source_image_sha256, result_image_sha256, job_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?)`,
    );
    insertNode.run(source, doc, null, 'source', null, '[]', image, image, null, at);
    insertNode.run(edit, doc, source, 'edit', 'red', JSON.stringify([{ instruction: 'red', maskSha256: mask }]), image, result, job, at);
    db.close();

    const edits = new SqliteEditStore(path.join(dataDir, DATABASE_FILE), blobs);
    try {
      expect(await edits.getDocument(doc)).toEqual({ id: doc, workspaceId: DEFAULT_WORKSPACE_ID, host: 'figma', hostDocumentKey: 'file-1', createdAt: at });
      expect((await edits.getJob(job))?.userId).toBe(DEFAULT_USER_ID);
      expect((await edits.history(doc))?.nodes.map((n) => [n.id, n.authorId])).toEqual([
        [source, DEFAULT_USER_ID],
        [edit, DEFAULT_USER_ID],
      ]);
      for (const sha of [image, mask, result]) expect(await edits.accounts.blobVisible([DEFAULT_WORKSPACE_ID], sha)).toBe(true);
      expect(await edits.accounts.blobVisible([DEFAULT_WORKSPACE_ID], unreferenced)).toBe(false);
      expect((await edits.openDocument('figma', 'file-1')).documentId).toBe(doc);
      expect(edits.diagnostics().foreignKeys).toBe(true);
      expect(await edits.integrityCheck()).toEqual([]);
    } finally {
      edits.close();
    }
  });

  test('a failing migration rolls back whole, user_version included', () => {
    const db = new Database(path.join(root, 'x.sqlite'));
    const broken: Migration = { version: latest + 1, description: 'broken', up: (d) => d.exec('CREATE TABLE t (a); SELECT * FROM nope') };
    expect(() => migrate(db, [...MIGRATIONS, broken])).toThrow(/no such table: nope/);
    expect(schemaVersion(db)).toBe(latest);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 't'").get()).toBeUndefined();
    db.close();
  });

  test('a database newer than the code is refused; a misnumbered list is refused', async () => {
    const file = path.join(root, 'newer.sqlite');
    const db = new Database(file);
    migrate(db, [...MIGRATIONS, addColumn]);
    db.close();
    expect(() => new SqliteEditStore(file, new FsBlobStore(path.join(root, 'b')))).toThrow(new RegExp(`schema version ${latest + 1} is newer than this server understands \\(${latest}\\)`));
    const fresh = new Database(':memory:');
    expect(() => migrate(fresh, [{ ...addColumn, version: latest + 2 }])).toThrow(/numbered 1, 2, 3/);
    fresh.close();
  });
});

describe('integrityCheck', () => {
  test('detects a deleted blob file, naming the node and the field', async () => {
    const { store, edit, mask } = await populate(path.join(root, 'data'));
    expect(await store.edits.integrityCheck()).toEqual([]);
    await fs.rm(store.blobs.pathFor(mask));
    expect(await store.edits.integrityCheck()).toEqual([
      { kind: 'missing_blob', message: `node ${edit.id} regions.0.maskSha256: blob ${mask} is missing from the blob store` },
    ]);
    await store.close();
  });

  test('detects damaged blob bytes (with verifyBlobHashes) and a latent of the wrong length', async () => {
    const { store, edit, result, latent } = await populate(path.join(root, 'data'));
    await fs.writeFile(store.blobs.pathFor(result), Buffer.from('not the image'));
    await fs.writeFile(store.blobs.pathFor(latent.sha256), Buffer.alloc(6));
    expect(await store.edits.integrityCheck()).toEqual([
      { kind: 'latent_size', message: `node ${edit.id} latent.sha256: latent blob ${latent.sha256} has 6 bytes, its shape needs 48` },
    ]);
    const deep = await store.edits.integrityCheck({ verifyBlobHashes: true });
    expect(deep.map((p) => p.kind)).toEqual(['corrupt_blob', 'latent_size']);
    expect(deep[0].message).toContain(`node ${edit.id} resultImageSha256: blob ${result} is damaged on the server`);
    await store.close();
  });

  test('a corrupted JSON column is a clear error on read and a problem in the check', async () => {
    const dataDir = path.join(root, 'data');
    const { store, edit, job } = await populate(dataDir);
    const db = new Database(path.join(dataDir, 'layerloop.sqlite'));
    db.prepare("UPDATE nodes SET regions = '[{\"instruction\": 5' WHERE id = ?").run(edit.id);
    db.prepare(`UPDATE jobs SET request = '[1, 2]' WHERE id = ?`).run(job.id);
    db.close();
    await expectStoreError(store.edits.getNode(edit.id), 'corrupt', new RegExp(`nodes row ${edit.id}: regions: not valid JSON`));
    await expectStoreError(store.edits.getJob(job.id), 'corrupt', new RegExp(`jobs row ${job.id}: request: .*expected record`));
    const problems = await store.edits.integrityCheck();
    expect(problems.map((p) => p.kind)).toEqual(['corrupt_row', 'corrupt_row']);
    expect(problems[0].message).toMatch(/^nodes row .*: regions: not valid JSON/);
    await store.close();
  });

  test('reports rows that break a foreign key (written behind the store\'s back)', async () => {
    const dataDir = path.join(root, 'data');
    const { store, edit } = await populate(dataDir);
    const db = new Database(path.join(dataDir, 'layerloop.sqlite'));
    db.pragma('foreign_keys = OFF'); // better-sqlite3 turns them on by default
    db.prepare("UPDATE nodes SET parent_id = '11111111-1111-4111-8111-111111111111' WHERE id = ?").run(edit.id);
    db.close();
    expect(await store.edits.integrityCheck()).toEqual([{ kind: 'foreign_key', message: expect.stringMatching(/^nodes rowid 2 references a missing nodes row$/) }]);
    await store.close();
  });
});
