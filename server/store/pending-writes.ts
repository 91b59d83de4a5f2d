/**
 * The blob writes a BlobStore has acknowledged (put with wait 'readable') but not yet finished, by sha256: their
 * bytes, served to get/has/stat until the write ends, and the write itself, which whenDurable() and flush() wait
 * for. A write that failed is remembered until the blob is stored after all, so whenDurable() keeps saying so.
 */
export class PendingWrites {
  private readonly writing = new Map<string, { bytes: Uint8Array; done: Promise<void> }>();
  private readonly failed = new Map<string, Error>();

  /** The bytes of a write in flight (the store's own copy: hand out a copy of it). */
  bytes(sha256: string): Uint8Array | undefined {
    return this.writing.get(sha256)?.bytes;
  }

  /** The write in flight for this blob, if any. */
  inFlight(sha256: string): Promise<void> | undefined {
    return this.writing.get(sha256)?.done;
  }

  /** Runs `write` as this blob's write in flight; resolves or rejects with it. */
  start(sha256: string, bytes: Uint8Array, write: () => Promise<void>): Promise<void> {
    this.failed.delete(sha256);
    const done = write()
      .catch((error: unknown) => {
        this.failed.set(sha256, error instanceof Error ? error : new Error(String(error)));
        throw error;
      })
      .finally(() => this.writing.delete(sha256));
    done.catch(() => {}); // whoever waits on it (put, whenDurable) sees the error; nobody waiting is not a crash
    this.writing.set(sha256, { bytes, done });
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
