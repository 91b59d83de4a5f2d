/**
 * The jobs' records in Redis (keys and scripts: scripts.ts), shared by the API side (RedisJobQueue) and the
 * worker side (RedisJobWorker): the one place that calls the scripts and reads a job's hash back as a snapshot.
 */
import type { Redis } from 'ioredis';
import { isTerminalJobState, type JobResult, type JobSnapshot, type JobState } from '../../../shared/protocol';
import type { JobEventBody } from '../events';
import type { Recorded } from '../ledger';
import { parseEditPlan, type EditPlan } from '../plan';
import { APPEND_EVENT, CLAIM, RELEASE, RESERVE, TRANSITION, WITHDRAW } from './scripts';

/** The BullMQ queue's name (under the prefix `PREFIX:bull`). */
export const BULLMQ_QUEUE_NAME = 'edits';


export interface RecordOptions {
  /** key prefix of this queue (several queues, or tests, share one Redis) */
  prefix: string;
  /** events kept per job */
  backlogSize: number;
  /** how long a finished job's record and events stay (seconds) */
  finishedTtlSeconds: number;
  /** how long an unfinished job's record stays without a change (seconds): a bound for abandoned ones */
  activeTtlSeconds: number;
}

export const DEFAULT_RECORD_OPTIONS: RecordOptions = { prefix: 'layerloop', backlogSize: 200, finishedTtlSeconds: 600, activeTtlSeconds: 24 * 3600 };

/** The defaults with what `options` sets. */
export function recordOptions(options: Partial<RecordOptions>): RecordOptions {
  return {
    prefix: options.prefix ?? DEFAULT_RECORD_OPTIONS.prefix,
    backlogSize: options.backlogSize ?? DEFAULT_RECORD_OPTIONS.backlogSize,
    finishedTtlSeconds: options.finishedTtlSeconds ?? DEFAULT_RECORD_OPTIONS.finishedTtlSeconds,
    activeTtlSeconds: options.activeTtlSeconds ?? DEFAULT_RECORD_OPTIONS.activeTtlSeconds,
  };
}

export type Reservation =
  | { kind: 'ok'; position: number }
  | { kind: 'full-queue' | 'full-document'; waiting: number }
  | { kind: 'duplicate' };

export type TransitionResult = { kind: 'ok'; seq: number } | { kind: 'state'; state: JobState } | { kind: 'missing' };

interface ScriptedRedis extends Redis {
  llReserve(...args: (string | number)[]): Promise<(string | number)[]>;
  llRelease(...args: (string | number)[]): Promise<number>;
  llTransition(...args: (string | number)[]): Promise<(string | number)[]>;
  llClaim(...args: (string | number)[]): Promise<string | null>;
  llWithdraw(...args: (string | number)[]): Promise<number>;
  llAppend(...args: (string | number)[]): Promise<number>;
}

/** Registers the scripts on a connection (EVALSHA, loaded on first use). */
export function withScripts(redis: Redis): ScriptedRedis {
  const r = redis as ScriptedRedis;
  if (typeof r.llReserve !== 'function') {
    redis.defineCommand('llReserve', { numberOfKeys: 10, lua: RESERVE });
    redis.defineCommand('llRelease', { numberOfKeys: 8, lua: RELEASE });
    redis.defineCommand('llTransition', { numberOfKeys: 7, lua: TRANSITION });
    redis.defineCommand('llClaim', { numberOfKeys: 5, lua: CLAIM });
    redis.defineCommand('llWithdraw', { numberOfKeys: 4, lua: WITHDRAW });
    redis.defineCommand('llAppend', { numberOfKeys: 3, lua: APPEND_EVENT });
  }
  return r;
}

