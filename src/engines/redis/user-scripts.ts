/**
 * @module
 * The scripts of the Redis user records (redis-users.ts): the states of core/user-records.ts,
 * kept cluster-wide. Every script is atomic, so each change to online or offline is answered to
 * one caller in the cluster. Time is Redis's (`TIME`): every node's windows run on one clock.
 *
 * Keys, under the engine's prefix P:
 * - `P u:<user>`: hash, `n:<node>` → the user's connections on that node, and `~` → since when it
 *   is online (present while online or leaving);
 * - `P users:leaving`: sorted set of users without a connection, scored by when their window began;
 * - `P users:n:<node>`: the users with connections on a node; `P users:nodes`: those nodes;
 * - `P n:<node>`: the node's liveness (redis-presence.ts): a node without it is dead.
 * Every script takes ARGV[1] = P.
 */
const COMMON = `
local P = ARGV[1]
local LEAVING = P .. 'users:leaving'
local function nowMs()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function setCount(user, node, count)
  if count > 0 then
    redis.call('HSET', P .. 'u:' .. user, 'n:' .. node, count)
    redis.call('SADD', P .. 'users:n:' .. node, user)
    redis.call('SADD', P .. 'users:nodes', node)
  else
    redis.call('HDEL', P .. 'u:' .. user, 'n:' .. node)
    redis.call('SREM', P .. 'users:n:' .. node, user)
  end
end
-- The user's connections on live nodes; those of dead nodes are dropped on the way.
local function liveConnections(user)
  local key = P .. 'u:' .. user
  local all = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'n:' then
      local node = string.sub(all[i], 3)
      if redis.call('EXISTS', P .. 'n:' .. node) == 1 then
        total = total + tonumber(all[i + 1])
      else
        redis.call('HDEL', key, all[i])
        redis.call('SREM', P .. 'users:n:' .. node, user)
      end
    end
  end
  return total
end
-- An online user left without a live connection begins its window now (once): 1 if it did.
local function leaveIfAlone(user, now)
  if redis.call('HEXISTS', P .. 'u:' .. user, '~') == 0 or liveConnections(user) > 0 then return 0 end
  return redis.call('ZADD', LEAVING, 'NX', now, user)
end
-- The user has connections (here): back within its window, or online from now: 1 if it came online.
local function present(user, node, count, now)
  setCount(user, node, count)
  redis.call('ZREM', LEAVING, user)
  return redis.call('HSETNX', P .. 'u:' .. user, '~', now)
end
`;

/** ARGV: P, node, user, the node's connections of the user now (> 0). Returns 1 when the user came online. */
export const USER_CONNECTED_SCRIPT = `${COMMON}
return present(ARGV[3], ARGV[2], tonumber(ARGV[4]), nowMs())
`;

/** ARGV: P, node, user, the node's connections of the user now. Returns 1 when that was the user's last connection anywhere: it is leaving. */
export const USER_DISCONNECTED_SCRIPT = `${COMMON}
local count = tonumber(ARGV[4])
setCount(ARGV[3], ARGV[2], count)
if count > 0 then return 0 end
return leaveIfAlone(ARGV[3], nowMs())
`;

/**
 * ARGV: P, node, grace window (ms), most users to settle. Drops the connections of dead nodes
 * (their users left alone begin leaving now), then settles the users whose window has passed:
 * offline, their records gone. Returns { offline users, 1 if this node is not among those with
 * users (another took it for dead: it writes its users again) }.
 */
export const USER_SWEEP_SCRIPT = `${COMMON}
local now = nowMs()
for _, node in ipairs(redis.call('SMEMBERS', P .. 'users:nodes')) do
  if redis.call('EXISTS', P .. 'n:' .. node) == 0 then
    local set = P .. 'users:n:' .. node
    for _, user in ipairs(redis.call('SMEMBERS', set)) do
      redis.call('HDEL', P .. 'u:' .. user, 'n:' .. node)
      leaveIfAlone(user, now)
    end
    redis.call('DEL', set)
    redis.call('SREM', P .. 'users:nodes', node)
  end
end
local offline = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', LEAVING, '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('ZREM', LEAVING, user)
  if liveConnections(user) == 0 then
    redis.call('DEL', P .. 'u:' .. user)
    offline[#offline + 1] = user
  end
end
return { offline, 1 - redis.call('SISMEMBER', P .. 'users:nodes', ARGV[2]) }
`;

/**
 * ARGV: P, node, then user, count, user, count… — every user with connections on this node.
 * Makes the node's part of the records exactly that: users it no longer has begin leaving (if
 * left alone); those it has are present. Returns the users that came online thereby.
 */
export const USER_RESTORE_SCRIPT = `${COMMON}
local now = nowMs()
local node = ARGV[2]
local kept = {}
for i = 3, #ARGV, 2 do kept[ARGV[i]] = tonumber(ARGV[i + 1]) end
for _, user in ipairs(redis.call('SMEMBERS', P .. 'users:n:' .. node)) do
  if kept[user] == nil then
    setCount(user, node, 0)
    leaveIfAlone(user, now)
  end
end
local online = {}
for user, count in pairs(kept) do
  if present(user, node, count, now) == 1 then online[#online + 1] = user end
end
return online
`;
