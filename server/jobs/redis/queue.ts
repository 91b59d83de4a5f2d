/**
 * The API side of the Redis queue (`--queue redis://…`): JobQueue over BullMQ (open-source edition) plus this
 * project's job records and event streams in the same Redis (records.ts, events.ts). Any number of API nodes
 * and workers (worker.ts) share it; a job's state, progress, previews and events reach every node.
 *
 * - enqueue: the plan's uploads are made durable first (an upload is answered once this process can read it,
 *   but a worker elsewhere reads the disk or bucket), then a place in line (RESERVE: the limits, the plan, and
 *   the line put in its fair order, atomically), then the store records the job (JobLedger), then BullMQ gets a
 *   job of the same id. A job the store cannot record leaves no trace; the promise resolves only once it is
 *   recorded and queued.
 * - dispatch: BullMQ's jobs are the workers' turns, not their work. A worker that gets one starts the first job
 *   of the line (CLAIM), whatever BullMQ job it came with: the line is ordered users first, then each user's
 *   documents (fair-order.ts, as the in-process queue), at the moment a worker is free, so API nodes admitting
 *   for the same users still share the workers fairly. There are as many BullMQ jobs as jobs queued or running.
 * - cancel: a waiting job is taken out of line (WITHDRAW: no worker can start it after that), its BullMQ job
 *   removed if no worker holds it (one left over finds nothing to start), and it is recorded cancelled here; a
 *   running one is flagged and the worker running it is told on the cancel channel (BullMQ's own cancelJob only
 *   reaches its local worker).
 * - hasRoom and estimatedWaitMs answer from a view refreshed every `refreshMs` (the admission room asks them
 *   synchronously); enqueue's RESERVE is what decides.
 * - close() stops accepting here only: queued jobs stay in Redis for the workers.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { JobEvent, JobSnapshot } from '../../../shared/protocol';
import { QueueClosedError, QueueFullError } from '../errors';
import type { JobLedger, Recorded } from '../ledger';
import { planBlobs, type EditPlan } from '../plan';
import type { BlobStore } from '../../store';
import type { Enqueued, JobQueue, QueueStats } from '../port';
import { RedisJobEvents } from './events';
import { BULLMQ_QUEUE_NAME, JobRecords, finishRecord, recordOptions, type RecordOptions } from './records';

export interface RedisJobQueueOptions extends Partial<RecordOptions> {
  /** a connection for this queue's commands (BullMQ's shares it) */
  redis: Redis;
  ledger: JobLedger;
  /** the blob store the API wrote the uploads to: a plan's blobs are durable before a worker may read them */
  blobs: Pick<BlobStore, 'whenDurable'>;
  maxLength: number;
  maxPerDocument: number;
  /** how often hasRoom's view is refreshed (default 500 ms) */
  refreshMs?: number;
  /** assumed job duration before any job has finished (default 15 s) */
  assumedJobMs?: number;
  /** told when room may have freed (the admission room's wake) */
  onRoom?: () => void;
  /** told once a job is in the shared queue (recorded; any worker may run it now) */
  onEnqueued?: (jobId: string) => void;
  now?: () => number;
  newId?: () => string;
  log?: (message: string) => void;
}

/** The view hasRoom and estimatedWaitMs answer from. */
interface View {
  waiting: number;
  running: number;
  averageDurationMs: number | null;
}

