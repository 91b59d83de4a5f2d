/**
 * Bytes of upload bodies the server holds at once (read, decoded, encoded and stored): 16 concurrent 64 MiB uploads
 * used to take RSS from 160 MB to 3-4 GB. An upload whose bytes do not fit is answered 503 with Retry-After
 * before its body is read.
 */
import { MAX_UPLOAD_BYTES } from '../../shared/protocol';

/** Two of the largest uploads at once, or many small ones. */
export const UPLOAD_BUDGET_BYTES = 2 * MAX_UPLOAD_BYTES;

export class ByteBudget {
  private used = 0;
  /** bytes taken since the budget was last empty */
  private burst = 0;

  /** `onDrained`: called when the budget empties after at least `capacity / 2` bytes went through it. */
  constructor(
    readonly capacity: number,
    private readonly onDrained: () => void = () => {},
  ) {}

  /** Takes `bytes` if they fit (a single request larger than the whole budget is let through alone). */
  take(bytes: number): boolean {
    if (this.used > 0 && this.used + bytes > this.capacity) return false;
    this.used += bytes;
    this.burst += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    if (this.used > 0) return;
    if (this.burst >= this.capacity / 2) this.onDrained();
    this.burst = 0;
  }

  get inUse(): number {
    return this.used;
  }
}
