/**
 * The Lua scripts of the Redis queue. Each runs atomically in Redis, so the job's record (a hash), the line of
 * waiting jobs, the fairness counters and the job's event stream change together or not at all: the scripts are
 * the one place a job's state moves in Redis (the store's state moves only through JobLedger).
 *
 * Keys (P = the queue's prefix):
 *   P:job:ID     hash: state, documentId, userId, order, plan (JSON), enqueuedAt, startedAt, finishedAt,
 *                cancelRequested, token, progress, preview, result (JSON), error
 *   P:line       sorted set of waiting job ids in the order they will start (score: place, 0 = next), kept in
 *                that order by PLAN whenever a job arrives or starts
 *   P:doc:DOC    set of the document's waiting job ids (its share of the queue)
 *   P:running    set of running job ids
 *   P:served     serve counter (one per started job)
 *   P:userlast   hash: user -> the serve counter of its latest started job
 *   P:doclast    hash: document -> the serve counter of its latest started job
 *   P:order      arrival counter
 *   P:claim:TOK  the job a BullMQ job (a worker's token) started; the same job again when BullMQ retries it
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
 * The fair order (server/jobs/fair-order.ts, the same rules as the in-process queue): users by their latest start
 * (never, or idle since: 0), then by their oldest waiting job; each user's documents the same way; FIFO within a
 * document; one job per user per round, and per document per round within a user. Rewrites the line's scores to
 * 0, 1, 2, ... in that order. `jobPrefix` .. id is a job's hash. O(waiting jobs), which maxLength bounds.
 */
const PLAN = `
local function plan(lineKey, jobPrefix, userlastKey, doclastKey)
  local ids = redis.call('ZRANGE', lineKey, 0, -1)
  local users, userList = {}, {}
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', jobPrefix .. id, 'userId', 'documentId', 'order')
    local userId, documentId, order = f[1] or '', f[2] or '', tonumber(f[3] or '0')
    local user = users[userId]
    if not user then
      user = {id = userId, last = tonumber(redis.call('HGET', userlastKey, userId) or '0'), oldest = order, docs = {}, docList = {}}
      users[userId] = user
      table.insert(userList, user)
    end
    if order < user.oldest then user.oldest = order end
    local doc = user.docs[documentId]
    if not doc then
      doc = {last = tonumber(redis.call('HGET', doclastKey, documentId) or '0'), oldest = order, jobs = {}}
      user.docs[documentId] = doc
      table.insert(user.docList, doc)
    end
    if order < doc.oldest then doc.oldest = order end
    table.insert(doc.jobs, {id = id, order = order})
  end
  local byTurn = function(a, b)
    if a.last ~= b.last then return a.last < b.last end
    return a.oldest < b.oldest
  end
  table.sort(userList, byTurn)
  local perUser, longestUser = {}, 0
  for _, user in ipairs(userList) do
    table.sort(user.docList, byTurn)
    local seq, longest = {}, 0
    for _, doc in ipairs(user.docList) do
      table.sort(doc.jobs, function(a, b) return a.order < b.order end)
      if #doc.jobs > longest then longest = #doc.jobs end
    end
    for round = 1, longest do
      for _, doc in ipairs(user.docList) do
        if doc.jobs[round] then table.insert(seq, doc.jobs[round].id) end
      end
    end
    table.insert(perUser, seq)
    if #seq > longestUser then longestUser = #seq end
  end
  local place = 0
  for round = 1, longestUser do
    for _, seq in ipairs(perUser) do
      if seq[round] then
        redis.call('ZADD', lineKey, place, seq[round])
        place = place + 1
      end
    end
  end
end
`;

/**
 * Takes a place in line for a new job, if the queue and the document have room, and puts the line in its fair
 * order (PLAN). The serve counters start again from 0 whenever the queue is idle.
 * KEYS: job, line, doc, userlast, doclast, order, ev, evseq, evend, running.
 * ARGV: jobId, documentId, maxLength, maxPerDocument, now, capacity, ttl, userId, plan JSON, job key prefix.
 * Returns {'ok', position, seq} | {'full-queue', waiting} | {'full-document', waiting} | {'duplicate'}.
 */
