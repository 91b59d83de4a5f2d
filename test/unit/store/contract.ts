/**
 * Contract tests for BlobStore and EditStore. Each backend's test file calls these with a factory, so the
 * embedded store (FsBlobStore + SqliteEditStore) and a later networked one are held to the same behaviour.
 * Backend-specific checks (file layout, pragmas, migrations) live in that backend's own test file.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../../server/store/blobs';
import {
  type BlobStore,
  type EditNodeInput,
  type EditStore,
  INTERRUPTED_QUEUED_ERROR,
  INTERRUPTED_RUNNING_ERROR,
  JOB_TRANSITIONS,
  type JobState,
  type LatentRef,
  DEFAULT_USER_ID,
  DEFAULT_WORKSPACE_ID,
  type Store,
  StoreError,
} from '../../../server/store/store';
import { hashTokenSecret } from '../../../server/auth/tokens';
import { encodeLatent } from '../../../server/store/latent';

/** A clock the tests set explicitly, so createdAt/startedAt/finishedAt can be compared exactly. */
export class TestClock {
  private current = new Date('2025-03-04T05:06:07.000Z');
  readonly now = (): Date => new Date(this.current.getTime());
  set(iso: string): string {
    this.current = new Date(iso);
    return iso;
  }
}

/** Deterministic bytes, different per seed. */
export function bytesOf(seed: number, length = 257): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Expects `promise` to reject with a StoreError of `code` whose message matches `message`. */
export async function expectStoreError(promise: Promise<unknown>, code: StoreError['code'], message?: RegExp): Promise<StoreError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof StoreError)) throw new Error(`expected a StoreError(${code}), got ${caught === undefined ? 'no error' : String(caught)}`);
  expect(caught.code).toBe(code);
  if (message) expect(caught.message).toMatch(message);
  return caught;
}

export const BAD_HASHES: unknown[] = [
  '../../etc/passwd',
  '../../../../../../etc/passwd',
  'ab/../../cd',
  '',
  'A'.repeat(64),
  'a'.repeat(63),
  'a'.repeat(65),
  `${'a'.repeat(64)}\n`,
  ` ${'a'.repeat(63)}`,
  `${'a'.repeat(62)}/x`,
  `${'0'.repeat(62)}..`,
  'g'.repeat(64),
  123,
  null,
  undefined,
];

// ---------------------------------------------------------------------------------------------

/** A blob store under test, with ways to reach its storage behind its back. */
export interface BlobStoreHarness {
  /** a fresh, empty store */
  blobs: BlobStore;
  /** another store over the same storage with nothing in memory, as a restarted server opens it */
  reopen(): BlobStore;
  /**
   * A store over the same storage whose writes stop just before the bytes are stored until `release()`, and
   * then fail with `fail` when it is given; `writing()` resolves once a write has reached that point.
   */
  gated(fail?: Error): { blobs: BlobStore; release(): void; writing(): Promise<void> };
  /** Replaces a stored blob's bytes behind the store's back (disk damage, a bad writer). */
  damage(sha256: string, bytes: Uint8Array): Promise<void>;
  /**
   * A store whose storage cannot take writes for a reason of the storage's own, as a running server may find
   * it: its directory removed (files), a bucket that is not there (S3).
   */
  unusable(): Promise<BlobStore>;
}

/** What a user may read of a storage failure: no paths, URLs, errno or SQLite codes. */
export function expectWrittenForUsers(message: string): void {
  expect(message).toMatch(/^the server cannot /);
  expect(message).not.toMatch(/\/|\bE[A-Z]{3,}\b|SQLITE_/);
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a harness's gated() is made of: `hold` goes where the backend lets a test stop a write just before the
 * bytes are stored (FsBlobStore's beforeRename, S3BlobStore's beforePut); it waits for `release()` and then
 * fails with `fail` when given; `writing()` resolves once a write is held there.
 */
export function writeGate(fail?: Error): { hold: () => Promise<void>; release: () => void; writing: () => Promise<void> } {
  let held = false;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    hold: async () => {
      held = true;
      await gate;
      if (fail) throw fail;
    },
    release,
    writing: async () => {
      for (let i = 0; i < 200 && !held; i++) await tick(5);
      expect(held).toBe(true);
    },
  };
}

