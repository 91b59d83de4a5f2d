/**
 * One server per data directory: an OS-level lock held for the process's lifetime.
 *
 * Why SQLite's lock rather than a pid file: Node has no flock(), and a lock file created with O_EXCL must guess
 * whether its holder is still alive (a pid can be reused after a crash or a reboot, and two starting servers can
 * both decide a lock is stale). SQLite's unix VFS already takes fcntl() locks correctly (and LockFileEx on
 * Windows), including its workaround for POSIX locks being per process: a connection on `layerloop.lock` in
 * `locking_mode=EXCLUSIVE` that has begun an EXCLUSIVE transaction holds an exclusive lock until it closes, and
 * the kernel drops it when the process dies, SIGKILL included. Nothing is ever stored in that database.
 *
 * The holder's pid is only for the message a second server prints; it lives in `layerloop.pid`, written after
 * the lock is taken (a locked database cannot be read by anyone else).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';

export const LOCK_FILE = 'layerloop.lock';
export const PID_FILE = 'layerloop.pid';

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    /** null when the holder's pid file could not be read */
    readonly holderPid: number | null,
  ) {
    const who = holderPid === null ? 'another layerloop server' : `another layerloop server (pid ${holderPid})`;
    super(`the data directory ${dataDir} is in use by ${who}: stop that server first, or start this one with another --data-dir`);
    this.name = 'DataDirLockedError';
  }
}

export interface DataDirLock {
  /** Lets go of the lock (shutdown); the process exiting does the same. */
  release(): void;
}

/** Takes the data directory's lock or throws DataDirLockedError at once (it never waits). */
export function lockDataDir(dataDir: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    db.pragma('journal_mode = MEMORY'); // no -journal file beside it
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE'); // SQLITE_BUSY here: someone holds it
    db.exec('COMMIT'); // in EXCLUSIVE locking mode the lock stays taken after the commit
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') throw new DataDirLockedError(dataDir, readPid(dataDir));
    throw error;
  }
  const pidFile = path.join(dataDir, PID_FILE);
  fs.writeFileSync(pidFile, `${process.pid}\n`);
  return {
    release: () => {
      if (!db.open) return;
      fs.rmSync(pidFile, { force: true });
      db.close();
    },
  };
}

function readPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, PID_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
