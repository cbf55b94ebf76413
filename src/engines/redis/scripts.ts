/**
 * @module
 * The Lua scripts the Redis engine runs. Each is atomic in Redis, which is what makes ids and
 * order cluster-wide: a message is appended to its channel's stream and published to every node
 * in one step, so every node sees one channel's messages in id order.
 *
 * Numbers pass through Lua doubles; `%d` formatting keeps millisecond timestamps exact.
 */

/** Lua `later(a, b)`: whether stream id `a` is after `b` (ids compared as numbers, not strings). */
export const LATER = `
local function later(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
`;

/**
 * Trimming, shared by the scripts. Redis 7 records `max-deleted-entry-id` only for XDEL, not for
 * trims, so `trim` records it itself: the newest id history lost, below which a reader has a gap.
 * Evictions go oldest first, so the recorded id only grows.
 */
const TRIM = `${LATER}
local function trim(key, lastId, maxlen, oldestMs)
  local evicted = nil
  if maxlen then
    local len = redis.call('XLEN', key)
    if len > maxlen then
      local old = redis.call('XRANGE', key, '-', '+', 'COUNT', len - maxlen)
      evicted = old[#old][1]
      redis.call('XTRIM', key, 'MAXLEN', maxlen)
    end
  end
  if oldestMs > 0 then
    local bound = string.format('%d-0', oldestMs)
    local old = redis.call('XREVRANGE', key, '(' .. bound, '-', 'COUNT', 1)
    if #old > 0 then
      if evicted == nil or later(old[1][1], evicted) then evicted = old[1][1] end
      redis.call('XTRIM', key, 'MINID', bound)
    end
  end
  if evicted then redis.call('XSETID', key, lastId, 'MAXDELETEDID', evicted) end
  return evicted
end
local function nowMs()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function field(info, name)
  for i = 1, #info, 2 do
    if info[i] == name then return info[i + 1] end
  end
end
`;

/**
 * KEYS[1] stream, KEYS[2] floor key, KEYS[3] idempotency key · ARGV: pub/sub channel, JSON data,
 * history size, history TTL ms (0 = none), key expiry ms (0 = none), idempotency window ms (0 =
 * no key), channel. Returns the entry's stream id; or, when the idempotency key was used within
 * its window, { "<stream id> <channel>" } of that first publish, and nothing is stored or sent.
 * The key is written in the same step as the message: a retry can never see the one without the other.
 *
 * Ids never start below the floor: a Redis that lost its data and whose clock is behind the ids
 * issued before (or a promoted replica with a slower clock) would otherwise issue ids that sort
 * below ones already delivered, and every node would drop them as seen (see FLOOR_SCRIPT).
 *
 * A stream whose key expires (quiet for `expiry`) and is created afresh marks every id its
 * earlier life can have had as deleted, so a reader resuming from then is told of a possible gap
 * instead of seeing a history that looks complete. (Its earlier life ended at least `expiry` ago.)
 */
export const PUBLISH_SCRIPT = `${TRIM}
local window = tonumber(ARGV[6])
if window > 0 then
  local first = redis.call('GET', KEYS[3])
  if first then return { first } end
end
local fresh = redis.call('EXISTS', KEYS[1]) == 0
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local id = nil
if floor > nowMs() then
  id = redis.pcall('XADD', KEYS[1], string.format('%d-*', floor), 'd', ARGV[2])
  -- An error means the stream is past the floor already: its own next id is above it.
  if type(id) ~= 'string' then id = nil end
end
id = id or redis.call('XADD', KEYS[1], '*', 'd', ARGV[2])
local ttl = tonumber(ARGV[4])
local oldest = 0
if ttl > 0 then oldest = math.max(0, tonumber(string.match(id, '^(%d+)')) - ttl) end
trim(KEYS[1], id, tonumber(ARGV[3]), oldest)
local expiry = tonumber(ARGV[5])
if expiry > 0 then
  redis.call('PEXPIRE', KEYS[1], expiry)
  local earlierLife = tonumber(string.match(id, '^(%d+)')) - expiry + 1
  if fresh and earlierLife > 0 then redis.call('XSETID', KEYS[1], id, 'MAXDELETEDID', string.format('%d-0', earlierLife)) end
end
if window > 0 then redis.call('SET', KEYS[3], id .. ' ' .. ARGV[7], 'PX', window) end
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`;

/**
 * KEYS[1] stream · ARGV: XRANGE start ('-' = oldest), COUNT (0 = all), history TTL ms (0 = none).
 * Returns { Redis's clock in ms } when the stream does not exist, else { max-deleted-entry-id,
 * entries, last-generated-id, Redis's clock in ms }.
 */