export function blobStoreContract(makeHarness: () => Promise<BlobStoreHarness>): void {
  let h: BlobStoreHarness;
  let blobs: BlobStore;
  beforeEach(async () => {
    h = await makeHarness();
    blobs = h.blobs;
  });

  test('put stores bytes under their sha256; the same bytes again are deduplicated', async () => {
    const bytes = bytesOf(1);
    const first = await blobs.put(bytes);
    expect(first).toEqual({ sha256: sha256Of(bytes), size: 257, created: true });
    const again = await blobs.put(bytesOf(1));
    expect(again).toEqual({ sha256: first.sha256, size: 257, created: false });
    expect(await blobs.get(first.sha256)).toEqual(bytes);
    expect(await blobs.has(first.sha256)).toBe(true);
    expect(await blobs.stat(first.sha256)).toEqual({ sha256: first.sha256, size: 257 });
  });

  test('different bytes get different hashes; an empty blob is a blob', async () => {
    const a = await blobs.put(bytesOf(2));
    const b = await blobs.put(bytesOf(3));
    expect(a.sha256).not.toBe(b.sha256);
    const empty = await blobs.put(new Uint8Array(0));
    expect(empty).toEqual({ sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', size: 0, created: true });
    expect(await blobs.get(empty.sha256)).toEqual(new Uint8Array(0));
    expect(await blobs.stat(a.sha256)).toEqual({ sha256: a.sha256, size: 257 });
  });

  test('absent blobs read as null / false', async () => {
    const absent = sha256Of(bytesOf(99));
    expect(await blobs.get(absent)).toBeNull();
    expect(await blobs.has(absent)).toBe(false);
    expect(await blobs.stat(absent)).toBeNull();
  });

  test('get returns the bytes of an intact blob (checked against their sha256)', async () => {
    const { sha256 } = await blobs.put(bytesOf(4));
    expect(await blobs.get(sha256)).toEqual(bytesOf(4));
    expect(await h.reopen().get(sha256)).toEqual(bytesOf(4));
  });

  test('malformed hashes are rejected by every reader, never turned into a path', async () => {
    for (const bad of BAD_HASHES) {
      for (const call of [() => blobs.get(bad as string), () => blobs.has(bad as string), () => blobs.stat(bad as string)]) {
        await expectStoreError(call(), 'invalid_input', /sha256 of 64 lowercase hex/);
      }
    }
  });

  test("a put with wait 'readable' is readable at once and durable once whenDurable resolves", async () => {
    const bytes = bytesOf(5);
    const put = await blobs.put(bytes, { wait: 'readable' });
    expect(put).toEqual({ sha256: sha256Of(bytesOf(5)), size: 257, created: true });
    bytes.fill(0); // the store kept its own copy
    expect(await blobs.get(put.sha256)).toEqual(bytesOf(5));
    expect(await blobs.has(put.sha256)).toBe(true);
    expect(await blobs.stat(put.sha256)).toEqual({ sha256: put.sha256, size: 257 });
    await blobs.whenDurable(put.sha256);
    await blobs.flush();
    expect(await blobs.get(put.sha256)).toEqual(bytesOf(5));
    expect(await blobs.put(bytesOf(5))).toEqual({ ...put, created: false });
    await blobs.whenDurable(sha256Of(bytesOf(98))); // nothing in flight: resolves (absent blobs are has()'s business)
    await expectStoreError(blobs.whenDurable('../etc/passwd'), 'invalid_input', /sha256 of 64 lowercase hex/);
  });

  test('put rejects non-bytes', async () => {
    await expectStoreError(blobs.put('hello' as unknown as Uint8Array), 'invalid_input', /Uint8Array/);
    await expectStoreError(blobs.put([1, 2, 3] as unknown as Uint8Array), 'invalid_input', /Uint8Array/);
    expect(await blobs.has(sha256Of(new Uint8Array([1, 2, 3])))).toBe(false);
  });

  test("wait 'readable': served from memory while it is written; whenDurable and flush wait for the write", async () => {
    const { blobs: gated, release, writing } = h.gated();
    const sha = sha256Of(bytesOf(10));
    expect(await gated.put(bytesOf(10), { wait: 'readable' })).toEqual({ sha256: sha, size: 257, created: true });
    await writing();
    expect(await gated.get(sha)).toEqual(bytesOf(10));
    expect(await h.reopen().has(sha)).toBe(false); // not stored yet: a crash now loses it
    // a second put of the same bytes joins the write in flight instead of starting another
    expect(await gated.put(bytesOf(10), { wait: 'readable' })).toEqual({ sha256: sha, size: 257, created: false });

    let durable = false;
    const whenDurable = gated.whenDurable(sha).then(() => (durable = true));
    const flushed = gated.flush();
    await tick(20);
    expect(durable).toBe(false);
    release();
    await Promise.all([whenDurable, flushed]);
    expect(await h.reopen().get(sha)).toEqual(bytesOf(10));
  });

  test("a 'durable' put of bytes being written 'readable' waits for that write", async () => {
    const { blobs: gated, release, writing } = h.gated();
    await gated.put(bytesOf(11), { wait: 'readable' });
    await writing();
    let done = false;
    const durablePut = gated.put(bytesOf(11)).then((r) => ((done = true), r));
    await tick(20);
    expect(done).toBe(false);
    release();
    expect(await durablePut).toMatchObject({ sha256: sha256Of(bytesOf(11)), created: false });
    expect(await h.reopen().has(sha256Of(bytesOf(11)))).toBe(true);
  });

  test("a failed 'readable' write: whenDurable rejects with the cause, the blob is gone, a new put writes it", async () => {
    const { blobs: failing, release } = h.gated(new Error('disk full (simulated)'));
    const { sha256 } = await failing.put(bytesOf(12), { wait: 'readable' });
    release();
    await expect(failing.whenDurable(sha256)).rejects.toThrow('disk full (simulated)');
    await expect(failing.whenDurable(sha256)).rejects.toThrow('disk full (simulated)'); // after the write ended too
    expect(await failing.has(sha256)).toBe(false);
    expect(await failing.get(sha256)).toBeNull();
    await failing.flush(); // settled writes are not waited for again, failed or not
    expect(await h.reopen().put(bytesOf(12))).toMatchObject({ sha256, created: true });
  });

  test('damaged bytes (one bit flipped, same size) are never returned; a put of the right bytes repairs them', async () => {
    const { sha256 } = await blobs.put(bytesOf(6));
    const damaged = bytesOf(6);
    damaged[100] ^= 0x01;
    await h.damage(sha256, damaged);
    const damage = new RegExp(`^blob ${sha256} is damaged on the server \\(its 257 bytes hash to [0-9a-f]{64}\\): upload the same image again to repair it$`);
    await expectStoreError(blobs.get(sha256), 'corrupt', damage); // every read is checked, not only a fresh store's
    await expectStoreError(h.reopen().get(sha256), 'corrupt', damage);
    // the same bytes again: not "already stored", but rewritten
    expect(await blobs.put(bytesOf(6))).toEqual({ sha256, size: 257, created: true });
    expect(await blobs.get(sha256)).toEqual(bytesOf(6));
    expect(await h.reopen().get(sha256)).toEqual(bytesOf(6));
  });

  test('a truncated blob is repaired by putting the bytes again', async () => {
    const { sha256 } = await blobs.put(bytesOf(7));
    await h.damage(sha256, bytesOf(7).subarray(0, 10));
    const store = h.reopen();
    expect(await store.put(bytesOf(7))).toEqual({ sha256, size: 257, created: true });
    expect(await store.get(sha256)).toEqual(bytesOf(7));
    expect(await h.reopen().get(sha256)).toEqual(bytesOf(7));
  });

  test("storage that cannot take writes: puts fail 'unavailable' in words for users, none is acknowledged, health says why", async () => {
    expect(await blobs.health()).toEqual({ writable: true, problems: [] });
    const broken = await h.unusable();
    const durable = await expectStoreError(broken.put(bytesOf(40)), 'unavailable');
    // not answered early and then lost: a 'readable' put hears the failure too
    const readable = await expectStoreError(broken.put(bytesOf(41), { wait: 'readable' }), 'unavailable');
    expectWrittenForUsers(durable.message);
    expectWrittenForUsers(readable.message);
    expect(await broken.health()).toEqual({ writable: false, problems: [expect.stringContaining(durable.message)] });
    expect(await blobs.health()).toEqual({ writable: true, problems: [] }); // another store's trouble is not this one's
  });
}

// ---------------------------------------------------------------------------------------------

export interface EditStoreHarness {
  store: Store;
  clock: TestClock;
  /**
   * Makes the store's storage unusable behind its back, as a running server may find it: the SQLite file
   * removed, the PostgreSQL database refusing connections (and the open ones ended).
   */
  cutOff(): Promise<void>;
}

/** Puts a latent of `shape` (values derived from `seed`) and returns its reference. */
export async function putLatent(blobs: BlobStore, seed: number, shape = [4, 2, 3]): Promise<LatentRef> {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i) * 3);
  const { sha256 } = await blobs.put(encodeLatent(values));
  return {
    sha256,
    dtype: 'float16',
    shape,
    geometry: { x: 8, y: 16, width: 96, height: 64, workWidth: 96, workHeight: 64 },
    scalingFactor: 0.18215,
  };
}

