/** The queue's errors, shared by every JobQueue implementation (the API maps them to 429, 503, 404). */
export class QueueFullError extends Error {
  constructor(
    /** 'queue': the device's queue is full; 'document': this document has too many jobs waiting */
    readonly scope: 'queue' | 'document',
    readonly limit: number,
    /** estimated seconds until a slot frees, at least 1 */
    readonly retryAfterSeconds: number,
  ) {
    super(
      scope === 'queue'
        ? `the edit queue is full (${limit} jobs waiting); try again in about ${retryAfterSeconds} s`
        : `this document already has ${limit} edits waiting; wait for one to start (about ${retryAfterSeconds} s) or cancel one`,
    );
    this.name = 'QueueFullError';
  }
}

export class QueueClosedError extends Error {
  constructor() {
    super('the server is shutting down and accepts no new edits; try again in a moment');
    this.name = 'QueueClosedError';
  }
}

export class UnknownJobError extends Error {
  constructor(readonly jobId: string) {
    super(`no job ${jobId}: it never existed or finished long ago`);
    this.name = 'UnknownJobError';
  }
}

export const SHUTDOWN_QUEUED_MESSAGE = 'the server is shutting down and this edit never started: submit it again';
export const SHUTDOWN_RUNNING_MESSAGE = 'the server shut down while this edit was running: submit it again';