export const HISTORY_SCRIPT = `${TRIM}
if redis.call('EXISTS', KEYS[1]) == 0 then return { string.format('%d', nowMs()) } end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local maxDeleted = field(info, 'max-deleted-entry-id')
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local evicted = trim(KEYS[1], field(info, 'last-generated-id'), nil, nowMs() - ttl)
  if evicted then maxDeleted = evicted end
end
local entries
if ARGV[2] == '0' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
else
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
end
return { maxDeleted, entries, field(info, 'last-generated-id'), string.format('%d', nowMs()) }
`;

/** KEYS[1] stream. Empties it but keeps its last id, so readers from before get a gap. */
export const DELETE_HISTORY_SCRIPT = `${TRIM}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
trim(KEYS[1], field(redis.call('XINFO', 'STREAM', KEYS[1]), 'last-generated-id'), 0, 0)
return 1
`;

/**
 * KEYS[1] stream. Returns { 'id', last-generated-id } for an existing stream, else
 * { 'ms', Redis's clock in milliseconds }: the next id Redis gives that stream is at least that.
 */
export const POSITION_SCRIPT = `${TRIM}
if redis.call('EXISTS', KEYS[1]) == 1 then
  return { 'id', field(redis.call('XINFO', 'STREAM', KEYS[1]), 'last-generated-id') }
end
return { 'ms', string.format('%d', nowMs()) }
`;

/**
 * KEYS[1] floor key, KEYS[2] epoch key · ARGV: the epoch the node knew ('' = none), the
 * milliseconds of the newest id it has seen (0 = none), a name for a new epoch.
 * Returns { floor ms, epoch }.
 *
 * The epoch names one life of the Redis data set; the floor is where its ids begin: ids below
 * it were issued by a Redis that has since lost its data. A node that knew another epoch comes
 * from before the loss and raises the floor above every id it saw (by 2 ms, so that the id just
 * below the floor, the one readers compare with, is above them too): ids never go backwards
 * however far behind the new Redis's clock is.
 */
export const FLOOR_SCRIPT = `${TRIM}
local floor = tonumber(redis.call('GET', KEYS[1]) or '0')
if floor == 0 then floor = nowMs() end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end
if ARGV[1] ~= '' and ARGV[1] ~= epoch then floor = math.max(floor, tonumber(ARGV[2]) + 2) end
redis.call('SET', KEYS[1], string.format('%d', floor))
return { string.format('%d', floor), epoch }
`;

/**
 * KEYS[1] presence hash (session → "<node> <JSON>") · ARGV[1] prefix of node liveness keys.
 * Returns the entries of live nodes as a flat { session, value, … } list, and removes the entries
 * of nodes whose liveness key has expired (the node died without saying goodbye).
 */
export const PRESENCE_SCRIPT = `
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local out = {}
for i = 1, #all, 2 do
  local node = string.match(all[i + 1], '^([^ ]+)')
  local live = alive[node]
  if live == nil then
    live = redis.call('EXISTS', ARGV[1] .. node) == 1
    alive[node] = live
  end
  if live then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
`;

/**
 * KEYS[1] revocation hash · ARGV[1] before (ms; 0 for a jti) · ARGV[2] until (ms).
 * Merges with what the hash holds (the later of each), so concurrent revocations of one subject
 * keep the wider; the hash expires at its `until`. Returns { before, until } as kept.
 */
export const REVOKE_SCRIPT = `
local before = tonumber(ARGV[1])
local untilMs = tonumber(ARGV[2])
local kept = redis.call('HMGET', KEYS[1], 'before', 'until')
if kept[1] then before = math.max(before, tonumber(kept[1])) end
if kept[2] then untilMs = math.max(untilMs, tonumber(kept[2])) end
local b = string.format('%.0f', before)
local u = string.format('%.0f', untilMs)
redis.call('HSET', KEYS[1], 'before', b, 'until', u)
redis.call('PEXPIREAT', KEYS[1], u)
return { b, u }
`;

/**
 * KEYS[1] control log (a stream), KEYS[2] key an unsubscribe is kept in (ignored unless ARGV[4]
 * > 0) · ARGV: pub/sub channel, the command (JSON), how long the log keeps commands (ms), how
 * long to keep the unsubscribe (ms; 0 = not one). Appends the command to the log (trimmed to its
 * age and length), keeps an unsubscribe as the time it was sent, and publishes
 * `"<log id> <command>"`, in one step: a node that was not listening finds it in the log, after
 * the last id it heard. Returns the log id.
 */
export const CONTROL_SCRIPT = `${TRIM}
local now = nowMs()
local keep = tonumber(ARGV[3])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 10000, '*', 'c', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d-0', now - keep))
redis.call('PEXPIRE', KEYS[1], keep)
local withdrawal = tonumber(ARGV[4])
if withdrawal > 0 then redis.call('SET', KEYS[2], string.format('%d', now), 'PX', withdrawal) end
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`;
