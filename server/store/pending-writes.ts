/**
 * The blob writes a BlobStore has started but not finished, by sha256 (FsBlobStore and S3BlobStore keep theirs
 * here): their bytes, served to get/has/stat until the write ends; whether the put that started it answered
 * before the write ended (wait 'readable'), so a put that joins it may answer as early; and the write itself,
 * which whenDurable() and flush() wait for. A write that failed is remembered until the blob is stored after
 * all, so whenDurable() keeps saying so.
 */
export interface PendingWrite {
  /** the store's own copy: hand out a copy of it */
  bytes: Uint8Array;
  done: Promise<void>;
  /** the put that started it answered before it ended */
  early: boolean;
}

export class PendingWrites {
  private readonly writing = new Map<string, PendingWrite>();
  private readonly failed = new Map<string, Error>();

  /** The write in flight for this blob, if any. */
  get(sha256: string): PendingWrite | undefined {
    return this.writing.get(sha256);
  }

  /** Runs `write` as this blob's write in flight; resolves or rejects with it. */
  start(sha256: string, bytes: Uint8Array, early: boolean, write: () => Promise<void>): Promise<void> {
    this.failed.delete(sha256);
    const done = write()
      .catch((error: unknown) => {
        this.failed.set(sha256, error instanceof Error ? error : new Error(String(error)));
        throw error;
      })
      .finally(() => this.writing.delete(sha256));
    done.catch(() => {}); // whoever waits on it (put, whenDurable) sees the error; nobody waiting is not a crash
    this.writing.set(sha256, { bytes, done, early });
    return done;
  }

  /** The blob turned out to be stored (by another process, or a later put): forget an earlier failure. */
  stored(sha256: string): void {
    this.failed.delete(sha256);
  }

  async whenDurable(sha256: string): Promise<void> {
    await this.writing.get(sha256)?.done;
    const failure = this.failed.get(sha256);
    if (failure) throw failure;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.writing.values()].map((w) => w.done));
  }
}
