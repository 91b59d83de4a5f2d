/**
 * The Lua scripts of the Redis queue. Each runs atomically in Redis, so the job's record (a hash), the line of
 * waiting jobs, the fairness counters and the job's event stream change together or not at all: the scripts are
 * the one place a job's state moves in Redis (the store's state moves only through JobLedger).
 *
 * Keys (P = the queue's prefix):
 *   P:job:ID     hash: state, documentId, priority, enqueuedAt, startedAt, finishedAt, cancelRequested,
 *                progress, preview, result (JSON), error
 *   P:line       sorted set of waiting job ids, in the order they will start (score: priority, then arrival)
 *   P:doc:DOC    set of the document's waiting job ids (its share of the queue)
 *   P:running    set of running job ids
 *   P:vtime      the priority of the latest started job (start-time fair queueing's virtual time)
 *   P:doclast    hash: document -> the priority of its latest queued job
 *   P:order      arrival counter
 *   P:ev:ID      stream of the job's events, entry ids 0-SEQ, field e = the event without jobId and seq
 *   P:evseq:ID   the job's last seq
 *   P:evend:ID   the seq of its terminal event, once it has one
 */

/** Appends ARGV[ea] (event JSON, '' = none) to the stream KEYS[ek]; returns its seq, or -1 after the terminal event. */
const APPEND = `
local function append(stream, seqKey, endKey, body, terminal, capacity, ttl)
  if redis.call('EXISTS', endKey) == 1 then return -1 end
  local seq = redis.call('INCR', seqKey)
  redis.call('XADD', stream, 'MAXLEN', '~', capacity, '0-' .. seq, 'e', body)
  if terminal == '1' then
    redis.call('SET', endKey, seq)
  end
  for _, key in ipairs({stream, seqKey, endKey}) do
    if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ttl) end
  end
  return seq
end
`;

/**
 * KEYS: ev, evseq, evend. ARGV: body JSON, terminal ('1'/'0'), capacity, ttl seconds.
 * Returns the seq, or -1 when the job already ended.
 */
export const APPEND_EVENT = `${APPEND}
return append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`;

/**
 * Takes a place in line for a new job, if the queue and the document have room.
 * KEYS: job, line, doc, vtime, doclast, order, ev, evseq, evend, running.
 * ARGV: jobId, documentId, maxLength, maxPerDocument, now, capacity, ttl, maxPriority.
 * Returns {'ok', priority, position, seq} | {'full-queue', waiting} | {'full-document', waiting} | {'duplicate'}.
 * Priority: max(virtual time, the document's last priority + 1), so a document new to the line goes before
 * the second job of one that is there already, and each document gets one job per round (BullMQ runs lower
 * priorities first, FIFO within one). The counters start again from 0 whenever the queue is idle, so
 * priorities stay far below BullMQ's maximum unless it stays busy for millions of rounds (then: 'full-queue').
 */
export const RESERVE = `${APPEND}
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local waiting = redis.call('ZCARD', KEYS[2])
if waiting >= tonumber(ARGV[3]) then return {'full-queue', waiting} end
local mine = redis.call('SCARD', KEYS[3])
if mine >= tonumber(ARGV[4]) then return {'full-document', mine} end
if waiting == 0 and redis.call('SCARD', KEYS[10]) == 0 then redis.call('DEL', KEYS[4], KEYS[5]) end
local vtime = tonumber(redis.call('GET', KEYS[4]) or '0')
local last = tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0')
local priority = math.max(vtime, last + 1, 1)
if priority > tonumber(ARGV[8]) then return {'full-queue', waiting} end
local order = redis.call('INCR', KEYS[6])
redis.call('HSET', KEYS[5], ARGV[2], priority)
redis.call('ZADD', KEYS[2], priority * 1000000000 + order, ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'documentId', ARGV[2], 'priority', priority, 'enqueuedAt', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[7])
local position = redis.call('ZRANK', KEYS[2], ARGV[1])
local seq = append(KEYS[7], KEYS[8], KEYS[9], cjson.encode({type = 'queued', position = position}), '0', ARGV[6], ARGV[7])
return {'ok', priority, position, seq}
`;

/**
 * Undoes RESERVE for a job the store could not record (nobody has its id): no trace is left.
 * KEYS: job, line, doc, ev, evseq, evend. ARGV: jobId.
 */
export const RELEASE = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6])
return 1
`;

/**
 * Moves a job: if its state is one of ARGV[2] (comma-separated), sets state ARGV[3] ('' = unchanged), the
 * fields of ARGV[4] (a JSON object of strings) and appends the event ARGV[5] ('' = none).
 * KEYS: job, line, doc, running, vtime, ev, evseq, evend.
 * ARGV: jobId, from, to, fields JSON, event JSON, terminal ('1'/'0'), capacity, ttl (finished), ttl (active).
 * Returns {'ok', seq} | {'state', current} | {'missing'}.
 */
export const TRANSITION = `${APPEND}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. state .. ',', 1, true) then return {'state', state} end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[3]) end
for field, value in pairs(cjson.decode(ARGV[4])) do redis.call('HSET', KEYS[1], field, value) end
if ARGV[3] == 'running' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
  local priority = tonumber(redis.call('HGET', KEYS[1], 'priority') or '0')
  if priority > tonumber(redis.call('GET', KEYS[5]) or '0') then redis.call('SET', KEYS[5], priority) end
end
local ttl = ARGV[9]
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[1])
  ttl = ARGV[8]
end
redis.call('EXPIRE', KEYS[1], ttl)
local seq = 0
if ARGV[5] ~= '' then seq = append(KEYS[6], KEYS[7], KEYS[8], ARGV[5], ARGV[6], ARGV[7], ttl) end
return {'ok', seq}
`;
