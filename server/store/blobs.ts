/**
 * FsBlobStore: the embedded BlobStore. Each blob is one file at `dir/ab/cd/<sha256>` (two fan-out levels keep
 * directories small). Nothing else is stored beside it: one file, one rename, per blob (data directories written
 * by earlier builds may also hold `<sha256>.json` content-type files; they are ignored).
 *
 * Writes are atomic and durable: write a temp file in the target directory, fsync it, rename it over the final
 * name, fsync the directory. A crash at any point leaves either no blob or the whole blob, never a prefix.
 * Temp files are named `.<name>.<uuid>.tmp`, which can never match a sha256, so a leftover is invisible to
 * get/has/stat; removeTempFiles() sweeps them.
 *
 * A put with wait 'readable' returns before that sequence ends: until it does, the bytes are served from memory
 * (get/has/stat see them) and whenDurable() waits for the write. It does so only while a write can be expected
 * to succeed: no write has failed since the last one that worked, the directory is still the one the store
 * opened, it is writable, and the file system has room for this blob, every other write in flight and a
 * headroom (DISK_HEADROOM_BYTES) besides. Otherwise the put waits for the write, so a full or read-only
 * disk is reported to the uploader (StoreError 'full' / 'unavailable') instead of acknowledged and then lost.
 *
 * Every read is checked against the sha256 (damaged bytes are never served: StoreError 'corrupt'), and a put
 * that finds its file already there checks it too, rewriting it when it is damaged (the repair).
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  type BlobPutOptions,
  type BlobPutResult,
  type BlobStat,
  type BlobStore,
  SHA256_PATTERN,
  StoreError,
  type StoreHealth,
  assertSha256,
  storageFailure,
} from './store';
import { DISK_HEADROOM_BYTES, type FileIdentity, identityOf, sameFile, stillFailing, writableSpace } from './disk';
import { PendingWrites } from './pending-writes';

export interface FsBlobStoreOptions {
  /**
   * Test seam: runs after a temp file is written and fsynced, just before the rename makes it visible. The crash
   * test parks a child process here and SIGKILLs it; a throw here behaves like any failed write.
   */
  beforeRename?: (tempPath: string) => Promise<void> | void;
}

const TEMP_FILE = /^\..+\.tmp$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `bytes` when they hash to `sha256`; else StoreError('corrupt'): what every BlobStore read answers for damage. */
export function verifiedBlob(sha256: string, bytes: Uint8Array): Uint8Array {
  const actual = sha256Hex(bytes);
  if (actual === sha256) return bytes;
  throw new StoreError('corrupt', `blob ${sha256} is damaged on the server (its ${bytes.byteLength} bytes hash to ${actual}): upload the same image again to repair it`);
}

export class FsBlobStore implements BlobStore {
  /** fan-out directories known to exist (and to be durable), so a put skips the mkdir */
  private readonly knownDirs = new Set<string>();
  /** blobs being written: their bytes (served until the file is durable) and the write */
  private readonly pending = new PendingWrites();
  /** the last write that failed, until one succeeds: reported by health(), and no early answers meanwhile */
  private writeFailure: StoreError | null = null;
  /** bytes of 'readable' puts still being written: the room they need is spoken for */
  private reservedBytes = 0;
  /** the directory this store opened: a removed or replaced one is never written into */
  private readonly identity: FileIdentity;

  constructor(
    readonly dir: string,
    private readonly options: FsBlobStoreOptions = {},
  ) {
    fsSync.mkdirSync(dir, { recursive: true });
    this.identity = identityOf(fsSync.statSync(dir));
  }