export const RESERVE = `${APPEND}${PLAN}
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local waiting = redis.call('ZCARD', KEYS[2])
if waiting >= tonumber(ARGV[3]) then return {'full-queue', waiting} end
local mine = redis.call('SCARD', KEYS[3])
if mine >= tonumber(ARGV[4]) then return {'full-document', mine} end
if waiting == 0 and redis.call('SCARD', KEYS[10]) == 0 then redis.call('DEL', KEYS[4], KEYS[5]) end
local order = redis.call('INCR', KEYS[6])
redis.call('HSET', KEYS[1], 'state', 'queued', 'documentId', ARGV[2], 'userId', ARGV[8], 'order', order, 'plan', ARGV[9], 'enqueuedAt', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], waiting, ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
plan(KEYS[2], ARGV[10], KEYS[4], KEYS[5])
local position = redis.call('ZRANK', KEYS[2], ARGV[1])
local seq = append(KEYS[7], KEYS[8], KEYS[9], cjson.encode({type = 'queued', position = position}), '0', ARGV[6], ARGV[7])
return {'ok', position, seq}
`;

/**
 * A worker's BullMQ job (its token) takes the first job of the line: BullMQ only hands out turns, the line says
 * whose. A token BullMQ retries (its worker died) gets the job it had. The job's user and document become the
 * most recently served and the line is put in order again.
 * KEYS: line, claim, served, userlast, doclast. ARGV: token id, job key prefix, claim ttl seconds.
 * Returns the job id, or false when nothing waits (a token left over by a cancelled job).
 */
export const CLAIM = `${PLAN}
local had = redis.call('GET', KEYS[2])
if had then return had end
-- in order even if a job left the line some other way (a waiting job that failed to reach BullMQ)
plan(KEYS[1], ARGV[2], KEYS[4], KEYS[5])
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if #first == 0 then return false end
local id = first[1]
redis.call('ZREM', KEYS[1], id)
local f = redis.call('HMGET', ARGV[2] .. id, 'userId', 'documentId')
local served = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[4], f[1] or '', served)
redis.call('HSET', KEYS[5], f[2] or '', served)
redis.call('SET', KEYS[2], id, 'EX', ARGV[3])
redis.call('HSET', ARGV[2] .. id, 'token', ARGV[1])
-- bounded: past 10,000 users or documents remembered, all count as new again (as after an idle queue)
for _, key in ipairs({KEYS[4], KEYS[5]}) do
  if redis.call('HLEN', key) > 10000 then redis.call('DEL', key) end
end
plan(KEYS[1], ARGV[2], KEYS[4], KEYS[5])
return id
`;

/**
 * Takes a waiting job out of line (it is being cancelled): after this no worker can start it. The rest is put in
 * order again (one job fewer for its user can change whose turn comes first).
 * KEYS: line, doc, userlast, doclast. ARGV: jobId, job key prefix.
 * Returns 1 if it was waiting, 0 if a worker has it (or it ended).
 */
export const WITHDRAW = `${PLAN}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
plan(KEYS[1], ARGV[2], KEYS[3], KEYS[4])
return 1
`;

/**
 * Undoes RESERVE for a job the store could not record (nobody has its id): no trace is left, and the line is
 * in order again without it.
 * KEYS: job, line, doc, ev, evseq, evend, userlast, doclast. ARGV: jobId, job key prefix.
 */
export const RELEASE = `${PLAN}
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6])
plan(KEYS[2], ARGV[2], KEYS[7], KEYS[8])
return 1
`;

/**
 * Moves a job: if its state is one of ARGV[2] (comma-separated), sets state ARGV[3] ('' = unchanged), the
 * fields of ARGV[4] (a JSON object of strings) and appends the event ARGV[5] ('' = none).
 * KEYS: job, line, doc, running, ev, evseq, evend.
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
if ARGV[5] ~= '' then seq = append(KEYS[5], KEYS[6], KEYS[7], ARGV[5], ARGV[6], ARGV[7], ttl) end
return {'ok', seq}
`;
