/**
 * Opening the Redis connection of `--queue redis://…`, checked at start: a server that cannot reach Redis (or
 * reaches something that is not Redis 6.2+) refuses to start with a message that says what to fix, instead of
 * retrying forever in the background.
 */
import { Redis } from 'ioredis';

export class RedisConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisConfigError';
  }
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the --queue URL';
  }
}

/**
 * A connection to the queue's Redis (maxRetriesPerRequest: null, as BullMQ requires), once it answered PING and
 * reported a version that has what the queue uses (streams, XREAD BLOCK, Lua). Throws RedisConfigError.
 */
export async function connectRedis(url: string, opts: { timeoutMs?: number } = {}): Promise<Redis> {
  const where = redactRedisUrl(url);
  let lastError: Error | null = null;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: opts.timeoutMs ?? 5000,
    retryStrategy: () => null, // at start: one try; the caller decides
  });
  redis.on('error', (err: Error) => (lastError = err));
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new RedisConfigError(`the Redis at ${where} is version ${version[1]}.${version[2]}; the queue needs Redis 6.2 or newer`);
    }
  } catch (err) {
    redis.disconnect();
    if (err instanceof RedisConfigError) throw err;
    const cause = (lastError ?? (err as Error)).message;
    throw new RedisConfigError(`cannot reach Redis at ${where} (${cause}): start Redis there, or fix --queue / LAYERLOOP_QUEUE`);
  }
  // running: reconnect for ever (a Redis restart must not end the process), with a capped backoff
  redis.options.retryStrategy = (times: number) => Math.min(times * 200, 5000);
  return redis;
}