  /** The file a blob lives in. Validates first: this is the only place a hash becomes a path. */
  pathFor(sha256: string): string {
    assertSha256(sha256);
    return path.join(this.dir, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  }

  async put(bytes: Uint8Array, options: BlobPutOptions = {}): Promise<BlobPutResult> {
    if (!(bytes instanceof Uint8Array)) {
      throw new StoreError('invalid_input', `blob put: expected a Uint8Array, got ${describe(bytes)}`);
    }
    const sha256 = sha256Hex(bytes);
    const file = this.pathFor(sha256);
    const size = bytes.byteLength;

    const inFlight = this.pending.get(sha256);
    let write = inFlight?.done;
    let created = false;
    // joining a write in flight: answer as early as it did
    let early = inFlight !== undefined && inFlight.early && options.wait === 'readable';
    if (!write) {
      // Same bytes, same name: nothing to write, once the file is checked. Damaged bytes (another size, or the
      // same size with other content) are rewritten with the right ones: the repair.
      if (await this.holdsIntact(file, sha256, size)) {
        this.pending.stored(sha256); // stored after all (by an earlier process, or a write that was retried)
        return { sha256, size, created: false };
      }
      early = options.wait === 'readable' && (await this.mayAnswerEarly(size));
      // An early answer returns before the write ends and its caller may reuse the buffer: the store keeps a copy.
      // Otherwise the caller waits for the write, so its bytes are used as they are.
      const own = early ? new Uint8Array(bytes) : bytes;
      const racing = this.pending.get(sha256); // a put may have begun meanwhile
      if (racing && early) {
        this.reservedBytes -= size;
        early = racing.early;
      }
      write = racing?.done ?? this.startWrite(sha256, file, own, early ? size : 0);
      created = true;
    }
    if (!early) await write;
    // Two concurrent puts of the same new bytes may both report created: true; both stored identical content.
    return { sha256, size, created };
  }

  async whenDurable(sha256: string): Promise<void> {
    assertSha256(sha256);
    await this.pending.whenDurable(sha256);
  }

  async flush(): Promise<void> {
    await this.pending.flush();
  }

  async get(sha256: string): Promise<Uint8Array | null> {
    const file = this.pathFor(sha256);
    const inFlight = this.pending.get(sha256);
    // a copy: the caller may keep or change it after the write ends
    if (inFlight) return new Uint8Array(inFlight.bytes);
    let buffer: Buffer;
    try {
      buffer = await fs.readFile(file);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
    // a plain Uint8Array view, so callers never depend on Buffer's extra behaviour
    return verifiedBlob(sha256, new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
  }

  async health(): Promise<StoreHealth> {
    const problems: string[] = [];
    const moved = await this.directoryProblem();
    // otherwise a failure is reported until a write works, or the directory shows it is gone (space freed, remounted)
    if (moved) problems.push(moved.message);
    else if (this.writeFailure && !(await stillFailing(this.dir, this.writeFailure))) this.writeFailure = null;
    if (!moved && this.writeFailure) problems.push(`blob writes fail: ${this.writeFailure.message}`);
    return { writable: problems.length === 0, problems };
  }

  /**
   * Every stored blob file checked against its name (the content-verifying integrity check, `npm run store --
   * verify`): the damaged ones, with why. Reads everything.
   */
  async verifyAll(): Promise<{ checked: number; damaged: { sha256: string; problem: string }[] }> {
    let checked = 0;
    const damaged: { sha256: string; problem: string }[] = [];
    for (const dir of await this.fanOutDirs()) {
      for (const name of await listDir(dir)) {
        if (!SHA256_PATTERN.test(name)) continue;
        checked++;
        try {
          await this.get(name);
        } catch (error) {
          damaged.push({ sha256: name, problem: (error as Error).message });
        }
      }
    }
    return { checked, damaged };
  }

  async has(sha256: string): Promise<boolean> {
    const file = this.pathFor(sha256);
    return this.pending.get(sha256) !== undefined || (await statFile(file)) !== null;
  }

  async stat(sha256: string): Promise<BlobStat | null> {
    const file = this.pathFor(sha256);
    const inFlight = this.pending.get(sha256);
    if (inFlight) return { sha256, size: inFlight.bytes.byteLength };
    const info = await statFile(file);
    if (!info) return null;
    return { sha256, size: info.size };
  }

  /**
   * Deletes temp files left by crashed writers. Only those older than `olderThanMs` (default 1 h), so a write in
   * flight in another process sharing the directory is not pulled from under it. Returns how many were removed.
   */
  async removeTempFiles(options: { olderThanMs?: number } = {}): Promise<number> {
    const cutoff = Date.now() - (options.olderThanMs ?? 3_600_000);
    let removed = 0;
    for (const dir of await this.fanOutDirs()) {
      for (const name of await listDir(dir)) {
        if (!TEMP_FILE.test(name)) continue;
        const file = path.join(dir, name);
        const info = await statFile(file);
        if (info && info.mtimeMs <= cutoff) {
          await fs.rm(file, { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  /** True when at least one blob file is stored (stops at the first one found). */
  async holdsAnyBlob(): Promise<boolean> {
    for (const dir of await this.fanOutDirs()) {
      if ((await listDir(dir)).some((name) => SHA256_PATTERN.test(name))) return true;
    }
    return false;
  }

  // -- internals

  /** True when the blob's file is there with exactly these bytes (a damaged one the caller rewrites: the repair). */
  private async holdsIntact(file: string, sha256: string, size: number): Promise<boolean> {
    const existing = await statFile(file);
    if (!existing) return false;
    if (existing.size !== size) return false;
    try {
      return sha256Hex(await fs.readFile(file)) === sha256;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Whether a 'readable' put may answer before its write ends (see the header); reserves the room if so. The
   * comparison and the reservation run in one tick after the last await, so concurrent puts cannot both take
   * the same room.
   */
  private async mayAnswerEarly(size: number): Promise<boolean> {
    if (this.writeFailure && (await stillFailing(this.dir, this.writeFailure))) return false;
    this.writeFailure = null;
    if (await this.directoryProblem()) return false;
    const free = await writableSpace(this.dir);
    if (this.writeFailure || free instanceof StoreError || free < this.reservedBytes + size + DISK_HEADROOM_BYTES) return false;
    this.reservedBytes += size;
    return true;
  }

  /** The store's directory was removed or replaced (another inode) since it was opened: refuse to write. */
  private async directoryProblem(): Promise<StoreError | null> {
    let stats: fsSync.Stats;
    try {
      stats = await fs.stat(this.dir);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      return new StoreError('unavailable', 'the server cannot store blobs: its blob directory was removed while it ran (restart the server)');
    }
    if (!sameFile(this.identity, stats)) {
      return new StoreError('unavailable', 'the server cannot store blobs: its blob directory was replaced while it ran (restart the server)');
    }
    return null;
  }

  /** Writes the blob durably, visible to get/has/stat from now on (from memory until the file is durable). */
  private startWrite(sha256: string, file: string, bytes: Uint8Array, reserved: number): Promise<void> {
    return this.pending.start(sha256, bytes, reserved > 0, async () => {
      try {
        await this.writeBlob(file, bytes);
        // a full disk stays reported until there is room again (health() looks), not just room for one blob
        if (this.writeFailure?.code !== 'full') this.writeFailure = null;
      } catch (error) {
        const failure = storageFailure(error);
        this.writeFailure = failure instanceof StoreError ? failure : new StoreError('unavailable', `the server cannot store data right now: ${failure.message}`, { cause: failure });
        throw failure;
      } finally {
        this.reservedBytes -= reserved;
      }
    });
  }

  private async writeBlob(file: string, bytes: Uint8Array): Promise<void> {
    const moved = await this.directoryProblem();
    if (moved) throw moved; // never recreate a removed directory (and acknowledge into it) behind the database's back
    const dir = path.dirname(file);
    try {
      await this.ensureDir(dir);
      try {
        await this.writeAtomic(file, bytes);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        // the fan-out directory went away under us (removed by hand): make it again, once
        this.knownDirs.delete(dir);
        await this.ensureDir(dir);
        await this.writeAtomic(file, bytes);
      }
    } catch (error) {
      // ENOENT: the store's directory went away meanwhile, or a read-only mount: ask the directory itself why
      const why = isNotFound(error) ? ((await this.directoryProblem()) ?? (await writableSpace(this.dir))) : null;
      throw why instanceof StoreError ? why : error;
    }
  }

  /** Every `dir/ab/cd` directory that exists (plus the root and the first level, where temp files never go). */
  private async fanOutDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const a of await listDir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of await listDir(path.join(this.dir, a))) {
        if (/^[0-9a-f]{2}$/.test(b)) out.push(path.join(this.dir, a, b));
      }
    }
    return out;
  }

  private async writeAtomic(finalPath: string, data: Uint8Array): Promise<void> {
    const dir = path.dirname(finalPath);
    const temp = path.join(dir, `.${path.basename(finalPath)}.${randomUUID()}.tmp`);
    try {
      const handle = await fs.open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.options.beforeRename?.(temp);
      await fs.rename(temp, finalPath);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
    // the rename is only durable once the directory entry is
    await fsyncDir(dir);
  }

  /**
   * Makes the fan-out directories `ab/` and `ab/cd/` under the store's directory, fsyncing the parent of each one
   * it creates so the new entries survive a power loss. Never the store's directory itself: one removed under a
   * running server stays removed (ENOENT), rather than being made again by a write that was already under way.
   */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const levels = [path.dirname(dir), dir];
    for (const level of levels) {
      try {
        await fs.mkdir(level);
        await fsyncDir(path.dirname(level));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    this.knownDirs.add(dir);
  }
}

async function statFile(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const info = await fs.stat(file);
    return info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : null;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some platforms and file systems (Windows, a few network mounts) cannot fsync a directory; there the rename
    // is as durable as the OS makes it and refusing to store anything would help nobody.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}