export class JobRecords {
  readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    readonly options: RecordOptions,
  ) {
    this.redis = withScripts(redis);
  }

  key(...parts: string[]): string {
    return [this.options.prefix, ...parts].join(':');
  }

  eventKeys(jobId: string): [string, string, string] {
    return [this.key('ev', jobId), this.key('evseq', jobId), this.key('evend', jobId)];
  }

  /** A place in line for the plan's job (the plan is kept with it: whichever worker starts it reads it here). */
  async reserve(jobId: string, plan: EditPlan, limits: { maxLength: number; maxPerDocument: number }, now: number): Promise<Reservation> {
    const documentId = plan.request.documentId;
    const keys = [this.key('job', jobId), this.key('line'), this.key('doc', documentId), this.key('userlast'), this.key('doclast'), this.key('order'), ...this.eventKeys(jobId), this.key('running')];
    const o = this.options;
    const reply = await this.redis.llReserve(...keys, jobId, documentId, limits.maxLength, limits.maxPerDocument, now, o.backlogSize, o.activeTtlSeconds, plan.owner.userId, JSON.stringify(plan), this.key('job', ''));
    const kind = String(reply[0]);
    if (kind === 'ok') return { kind, position: Number(reply[1]) };
    if (kind === 'full-queue' || kind === 'full-document') return { kind, waiting: Number(reply[1]) };
    return { kind: 'duplicate' };
  }

  /**
   * The job a worker's BullMQ job (`tokenId`) runs: the first of the fair line, or the one it had before BullMQ
   * retried it; null when nothing waits. Its plan and enqueue time come with it.
   */
  async claim(tokenId: string): Promise<{ jobId: string; plan: EditPlan; enqueuedAt: number } | null> {
    const keys = [this.key('line'), this.key('claim', tokenId), this.key('served'), this.key('userlast'), this.key('doclast')];
    const jobId = await this.redis.llClaim(...keys, tokenId, this.key('job', ''), this.options.activeTtlSeconds);
    if (!jobId) return null;
    const [plan, enqueuedAt] = await this.redis.hmget(this.key('job', jobId), 'plan', 'enqueuedAt');
    if (!plan) throw new Error(`job ${jobId} has no plan in Redis (its record expired)`);
    return { jobId, plan: parseEditPlan(JSON.parse(plan)), enqueuedAt: Number(enqueuedAt ?? 0) };
  }

  /** The job a worker's BullMQ job started, if any. */
  async claimOf(tokenId: string): Promise<string | null> {
    return this.redis.get(this.key('claim', tokenId));
  }

  /** Takes a waiting job out of line so no worker starts it; false when a worker has it already. */
  async withdraw(jobId: string, documentId: string): Promise<boolean> {
    return (await this.redis.llWithdraw(this.key('line'), this.key('doc', documentId), this.key('userlast'), this.key('doclast'), jobId, this.key('job', ''))) === 1;
  }

  async release(jobId: string, documentId: string): Promise<void> {
    await this.redis.llRelease(this.key('job', jobId), this.key('line'), this.key('doc', documentId), ...this.eventKeys(jobId), this.key('userlast'), this.key('doclast'), jobId, this.key('job', ''));
  }

  /** Move the job from one of `from` to `to` (null: same state) with `fields` and `event`; see TRANSITION. */
  async transition(
    jobId: string,
    documentId: string,
    change: { from: readonly JobState[]; to: JobState | null; fields?: Record<string, string | number>; event?: JobEventBody },
  ): Promise<TransitionResult> {
    const terminal = change.to !== null && isTerminalJobState(change.to);
    const keys = [this.key('job', jobId), this.key('line'), this.key('doc', documentId), this.key('running'), ...this.eventKeys(jobId)];
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(change.fields ?? {})) fields[k] = String(v);
    const o = this.options;
    const reply = await this.redis.llTransition(
      ...keys,
      jobId,
      change.from.join(','),
      change.to ?? '',
      JSON.stringify(fields),
      change.event ? JSON.stringify(change.event) : '',
      terminal ? '1' : '0',
      o.backlogSize,
      o.finishedTtlSeconds,
      o.activeTtlSeconds,
    );
    const kind = String(reply[0]);
    if (kind === 'ok') return { kind, seq: Number(reply[1]) };
    if (kind === 'state') return { kind, state: String(reply[1]) as JobState };
    return { kind: 'missing' };
  }

  async documentOf(jobId: string): Promise<string | null> {
    return this.redis.hget(this.key('job', jobId), 'documentId');
  }

  async cancelRequested(jobId: string): Promise<boolean> {
    return (await this.redis.hget(this.key('job', jobId), 'cancelRequested')) === '1';
  }

  /** The job's snapshot from its hash; null when Redis no longer (or never) had it. */
  async snapshot(jobId: string, previewAfterStep?: number): Promise<JobSnapshot | null> {
    const [[, hash], [, position], [, lastSeq]] = (await this.redis
      .multi()
      .hgetall(this.key('job', jobId))
      .zrank(this.key('line'), jobId)
      .get(this.key('evseq', jobId))
      .exec()) as [[unknown, Record<string, string>], [unknown, number | null], [unknown, string | null]];
    if (!hash || !hash.state) return null;
    const num = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
    const preview = hash.preview ? (JSON.parse(hash.preview) as { step: number; dataUrl: string }) : null;
    const sendPreview = preview !== null && (previewAfterStep === undefined || preview.step > previewAfterStep);
    const state = hash.state as JobState;
    return {
      jobId,
      documentId: hash.documentId,
      state,
      position: state === 'queued' ? (position ?? 0) : null,
      cancelRequested: hash.cancelRequested === '1',
      progress: hash.progress ? (JSON.parse(hash.progress) as JobSnapshot['progress']) : null,
      previewStep: preview?.step ?? null,
      previewDataUrl: sendPreview ? preview.dataUrl : null,
      result: hash.result ? (JSON.parse(hash.result) as JobResult) : null,
      error: hash.error ?? null,
      lastSeq: Number(lastSeq ?? 0),
      enqueuedAt: num(hash.enqueuedAt) ?? 0,
      startedAt: num(hash.startedAt),
      finishedAt: num(hash.finishedAt),
    };
  }
}

/** Records a job's final state in Redis (with its terminal event), after the ledger recorded it in the store. */
export async function finishRecord(records: JobRecords, jobId: string, documentId: string, recorded: Recorded, now: number): Promise<void> {
  const fields: Record<string, string | number> = { finishedAt: now };
  if (recorded.state === 'succeeded') fields.result = JSON.stringify(recorded.result);
  if (recorded.state === 'failed') fields.error = recorded.error;
  const event =
    recorded.state === 'succeeded'
      ? ({ type: 'succeeded', ...recorded.result } as const)
      : recorded.state === 'failed'
        ? ({ type: 'failed', message: recorded.error } as const)
        : ({ type: 'cancelled' } as const);
  await records.transition(jobId, documentId, { from: ['queued', 'running'], to: recorded.state, fields, event });
}
