/**
 * JobEvents on Redis Streams: one stream per job, entry id 0-SEQ, so a reader resumes after any seq with XRANGE /
 * XREAD from 0-SEQ, on any API node. Appending stamps the next seq atomically (scripts.ts APPEND_EVENT) and
 * refuses anything after the terminal event. Each live reader blocks on its own connection (XREAD BLOCK), which
 * is closed when its signal aborts.
 */
import { isTerminalJobEvent, type JobEvent } from '../../../shared/protocol';
import { UnknownJobError } from '../errors';
import type { JobEventBody } from '../events';
import type { JobEvents } from '../port';
import type { JobRecords } from './records';

/** How long one XREAD blocks before it checks whether the stream ended or expired. */
const BLOCK_MS = 2000;

type StreamEntry = [id: string, fields: string[]];

export class RedisJobEvents implements JobEvents {
  constructor(private readonly records: JobRecords) {}

  async append(jobId: string, body: JobEventBody): Promise<JobEvent> {
    const o = this.records.options;
    const terminal = isTerminalJobEvent({ ...body, jobId, seq: 0 } as JobEvent);
    const seq = await this.records.redis.llAppend(...this.records.eventKeys(jobId), JSON.stringify(body), terminal ? '1' : '0', o.backlogSize, terminal ? o.finishedTtlSeconds : o.activeTtlSeconds);
    if (seq < 0) throw new Error(`job ${jobId} already ended; cannot append '${body.type}'`);
    return { ...body, jobId, seq } as JobEvent;
  }

  async lastSeq(jobId: string): Promise<number> {
    return Number((await this.records.redis.get(this.records.key('evseq', jobId))) ?? 0);
  }

  async read(jobId: string, afterSeq = 0, signal?: AbortSignal): Promise<AsyncIterable<JobEvent>> {
    if ((await this.lastSeq(jobId)) === 0) throw new UnknownJobError(jobId);
    return this.stream(jobId, Math.max(0, afterSeq), signal);
  }

  private async *stream(jobId: string, afterSeq: number, signal?: AbortSignal): AsyncGenerator<JobEvent, void, undefined> {
    if (signal?.aborted) return;
    const [streamKey, , endKey] = this.records.eventKeys(jobId);
    const connection = this.records.redis.duplicate();
    const onAbort = () => connection.disconnect();
    signal?.addEventListener('abort', onAbort, { once: true });
    let last = afterSeq;
    try {
      for (;;) {
        if (signal?.aborted) return;
        const end = await connection.get(endKey);
        if (end !== null && last >= Number(end)) return; // resumed at or after the end
        const reply = (await connection.xread('COUNT', 100, 'BLOCK', BLOCK_MS, 'STREAMS', streamKey, `0-${last}`)) as [string, StreamEntry[]][] | null;
        if (!reply) {
          if ((await connection.exists(streamKey)) === 0) return; // expired: nothing more will come
          continue;
        }
        for (const [id, fields] of reply[0][1]) {
          const seq = Number(id.split('-')[1]);
          if (seq <= last) continue;
          last = seq;
          const event = { ...(JSON.parse(fields[fields.indexOf('e') + 1]) as JobEventBody), jobId, seq } as JobEvent;
          yield event;
          if (isTerminalJobEvent(event)) return;
        }
      }
    } catch (err) {
      if (signal?.aborted) return; // the connection was closed to end the read
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      connection.disconnect();
    }
  }
}
