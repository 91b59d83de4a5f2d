import { mkdtempSync, promises as fs, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../../server/store/blobs';
import { BAD_HASHES, blobStoreContract, bytesOf, expectStoreError, sha256Of, writeGate } from './contract';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'layerloop-blobs-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Every file under `dir`, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(path.join(dir, entry.name), path.join(prefix, entry.name)) : [path.join(prefix, entry.name)],
  );
}

describe('FsBlobStore: BlobStore contract', () => {
  blobStoreContract(async () => {
    const dir = path.join(root, 'blobs');
    return {
      blobs: new FsBlobStore(dir),
      reopen: () => new FsBlobStore(dir),
      gated: (fail) => {
        const { hold, release, writing } = writeGate(fail);
        return { blobs: new FsBlobStore(dir, { beforeRename: hold }), release, writing };
      },
      damage: (sha256, bytes) => fs.writeFile(new FsBlobStore(dir).pathFor(sha256), bytes),
      unusable: async () => {
        const gone = path.join(root, 'gone');
        const store = new FsBlobStore(gone);
        await fs.rm(gone, { recursive: true });
        return store;
      },
    };
  });
});

describe('FsBlobStore on disk', () => {
  test('files live at dir/ab/cd/<sha256>, nothing beside them, and no temp files stay behind', async () => {
    const dir = path.join(root, 'blobs');
    const blobs = new FsBlobStore(dir);
    const a = await blobs.put(bytesOf(1));
    const b = await blobs.put(bytesOf(2));
    await blobs.put(bytesOf(1));
    const at = (sha: string) => path.join(sha.slice(0, 2), sha.slice(2, 4), sha);
    expect(walk(dir).sort()).toEqual([at(a.sha256), at(b.sha256)].sort());
    expect(blobs.pathFor(a.sha256)).toBe(path.join(dir, at(a.sha256)));
  });

  test('a duplicate put does not rewrite the file', async () => {
    const blobs = new FsBlobStore(root);
    const { sha256 } = await blobs.put(bytesOf(3));
    const before = statSync(blobs.pathFor(sha256));
    await new Promise((resolve) => setTimeout(resolve, 15));
    expect((await blobs.put(bytesOf(3))).created).toBe(false);
    const after = statSync(blobs.pathFor(sha256));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  test('pathFor refuses anything that is not a sha256 (no path traversal)', () => {
    const blobs = new FsBlobStore(root);
    for (const bad of BAD_HASHES) expect(() => blobs.pathFor(bad as string)).toThrow(/sha256 of 64 lowercase hex/);
  });

  test('a writer stopped between temp write and rename leaves no visible blob; the temp file is swept later', async () => {
    const dir = path.join(root, 'blobs');
    let parked = '';
    // never resolves: the writer is frozen at that point as if the process had died there
    const stuck = new FsBlobStore(dir, { beforeRename: (temp) => ((parked = temp), new Promise<void>(() => {})) });
    void stuck.put(bytesOf(4));
    const sha = sha256Of(bytesOf(4));
    for (let i = 0; i < 200 && parked === ''; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(parked).not.toBe('');
    expect(await fs.readFile(parked)).toEqual(Buffer.from(bytesOf(4))); // fully written and synced...
    expect(path.dirname(parked)).toBe(path.dirname(stuck.pathFor(sha))); // ...in the target directory...

    const reopened = new FsBlobStore(dir); // ...but invisible to a restarted server
    expect(await reopened.has(sha)).toBe(false);
    expect(await reopened.get(sha)).toBeNull();
    expect(await reopened.stat(sha)).toBeNull();

    expect(await reopened.removeTempFiles()).toBe(0); // too young: it might belong to a live writer
    expect(await reopened.removeTempFiles({ olderThanMs: 0 })).toBe(1);
    expect(walk(dir)).toEqual([]);
    expect(await reopened.put(bytesOf(4))).toMatchObject({ sha256: sha, created: true });
  });

  test('a write that fails before the rename cleans up its temp file', async () => {
    const dir = path.join(root, 'blobs');
    const failing = new FsBlobStore(dir, {
      beforeRename: () => {
        throw new Error('disk full (simulated)');
      },
    });
    await expect(failing.put(bytesOf(5))).rejects.toThrow('disk full (simulated)');
    expect(walk(dir)).toEqual([]);
    expect(await new FsBlobStore(dir).has(sha256Of(bytesOf(5)))).toBe(false);
  });

  test('verifyAll rehashes every blob file: a damaged one is listed until a put of the right bytes repairs it', async () => {
    const blobs = new FsBlobStore(root);
    const { sha256 } = await blobs.put(bytesOf(6));
    await blobs.put(bytesOf(7));
    const damaged = Buffer.from(bytesOf(6));
    damaged[100] ^= 0x01;
    await fs.writeFile(blobs.pathFor(sha256), damaged);
    expect(await blobs.verifyAll()).toEqual({ checked: 2, damaged: [{ sha256, problem: expect.stringMatching(`blob ${sha256} is damaged on the server`) }] });
    expect(await blobs.put(bytesOf(6))).toEqual({ sha256, size: 257, created: true });
    expect(await blobs.verifyAll()).toEqual({ checked: 2, damaged: [] });
  });

  test("the store's own directory removed or replaced while it is open: puts are refused and it is not made again", async () => {
    const dir = path.join(root, 'blobs');
    const blobs = new FsBlobStore(dir);
    await blobs.put(bytesOf(13));
    await fs.rm(dir, { recursive: true });
    await expectStoreError(blobs.put(bytesOf(14)), 'unavailable', /blob directory was removed while it ran \(restart the server\)/);
    await expectStoreError(blobs.put(bytesOf(14), { wait: 'readable' }), 'unavailable', /was removed/);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/); // nothing recreated it
    expect(await blobs.health()).toEqual({ writable: false, problems: [expect.stringMatching(/blob directory was removed/)] });
    await fs.mkdir(dir); // another directory in its place (its inode number may even be the old one's)
    await expectStoreError(blobs.put(bytesOf(14)), 'unavailable', /blob directory was replaced while it ran/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('a fan-out directory removed while the store is open is made again on the next put', async () => {
    const blobs = new FsBlobStore(root);
    const { sha256 } = await blobs.put(bytesOf(8));
    await fs.rm(path.dirname(path.dirname(blobs.pathFor(sha256))), { recursive: true }); // dir/ab, with dir/ab/cd
    expect(await blobs.put(bytesOf(8))).toEqual({ sha256, size: 257, created: true });
    expect(await blobs.get(sha256)).toEqual(bytesOf(8));
  });

  test('content-type files left by older versions are ignored', async () => {
    const blobs = new FsBlobStore(root);
    const { sha256 } = await blobs.put(bytesOf(9));
    await fs.writeFile(`${blobs.pathFor(sha256)}.json`, '{"contentType": 7');
    expect(await blobs.stat(sha256)).toEqual({ sha256, size: 257 });
    expect(await blobs.get(sha256)).toEqual(bytesOf(9));
  });
});