export class RedisJobQueue implements JobQueue {
  readonly records: JobRecords;
  readonly eventLog: RedisJobEvents;
  private readonly bull: Queue;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly log: (message: string) => void;
  private view: View = { waiting: 0, running: 0, averageDurationMs: null };
  private accepting = true;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly options: RedisJobQueueOptions) {
    const records = recordOptions(options);
    this.records = new JobRecords(options.redis, records);
    this.eventLog = new RedisJobEvents(this.records);
    this.bull = new Queue(BULLMQ_QUEUE_NAME, { connection: options.redis, prefix: `${records.prefix}:bull` });
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? randomUUID;
    this.log = options.log ?? ((m) => process.stderr.write(`${m}\n`));
    this.timer = setInterval(() => void this.refresh(), options.refreshMs ?? 500);
    this.timer.unref();
  }

  async enqueue(plan: EditPlan, opts: { jobId?: string } = {}): Promise<Enqueued> {
    if (!this.accepting) throw new QueueClosedError();
    const documentId = plan.request.documentId;
    const jobId = opts.jobId ?? this.newId();
    const { maxLength, maxPerDocument, ledger, blobs } = this.options;
    await Promise.all(planBlobs(plan).map((sha) => blobs.whenDurable(sha)));
    const place = await this.records.reserve(jobId, plan, { maxLength, maxPerDocument }, this.now());
    if (place.kind === 'duplicate') throw new Error(`RedisJobQueue: duplicate job id ${jobId}`);
    if (place.kind !== 'ok') {
      throw place.kind === 'full-queue' ? new QueueFullError('queue', maxLength, this.retrySeconds(place.waiting)) : new QueueFullError('document', maxPerDocument, this.retrySeconds(0));
    }
    try {
      await ledger.create(jobId, plan);
    } catch (err) {
      await this.records.release(jobId, documentId);
      throw err;
    }
    try {
      // a turn for a worker: which job it starts, the line decides then (CLAIM)
      await this.bull.add('edit', {}, { jobId, removeOnComplete: true, removeOnFail: true });
    } catch (err) {
      // recorded but not queued: say so in the record (nobody has the id yet, but the store keeps the row)
      const error = `the edit could not be queued (${(err as Error).message}): submit it again`;
      await finishRecord(this.records, jobId, documentId, await ledger.end(jobId, { state: 'failed', error }), this.now());
      throw err;
    }
    this.view.waiting += 1;
    this.options.onEnqueued?.(jobId);
    return { jobId, position: place.position };
  }

  hasRoom(_documentId: string): boolean {
    return !this.accepting || this.view.waiting < this.options.maxLength;
  }

  estimatedWaitMs(position: number): number | null {
    const avg = this.view.averageDurationMs;
    if (avg === null) return null;
    return ((position + 1) * avg) / Math.max(1, this.view.running);
  }

  async get(jobId: string, opts: { previewAfterStep?: number } = {}): Promise<JobSnapshot | null> {
    return this.records.snapshot(jobId, opts.previewAfterStep);
  }

  async cancel(jobId: string): Promise<boolean> {
    const documentId = await this.records.documentOf(jobId);
    if (documentId === null) return false;
    const flagged = await this.records.transition(jobId, documentId, { from: ['queued', 'running'], to: null, fields: { cancelRequested: 1 } });
    if (flagged.kind !== 'ok') return false;
    // not yet started by a worker: out of line, its turn out of BullMQ if no worker holds it, cancelled here
    if (await this.records.withdraw(jobId, documentId)) {
      await this.bull.remove(jobId).catch((err: Error) => this.log(`job ${jobId}: its BullMQ job stays (${err.message}); a worker that gets it finds nothing to start`));
      const recorded: Recorded = await this.options.ledger.end(jobId, { state: 'cancelled' });
      await finishRecord(this.records, jobId, documentId, recorded, this.now());
      return true;
    }
    await this.records.redis.publish(this.records.key('cancel'), jobId);
    return true;
  }

  async events(jobId: string, afterSeq = 0, signal?: AbortSignal): Promise<AsyncIterable<JobEvent>> {
    return this.eventLog.read(jobId, afterSeq, signal);
  }

  async stats(): Promise<QueueStats> {
    const redis = this.records.redis;
    const [line, running, durations] = await Promise.all([
      redis.zrange(this.records.key('line'), 0, -1),
      redis.smembers(this.records.key('running')),
      redis.lrange(this.records.key('durations'), 0, -1),
    ]);
    const documents = await Promise.all([...line, ...running].map((id) => this.records.documentOf(id)));
    const perDocument: QueueStats['perDocument'] = {};
    documents.forEach((documentId, i) => {
      if (documentId === null) return;
      const entry = (perDocument[documentId] ??= { queued: 0, running: 0 });
      if (i < line.length) entry.queued += 1;
      else entry.running += 1;
    });
    const recent = durations.map(Number).reverse();
    const averageDurationMs = recent.length === 0 ? null : recent.reduce((a, b) => a + b, 0) / recent.length;
    return {
      accepting: this.accepting,
      queued: line.length,
      running: running.length,
      runningJobId: running[0] ?? null,
      perDocument,
      recentDurationsMs: recent,
      averageDurationMs,
      retainedJobs: line.length + running.length,
    };
  }

  /** The last refreshed counts (for metrics read synchronously at scrape time). */
  cachedStats(): { queued: number; running: number } {
    return { queued: this.view.waiting, running: this.view.running };
  }

  async close(): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    clearInterval(this.timer);
    await this.bull.close();
  }

  private async refresh(): Promise<void> {
    try {
      const stats = await this.stats();
      this.view = { waiting: stats.queued, running: stats.running, averageDurationMs: stats.averageDurationMs };
      if (stats.queued < this.options.maxLength) this.options.onRoom?.();
    } catch (err) {
      this.log(`could not read the queue's counts from Redis: ${(err as Error).message}`);
    }
  }

  private retrySeconds(position: number): number {
    const ms = this.estimatedWaitMs(position) ?? (this.options.assumedJobMs ?? 15_000) * (position + 1);
    return Math.max(1, Math.ceil(ms / 1000));
  }
}
