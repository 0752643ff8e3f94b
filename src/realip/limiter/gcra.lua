-- realip: GCRA for every limit that applies to one request, all or nothing.
--
-- The algorithm and its terms are described in realip/limiter/_gcra.py.
-- KEYS[i]          the TAT of limit i for this client, in microseconds. The keys
--                  share one hash tag (the client), so this also runs on a Cluster.
-- ARGV[3i-2 .. 3i] cost, emission interval T (us), horizon (us) of limit i.
--
-- The clock is the server's (TIME), never the caller's: replicas whose clocks
-- disagree still share one budget (Brandur Leach, "Rate Limiting, Cells, and
-- GCRA": use the store's time). Since Redis 5 scripts replicate their effects,
-- so reading TIME before writing is allowed.
--
-- Reply: { allowed, free_1, backlog_1, free_2, backlog_2, ... } where free_i is
-- the whole units free before this request and backlog_i how far the stored TAT
-- lies ahead of now (us). The caller derives remaining, retry-after and reset.
-- State is written only when every limit has room: a refused request costs nothing.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local reply = { 1 }
local tats = {}

for i = 1, #KEYS do
  local cost = tonumber(ARGV[3 * i - 2])
  local interval = tonumber(ARGV[3 * i - 1])
  local horizon = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  local backlog = 0
  if tat and tat > now then
    backlog = tat - now
  end
  -- 1e-6 units of slack absorbs the rounding of stored TATs to whole microseconds.
  local free = math.floor((horizon - backlog) / interval + 1e-6)
  if free < cost then
    reply[1] = 0
  end
  reply[2 * i] = free
  reply[2 * i + 1] = math.floor(backlog)
  tats[i] = now + backlog + cost * interval
end

if reply[1] == 1 then
  for i = 1, #KEYS do
    -- The key expires when its TAT passes: an idle client costs no memory.
    local ttl = math.ceil((tats[i] - now) / 1000)
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl)
  end
end

return reply
