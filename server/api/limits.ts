/**
 * Per-user limits (fair share on a shared server): edits queued or running, uploads in flight, bytes stored.
 * Past the first two the answer is 429 with Retry-After; past the storage quota it is 507 (nothing was stored).
 */
export class UserLimitError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'UserLimitError';
  }
}

/** The user's storage quota is used up: the HTTP layer answers 507. */
export class QuotaExceededError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QuotaExceededError';
  }
}

export function queuedLimitError(limit: number): UserLimitError {
  return new UserLimitError(`you already have ${limit} edits queued or running (at most ${limit} per user on this server): wait for one to finish, then submit again`, 2);
}

export function uploadsLimitError(limit: number): UserLimitError {
  return new UserLimitError(`you already have ${limit} uploads in flight (at most ${limit} per user at once): wait for one to finish, then upload again`, 1);
}

const mib = (bytes: number) => `${Math.round((bytes / 1048576) * 10) / 10} MiB`;

/**
 * `incomingBytes`: what the refused request would store (an upload's size); null for an edit, whose results and
 * latents are not known before it runs (it is refused once the user is at or over the quota).
 */
export function quotaError(storedBytes: number, incomingBytes: number | null, limitBytes: number): QuotaExceededError {
  const needs = incomingBytes === null ? 'and an edit stores its results and latents' : `and this needs ${mib(incomingBytes)} more`;
  return new QuotaExceededError(`your storage quota is used up: you store ${mib(storedBytes)} of ${mib(limitBytes)}, ${needs}. Ask an admin to raise --max-stored-mib-per-user`);
}