/**
 * `makeHarness` opens a fresh, empty store with `clock`; with `blobs`, its edit store works over that blob store
 * (the upload tests give it one whose writes they hold back).
 */
export function editStoreContract(makeHarness: (options?: { blobs?: BlobStore }) => Promise<EditStoreHarness>): void {
  let h: EditStoreHarness;
  let edits: EditStore;
  let blobs: BlobStore;
  beforeEach(async () => {
    h = await makeHarness();
    edits = h.store.edits;
    blobs = h.store.blobs;
  });
  afterEach(async () => {
    await h.store.close();
  });

  /** a document with a source node; returns ids and the source image hash */
  async function documentWithSource(key = 'file-1:node-2') {
    const { documentId } = await edits.openDocument('figma', key);
    const image = (await blobs.put(bytesOf(10))).sha256;
    const source = await edits.addSourceNode({ documentId, imageSha256: image });
    return { documentId, image, source };
  }

  async function runningJob(documentId: string) {
    const job = await edits.createJob({ documentId, request: { instruction: 'x' } });
    return edits.updateJobState(job.id, 'running');
  }

  async function editInput(parentId: string, sourceImageSha256: string, variation: number): Promise<EditNodeInput> {
    const result = (await blobs.put(bytesOf(100 + variation))).sha256;
    const mask = (await blobs.put(bytesOf(200))).sha256;
    return {
      parentId,
      instruction: 'make the circle blue',
      regions: [
        { instruction: 'make the circle blue', maskSha256: mask },
        { instruction: 'stormy sky', maskSha256: null },
      ],
      options: { steps: 20, guidance: { text: 7.5, image: 1.5 }, locality: 'both' },
      seed: 42 + variation,
      variation,
      sourceImageSha256,
      resultImageSha256: result,
      latent: await putLatent(blobs, variation),
      conditioning: 'pixels',
    };
  }

  describe('documents', () => {
    test('the same (host, key) gives the same id; another host or key gives another', async () => {
      const t = h.clock.set('2025-05-06T07:08:09.123Z');
      const a = await edits.openDocument('figma', 'abc');
      expect(a.created).toBe(true);
      expect(a.documentId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      h.clock.set('2025-05-06T08:00:00.000Z');
      expect(await edits.openDocument('figma', 'abc')).toEqual({ documentId: a.documentId, created: false });
      const b = await edits.openDocument('photoshop', 'abc');
      const c = await edits.openDocument('figma', 'abd');
      expect(new Set([a.documentId, b.documentId, c.documentId]).size).toBe(3);
      expect(await edits.getDocument(a.documentId)).toEqual({ id: a.documentId, workspaceId: DEFAULT_WORKSPACE_ID, host: 'figma', hostDocumentKey: 'abc', createdAt: t });
    });

    test('findDocument answers what openDocument would, without making a document', async () => {
      expect(await edits.findDocument('figma', 'not-yet')).toBeNull();
      expect(await edits.findDocument('figma', 'not-yet')).toBeNull(); // asking made nothing
      const { documentId } = await edits.openDocument('figma', 'not-yet');
      expect(await edits.findDocument('figma', 'not-yet')).toBe(documentId);
      expect(await edits.findDocument('photoshop', 'not-yet')).toBeNull();
      expect(await edits.findDocument('figma', 'not-yet', '7d444840-9dc0-41c4-8ab3-6e6b2c1e5a11')).toBeNull();
      await expectStoreError(edits.findDocument('web', ''), 'invalid_input', /findDocument hostDocumentKey/);
    });

    test('unknown documents read as null; bad hosts, keys and ids are rejected', async () => {
      expect(await edits.getDocument('7d444840-9dc0-41c4-8ab3-6e6b2c1e5a11')).toBeNull();
      expect(await edits.history('7d444840-9dc0-41c4-8ab3-6e6b2c1e5a11')).toBeNull();
      await expectStoreError(edits.openDocument('krita' as never, 'k'), 'invalid_input', /host/);
      await expectStoreError(edits.openDocument('web', ''), 'invalid_input', /hostDocumentKey/);
      await expectStoreError(edits.getDocument('not-a-uuid'), 'invalid_input', /getDocument id/);
    });
  });

  describe('nodes', () => {
    test('a source node round-trips with exact field values', async () => {
      const { documentId } = await edits.openDocument('web', 'upload-1');
      const image = (await blobs.put(bytesOf(11))).sha256;
      const t = h.clock.set('2025-06-01T00:00:00.500Z');
      const node = await edits.addSourceNode({ documentId, imageSha256: image, options: { name: 'Layer 1' } });
      const expected = {
        id: node.id,
        documentId,
        parentId: null,
        kind: 'source',
        instruction: null,
        regions: [],
        options: { name: 'Layer 1' },
        seed: null,
        variation: null,
        sourceImageSha256: image,
        resultImageSha256: image,
        latent: null,
        conditioning: null,
        jobId: null,
        authorId: DEFAULT_USER_ID,
        createdAt: t,
      };
      expect(node).toEqual(expected);
      expect(await edits.getNode(node.id)).toEqual(expected);
      expect(await edits.getNode('2b0f1c55-3f67-4c39-9d3b-1c4d8e2a7f00')).toBeNull();
    });

    test('a source node is added once per (document, parent, pixels); other pixels or parents get their own', async () => {
      const { documentId, image, source } = await documentWithSource();
      const again = await edits.addSourceNode({ documentId, imageSha256: image, options: { name: 'ignored' } });
      expect(again).toEqual(source);
      const painted = (await blobs.put(bytesOf(12))).sha256;
      const other = await edits.addSourceNode({ documentId, imageSha256: painted });
      expect(other.id).not.toBe(source.id);
      const child = await edits.addSourceNode({ documentId, parentId: source.id, imageSha256: image });
      expect(child.id).not.toBe(source.id);
      expect(await edits.addSourceNode({ documentId, parentId: source.id, imageSha256: image })).toEqual(child);
      const elsewhere = await edits.openDocument('figma', 'another-file');
      const foreign = await edits.addSourceNode({ documentId: elsewhere.documentId, imageSha256: image });
      expect(foreign.id).not.toBe(source.id);
      expect((await edits.history(documentId))!.nodes.map((n) => n.id)).toEqual([source.id, other.id, child.id]);
    });

    test('edit nodes of a job round-trip with exact field values; history is in creation order', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      const inputs = [await editInput(source.id, image, 0), await editInput(source.id, image, 1)];
      const t = h.clock.set('2025-06-02T10:11:12.131Z');
      const nodes = await edits.addEditNodes(job.id, inputs);
      expect(nodes).toHaveLength(2);
      nodes.forEach((node, i) => {
        expect(node).toEqual({ ...inputs[i], id: node.id, documentId, kind: 'edit', jobId: job.id, authorId: DEFAULT_USER_ID, createdAt: t });
      });
      expect(await edits.getNode(nodes[1].id)).toEqual(nodes[1]);

      // a second-generation edit continuing from the first variation's latent
      const job2 = await runningJob(documentId);
      const next = { ...(await editInput(nodes[0].id, inputs[0].resultImageSha256, 0)), conditioning: 'latent' as const, seed: null, variation: null };
      const [child] = await edits.addEditNodes(job2.id, [next]);
      expect(child.parentId).toBe(nodes[0].id);
      expect(child.seed).toBeNull();

      const history = await edits.history(documentId);
      expect(history).toEqual({ documentId, nodes: [source, ...nodes, child] });
    });

    test('addEditNodes is one transaction: a failing node leaves none of the batch', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      const good = [await editInput(source.id, image, 0), await editInput(source.id, image, 1)];
      const orphan = { ...(await editInput(source.id, image, 2)), parentId: 'a1b2c3d4-0000-4000-8000-000000000000' };
      await expectStoreError(edits.addEditNodes(job.id, [...good, orphan]), 'not_found', /nodes\.2\.parentId/);
      expect((await edits.history(documentId))?.nodes).toEqual([source]);
      expect(await edits.getJob(job.id)).toMatchObject({ state: 'running', resultNodeIds: [] });
      // and the same batch without the bad node goes in whole
      expect(await edits.addEditNodes(job.id, good)).toHaveLength(2);
    });

    test('markSucceeded adds the nodes and finishes the job in one step', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      const t = h.clock.set('2025-06-03T00:00:00.000Z');
      const nodes = await edits.addEditNodes(job.id, [await editInput(source.id, image, 0)], { markSucceeded: true });
      expect(await edits.getJob(job.id)).toEqual({ ...job, state: 'succeeded', resultNodeIds: [nodes[0].id], finishedAt: t });
    });

    test('a parent must be a node of the same document', async () => {
      const one = await documentWithSource('doc-one');
      const two = await documentWithSource('doc-two');
      const job = await runningJob(two.documentId);
      await expectStoreError(edits.addEditNodes(job.id, [await editInput(one.source.id, one.image, 0)]), 'not_found', /is not a node of document/);
      await expectStoreError(edits.addSourceNode({ documentId: two.documentId, parentId: one.source.id, imageSha256: one.image }), 'not_found');
      await expectStoreError(edits.addSourceNode({ documentId: 'c0ffee00-0000-4000-8000-000000000000', imageSha256: one.image }), 'not_found', /no document/);
    });

    test('nodes cannot reference blobs that are not stored, nor a latent whose bytes do not fit its shape', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      const missing = sha256Of(bytesOf(4242));
      const base = await editInput(source.id, image, 0);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, resultImageSha256: missing }]), 'invalid_input', /resultImageSha256: blob .* is not in the blob store/);
      await expectStoreError(
        edits.addEditNodes(job.id, [{ ...base, regions: [{ instruction: 'x', maskSha256: missing }] }]),
        'invalid_input',
        /regions\.0\.maskSha256/,
      );
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, latent: { ...base.latent!, shape: [4, 8, 8] } }]), 'invalid_input', /needs 512/);
      // the reference images an edit read (options.references) are blobs it points at too
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, options: { references: [image, missing] } }]), 'invalid_input', /options\.references\.1: blob .* is not in the blob store/);
      await expectStoreError(edits.addSourceNode({ documentId, imageSha256: missing }), 'invalid_input', /imageSha256/);
      expect((await edits.history(documentId))?.nodes).toEqual([source]);
    });

    test('malformed node input is rejected with the field named', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      const base = await editInput(source.id, image, 0);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, seed: 1.5 }]), 'invalid_input', /nodes: 0\.seed/);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, regions: [] }]), 'invalid_input', /0\.regions/);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, resultImageSha256: '../../etc/passwd' }]), 'invalid_input', /resultImageSha256/);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, options: { bad: undefined } as never }]), 'invalid_input', /options/);
      await expectStoreError(edits.addEditNodes(job.id, [{ ...base, latent: { ...base.latent!, dtype: 'float32' as never } }]), 'invalid_input', /dtype/);
      await expectStoreError(edits.addEditNodes(job.id, []), 'invalid_input');
    });

    test('results can only be added to a running job', async () => {
      const { documentId, image, source } = await documentWithSource();
      const queued = await edits.createJob({ documentId, request: {} });
      await expectStoreError(edits.addEditNodes(queued.id, [await editInput(source.id, image, 0)]), 'illegal_transition', /is queued/);
      await expectStoreError(edits.addEditNodes('00000000-0000-4000-8000-000000000000', [await editInput(source.id, image, 0)]), 'not_found');
    });
  });

  describe('accounts: users, workspaces, tokens', () => {
    test('the default user and workspace exist; users and workspaces round-trip; names are unique', async () => {
      const a = edits.accounts;
      expect(await a.getWorkspace(DEFAULT_WORKSPACE_ID)).toMatchObject({ id: DEFAULT_WORKSPACE_ID, name: 'default' });
      expect(await a.getUser(DEFAULT_USER_ID)).toMatchObject({ id: DEFAULT_USER_ID, name: 'local', role: 'admin', disabled: false, defaultWorkspaceId: DEFAULT_WORKSPACE_ID });
      const t = h.clock.set('2025-08-01T00:00:00.000Z');
      const studio = await a.createWorkspace('studio-a');
      expect(studio).toEqual({ id: studio.id, name: 'studio-a', createdAt: t });
      expect(await a.workspaceByName('studio-a')).toEqual(studio);
      expect(await a.workspaceByName('nope')).toBeNull();
      await expectStoreError(a.createWorkspace('studio-a'), 'invalid_input', /workspace named 'studio-a' already exists/);
      await expectStoreError(a.createWorkspace('has space'), 'invalid_input', /letters, digits/);

      const alice = await a.createUser({ name: 'alice', workspaceId: studio.id });
      expect(alice).toEqual({ id: alice.id, name: 'alice', role: 'member', disabled: false, defaultWorkspaceId: studio.id, createdAt: t });
      const root = await a.createUser({ name: 'root', role: 'admin', workspaceId: DEFAULT_WORKSPACE_ID });
      expect(root.role).toBe('admin');
      await expectStoreError(a.createUser({ name: 'alice', workspaceId: studio.id }), 'invalid_input', /user named 'alice' already exists/);
      await expectStoreError(a.createUser({ name: 'bob', workspaceId: '00000000-0000-4000-8000-00000000dead' }), 'not_found', /no workspace/);
      expect(await a.userByName('alice')).toEqual(alice);

      // a second workspace: the default one stays first in the principal
      const other = await a.createWorkspace('studio-b');
      await a.addMember(alice.id, other.id);
      await a.addMember(alice.id, other.id); // idempotent
      expect((await a.principal(alice.id))!.workspaces.map((w) => w.name)).toEqual(['studio-a', 'studio-b']);
      expect((await a.principal(alice.id))!.workspaces[0]).toEqual(studio);

      const users = await a.listUsers();
      expect(users.map((u) => [u.name, u.workspaces, u.activeTokens])).toEqual([
        ['local', ['default'], 0],
        ['alice', ['studio-a', 'studio-b'], 0],
        ['root', ['default'], 0],
      ]);

      const disabled = await a.setUserDisabled(alice.id, true);
      expect(disabled.disabled).toBe(true);
      expect(await a.principal(alice.id)).toBeNull();
      expect((await a.setUserDisabled(alice.id, false)).disabled).toBe(false);
      expect(await a.principal(alice.id)).not.toBeNull();
      await expectStoreError(a.setUserDisabled('00000000-0000-4000-8000-00000000dead', true), 'not_found');
    });

    test('tokens: stored as the hash given, named uniquely among active ones, revoked by id or name, listed without secrets', async () => {
      const a = edits.accounts;
      const ws = await a.createWorkspace('tokens-ws');
      const user = await a.createUser({ name: 'carol', workspaceId: ws.id });
      const hash = await hashTokenSecret('secret-one');
      const first = await a.createToken({ id: '11111111-1111-4111-8111-111111111111', userId: user.id, name: 'laptop', hash });
      expect(first).toEqual({ id: '11111111-1111-4111-8111-111111111111', userId: user.id, name: 'laptop', createdAt: first.createdAt, revokedAt: null });
      expect(Object.keys(first)).not.toContain('hash');
      expect(await a.credential(first.id)).toEqual({ tokenId: first.id, hash, revoked: false, userId: user.id });
      await expectStoreError(a.createToken({ id: '22222222-2222-4222-8222-222222222222', userId: user.id, name: 'laptop', hash }), 'invalid_input', /already has a token named 'laptop'/);
      const second = await a.createToken({ id: '33333333-3333-4333-8333-333333333333', userId: user.id, name: 'figma', hash });

      const revokedAt = h.clock.set('2025-09-09T09:09:09.000Z');
      expect(await a.revokeToken({ userId: user.id, name: 'laptop' })).toMatchObject({ id: first.id, revokedAt });
      expect(await a.credential(first.id)).toMatchObject({ revoked: true });
      h.clock.set('2025-09-10T00:00:00.000Z');
      expect((await a.revokeToken({ tokenId: first.id })).revokedAt).toBe(revokedAt); // the first revocation stands
      // the name is free again once revoked
      await a.createToken({ id: '44444444-4444-4444-8444-444444444444', userId: user.id, name: 'laptop', hash });
      expect((await a.listTokens(user.id)).map((t) => [t.name, t.revokedAt !== null])).toEqual([
        ['laptop', true],
        ['figma', false],
        ['laptop', false],
      ]);
      expect((await a.listUsers()).find((u) => u.name === 'carol')!.activeTokens).toBe(2);
      await expectStoreError(a.revokeToken({ userId: user.id, name: 'nope' }), 'not_found', /no active token named 'nope'/);
      expect(await a.credential('55555555-5555-4555-8555-555555555555')).toBeNull();
      expect(second.revokedAt).toBeNull();
    });

    test('documents, jobs and nodes carry their workspace and user; the same host key in two workspaces is two documents', async () => {
      const a = edits.accounts;
      const wsA = await a.createWorkspace('ws-a');
      const wsB = await a.createWorkspace('ws-b');
      const alice = await a.createUser({ name: 'alice2', workspaceId: wsA.id });
      const inA = await edits.openDocument('figma', 'shared-file', wsA.id);
      const inB = await edits.openDocument('figma', 'shared-file', wsB.id);
      expect(inA.documentId).not.toBe(inB.documentId);
      expect(inB.created).toBe(true);
      expect(await edits.openDocument('figma', 'shared-file', wsA.id)).toEqual({ documentId: inA.documentId, created: false });
      expect((await edits.getDocument(inB.documentId))!.workspaceId).toBe(wsB.id);
      await expectStoreError(edits.openDocument('figma', 'x', '00000000-0000-4000-8000-00000000dead'), 'not_found', /no workspace/);

      const image = (await blobs.put(bytesOf(900))).sha256;
      const source = await edits.addSourceNode({ documentId: inA.documentId, imageSha256: image, authorId: alice.id });
      expect(source.authorId).toBe(alice.id);
      const job = await edits.createJob({ documentId: inA.documentId, request: {}, userId: alice.id });
      expect(job.userId).toBe(alice.id);
      await expectStoreError(edits.createJob({ documentId: inA.documentId, request: {}, userId: '00000000-0000-4000-8000-00000000dead' }), 'not_found', /no user/);
      await edits.updateJobState(job.id, 'running');
      const [edit] = await edits.addEditNodes(job.id, [await editInput(source.id, image, 0)]);
      expect(edit.authorId).toBe(alice.id);
      expect((await edits.history(inA.documentId))!.nodes.map((n) => n.authorId)).toEqual([alice.id, alice.id]);

      // every blob the nodes reference is readable in workspace A, none in B
      const refs = [image, edit.resultImageSha256, edit.latent!.sha256, edit.regions[0].maskSha256!];
      for (const sha of refs) {
        expect(await a.blobVisible([wsA.id], sha)).toBe(true);
        expect(await a.blobVisible([wsB.id], sha)).toBe(false);
        expect(await a.blobVisible([wsB.id, wsA.id], sha)).toBe(true);
      }
      expect(await a.blobVisible([], image)).toBe(false);
      // alice brought them in: her bytes are their sizes, each once
      const sizes = await Promise.all(refs.map(async (sha) => (await blobs.stat(sha))!.size));
      expect(await a.storedBytes(alice.id)).toBe(sizes.reduce((x, y) => x + y, 0));
    });

    test('blob grants: idempotent, per workspace, counted once per user; workspace summaries count what they hold', async () => {
      const a = edits.accounts;
      const ws = await a.createWorkspace('grants');
      const user = await a.createUser({ name: 'dave', workspaceId: ws.id });
      const put = await blobs.put(bytesOf(901, 1000));
      await a.grantBlob({ workspaceId: ws.id, sha256: put.sha256, size: put.size, userId: user.id });
      await a.grantBlob({ workspaceId: ws.id, sha256: put.sha256, size: put.size, userId: user.id });
      expect(await a.blobVisible([ws.id], put.sha256)).toBe(true);
      expect(await a.blobVisible([DEFAULT_WORKSPACE_ID], put.sha256)).toBe(false);
      expect(await a.storedBytes(user.id)).toBe(1000);
      await edits.openDocument('web', 'one', ws.id);
      const summary = (await a.listWorkspaces()).find((w) => w.id === ws.id);
      expect(summary).toEqual({ ...ws, members: 1, documents: 1, jobs: 0, blobs: 1, blobBytes: 1000 });
      await expectStoreError(a.blobVisible([ws.id], '../etc/passwd'), 'invalid_input');
    });
  });

  describe('jobs', () => {
    test('a job round-trips through its states with exact timestamps', async () => {
      const { documentId, image, source } = await documentWithSource();
      const created = h.clock.set('2025-07-01T00:00:01.000Z');
      const request = { instruction: 'make it red', variations: 2, nested: { a: [1, null, 'x'] } };
      const job = await edits.createJob({ documentId, request });
      const queued = { id: job.id, documentId, userId: DEFAULT_USER_ID, state: 'queued', request, error: null, resultNodeIds: [], createdAt: created, startedAt: null, finishedAt: null };
      expect(job).toEqual(queued);
      expect(await edits.getJob(job.id)).toEqual(queued);

      const started = h.clock.set('2025-07-01T00:00:02.000Z');
      expect(await edits.updateJobState(job.id, 'running')).toEqual({ ...queued, state: 'running', startedAt: started });
      const nodes = await edits.addEditNodes(job.id, [await editInput(source.id, image, 0), await editInput(source.id, image, 1)]);
      const finished = h.clock.set('2025-07-01T00:00:03.000Z');
      const done = await edits.updateJobState(job.id, 'succeeded', { resultNodeIds: [nodes[1].id, nodes[0].id] });
      expect(done).toEqual({ ...queued, state: 'succeeded', resultNodeIds: [nodes[1].id, nodes[0].id], startedAt: started, finishedAt: finished });
      expect(await edits.getJob(job.id)).toEqual(done);
      expect(await edits.getJob('00000000-0000-4000-8000-000000000000')).toBeNull();
    });

    test('succeeded without resultNodeIds lists the job\'s nodes; failed and cancelled keep their error', async () => {
      const { documentId, image, source } = await documentWithSource();
      const a = await runningJob(documentId);
      const nodes = await edits.addEditNodes(a.id, [await editInput(source.id, image, 0), await editInput(source.id, image, 1)]);
      expect((await edits.updateJobState(a.id, 'succeeded')).resultNodeIds).toEqual(nodes.map((n) => n.id));

      const b = await runningJob(documentId);
      expect(await edits.updateJobState(b.id, 'failed', { error: 'out of memory' })).toMatchObject({ state: 'failed', error: 'out of memory', resultNodeIds: [] });
      const c = await edits.createJob({ documentId, request: {} });
      const cancelled = await edits.updateJobState(c.id, 'cancelled');
      expect(cancelled).toMatchObject({ state: 'cancelled', error: null, startedAt: null });
      expect(cancelled.finishedAt).not.toBeNull();
    });

    test('a caller may name the job; a duplicate id is refused', async () => {
      const { documentId } = await documentWithSource();
      const id = '5b8e6f7a-1c2d-4e3f-9a0b-1c2d3e4f5a6b';
      expect((await edits.createJob({ documentId, request: {}, id })).id).toBe(id);
      await expectStoreError(edits.createJob({ documentId, request: {}, id }), 'invalid_input', /already exists/);
      await expectStoreError(edits.createJob({ documentId: '00000000-0000-4000-8000-000000000000', request: {} }), 'not_found', /no document/);
      await expectStoreError(edits.createJob({ documentId, request: [] as never }), 'invalid_input', /request/);
    });

    test('only legal transitions are allowed; every other one throws', async () => {
      const { documentId } = await documentWithSource();
      const path: Record<JobState, JobState[]> = {
        queued: [],
        running: ['running'],
        succeeded: ['running', 'succeeded'],
        failed: ['running', 'failed'],
        cancelled: ['cancelled'],
      };
      const states = Object.keys(path) as JobState[];
      for (const from of states) {
        for (const to of states) {
          const job = await edits.createJob({ documentId, request: {} });
          for (const step of path[from]) await edits.updateJobState(job.id, step, step === 'failed' ? { error: 'e' } : {});
          const move = edits.updateJobState(job.id, to, to === 'failed' ? { error: 'boom' } : {});
          if (JOB_TRANSITIONS[from].includes(to)) {
            expect((await move).state).toBe(to);
          } else {
            await expectStoreError(move, 'illegal_transition', new RegExp(`${from} -> ${to} is not allowed`));
            expect((await edits.getJob(job.id))?.state).toBe(from);
          }
        }
      }
      // the table itself is the one the brief fixes
      expect(JOB_TRANSITIONS).toEqual({ queued: ['running', 'cancelled', 'failed'], running: ['succeeded', 'failed', 'cancelled'], succeeded: [], failed: [], cancelled: [] });
    });

    test('error and resultNodeIds only where they make sense', async () => {
      const { documentId, image, source } = await documentWithSource();
      const job = await runningJob(documentId);
      await expectStoreError(edits.updateJobState(job.id, 'failed'), 'invalid_input', /needs an error/);
      await expectStoreError(edits.updateJobState(job.id, 'succeeded', { error: 'x' }), 'invalid_input', /error is recorded only/);
      await expectStoreError(edits.updateJobState(job.id, 'cancelled', { resultNodeIds: [] }), 'invalid_input', /resultNodeIds/);
      const other = await runningJob(documentId);
      const [foreign] = await edits.addEditNodes(other.id, [await editInput(source.id, image, 0)]);
      await expectStoreError(edits.updateJobState(job.id, 'succeeded', { resultNodeIds: [foreign.id] }), 'invalid_input', /is not a node of this job/);
      await expectStoreError(edits.updateJobState(job.id, 'done' as never), 'invalid_input', /state/);
      await expectStoreError(edits.updateJobState('00000000-0000-4000-8000-000000000000', 'running'), 'not_found');
      expect((await edits.getJob(job.id))?.state).toBe('running');
    });

    test('listJobs filters by document and states, in creation order', async () => {
      const one = await documentWithSource('one');
      const two = await documentWithSource('two');
      const a = await edits.createJob({ documentId: one.documentId, request: { n: 1 } });
      const b = await runningJob(two.documentId);
      const c = await runningJob(one.documentId);
      const ids = (jobs: { id: string }[]) => jobs.map((j) => j.id);
      expect(ids(await edits.listJobs())).toEqual([a.id, b.id, c.id]);
      expect(ids(await edits.listJobs({ documentId: one.documentId }))).toEqual([a.id, c.id]);
      expect(ids(await edits.listJobs({ states: ['running'] }))).toEqual([b.id, c.id]);
      expect(ids(await edits.listJobs({ documentId: one.documentId, states: ['queued', 'failed'] }))).toEqual([a.id]);
      expect(await edits.listJobs({ states: [] })).toEqual([]);
      await expectStoreError(edits.listJobs({ states: ['paused' as never] }), 'invalid_input');
    });

    test('recoverInterruptedJobs fails queued and running jobs and leaves finished ones alone', async () => {
      const { documentId } = await documentWithSource();
      const queued = await edits.createJob({ documentId, request: {} });
      const running = await runningJob(documentId);
      const done = await runningJob(documentId);
      await edits.updateJobState(done.id, 'succeeded');
      const t = h.clock.set('2025-08-01T12:00:00.000Z');
      const recovered = await edits.recoverInterruptedJobs();
      expect(recovered).toEqual([
        { ...queued, state: 'failed', error: INTERRUPTED_QUEUED_ERROR, finishedAt: t },
        { ...running, state: 'failed', error: INTERRUPTED_RUNNING_ERROR, finishedAt: t },
      ]);
      expect(INTERRUPTED_RUNNING_ERROR).toBe('interrupted: the server stopped while this job was running');
      expect(await edits.getJob(running.id)).toEqual(recovered[1]);
      expect((await edits.getJob(done.id))?.state).toBe('succeeded');
      expect(await edits.recoverInterruptedJobs()).toEqual([]);
    });
  });

  test('text with a NUL character is refused (no backend can keep it); an error keeps U+FFFD in its place', async () => {
    const { documentId, image, source } = await documentWithSource();
    await expectStoreError(edits.openDocument('web', 'key\u0000'), 'invalid_input', /hostDocumentKey: \(root\): must not contain NUL characters/);
    const job = await runningJob(documentId);
    const base = await editInput(source.id, image, 0);
    await expectStoreError(edits.addEditNodes(job.id, [{ ...base, instruction: 'a\u0000b' }]), 'invalid_input', /0\.instruction: must not contain NUL/);
    await expectStoreError(edits.addEditNodes(job.id, [{ ...base, regions: [{ instruction: '\u0000', maskSha256: null }] }]), 'invalid_input', /regions\.0\.instruction/);
    // JSON keeps it (escaped): options and requests are stored as written
    const [node] = await edits.addEditNodes(job.id, [{ ...base, options: { note: 'a\u0000b' } }]);
    expect((await edits.getNode(node.id))?.options).toEqual({ note: 'a\u0000b' });
    const other = await edits.createJob({ documentId, request: { instruction: 'x\u0000y' } });
    expect((await edits.getJob(other.id))?.request).toEqual({ instruction: 'x\u0000y' });
    expect((await edits.updateJobState(other.id, 'failed', { error: 'bad input "x\u0000y"' })).error).toBe('bad input "x\uFFFDy"');
  });

  describe("blobs put with wait 'readable' (uploads)", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'layerloop-contract-blobs-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    /** An edit store over real blobs whose writes stop before they are stored until `release()` (and fail, with `fail`). */
    async function gated(options: { fail?: boolean } = {}) {
      const { hold, release } = writeGate(options.fail ? new Error('no space left on device (simulated)') : undefined);
      const gatedBlobs = new FsBlobStore(dir, { beforeRename: hold });
      const harness = await makeHarness({ blobs: gatedBlobs });
      const { documentId } = await harness.store.edits.openDocument('figma', 'file-1');
      return { harness, blobs: gatedBlobs, edits: harness.store.edits, documentId, release };
    }

    test('a node referring to an upload is committed only once the upload is durable', async () => {
      const { harness, blobs: gatedBlobs, edits: store, documentId, release } = await gated();
      const { sha256 } = await gatedBlobs.put(bytesOf(20), { wait: 'readable' });
      let committed = false;
      const adding = store.addSourceNode({ documentId, imageSha256: sha256 }).then((node) => ((committed = true), node));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(committed).toBe(false);
      expect((await store.history(documentId))?.nodes).toEqual([]);
      release();
      const node = await adding;
      expect(node.resultImageSha256).toBe(sha256);
      expect(await new FsBlobStore(dir).has(sha256)).toBe(true);
      await harness.store.close();
    });

    test('when the upload cannot be written, the node is refused with the cause and nothing is committed', async () => {
      const { harness, blobs: gatedBlobs, edits: store, documentId, release } = await gated({ fail: true });
      const { sha256 } = await gatedBlobs.put(bytesOf(21), { wait: 'readable' });
      release();
      await expectStoreError(
        store.addSourceNode({ documentId, imageSha256: sha256 }),
        'invalid_input',
        new RegExp(`addSourceNode.imageSha256: blob ${sha256} could not be written to the blob store \\(no space left on device \\(simulated\\)\\); upload it again`),
      );
      expect((await store.history(documentId))?.nodes).toEqual([]);
      await harness.store.close();
    });
  });

  test("storage cut off behind the store: writes fail 'unavailable' in words for users, and health says why", async () => {
    expect(await h.store.health()).toEqual({ writable: true, problems: [] });
    const { documentId } = await documentWithSource();
    await h.cutOff();
    const refused = await expectStoreError(edits.createJob({ documentId, request: {} }), 'unavailable');
    expectWrittenForUsers(refused.message);
    expectWrittenForUsers((await expectStoreError(edits.openDocument('figma', 'another'), 'unavailable')).message);
    expect(await edits.health()).toEqual({ writable: false, problems: [expect.stringContaining(refused.message)] });
    expect(await h.store.health()).toEqual({ writable: false, problems: [expect.stringContaining(refused.message)] });
  });

  test('integrityCheck is empty on a healthy store', async () => {
    const { documentId, image, source } = await documentWithSource();
    const job = await runningJob(documentId);
    await edits.addEditNodes(job.id, [await editInput(source.id, image, 0)], { markSucceeded: true });
    expect(await edits.integrityCheck()).toEqual([]);
    expect(await edits.integrityCheck({ verifyBlobHashes: true })).toEqual([]);
  });
}
