/**
 * Whether a directory can take writes now, as the embedded store asks it: writable (a read-only mount fails
 * access(W_OK) even for root) and with free space beyond a headroom. Used before answering an upload early, and
 * by health() to see whether a write failure it reported has gone away (space freed, remounted read-write).
 */
import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import { StoreError, storageFailure } from './store';

/** Free space the store keeps in reserve before it answers writes early (the database and other writers need room). */
export const DISK_HEADROOM_BYTES = 64 * 1024 * 1024;

/** Bytes free for this process under `dir`, or the reason it cannot be written. */
export async function writableSpace(dir: string): Promise<number | StoreError> {
  try {
    await fs.access(dir, fsSync.constants.W_OK);
    const stats = await fs.statfs(dir);
    return stats.bavail * stats.bsize;
  } catch (error) {
    const failure = storageFailure(error);
    return failure instanceof StoreError ? failure : new StoreError('unavailable', `the server cannot store data right now: ${failure.message}`, { cause: failure });
  }
}

/** A failure a write reported, if the directory still shows it (null: writable again, with the headroom free). */
export async function stillFailing(dir: string, failure: StoreError): Promise<StoreError | null> {
  const space = await writableSpace(dir);
  if (space instanceof StoreError) return space;
  return failure.code === 'full' && space < DISK_HEADROOM_BYTES ? failure : null;
}

/**
 * What makes a file or directory the one the store opened: device and inode, and its birth time where the file
 * system records one (an inode number is reused at once for a new file or directory made in the old one's place).
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  birthtimeMs: number;
}

export function identityOf(stats: fsSync.Stats): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, birthtimeMs: stats.birthtimeMs };
}

export function sameFile(identity: FileIdentity, stats: fsSync.Stats): boolean {
  return stats.dev === identity.dev && stats.ino === identity.ino && stats.birthtimeMs === identity.birthtimeMs;
}
