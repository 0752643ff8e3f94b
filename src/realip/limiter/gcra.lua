-- realip: GCRA decisions for a batch of requests, each all or nothing.
--
-- The algorithm and its terms are described in realip/limiter/_gcra.py.
--
-- ARGV[1] is one string of space-separated numbers. For each request in turn:
-- the number of limits n that apply to it, then for each of those limits its
-- cost, emission interval T (us) and horizon (us). KEYS holds, in the same order,
-- the TAT key of every limit of every request, in microseconds. On a Cluster the
-- caller only batches keys of one hash slot (the keys carry the client as hash
-- tag). Numbers travel as one string, and the reply below as another, because
-- decoding thousands of separate RESP items costs a Python client far more than
-- this script costs Redis.
--
-- The clock is the server's (TIME), never the caller's: replicas whose clocks
-- disagree still share one budget (Brandur Leach, "Rate Limiting, Cells, and
-- GCRA": use the store's time). Since Redis 5 scripts replicate their effects,
-- so reading TIME before writing is allowed.
--
-- Reply: one string of space-separated integers. For each request: allowed
-- (1 or 0), then per limit free_i, the whole units free before the request, and
-- backlog_i, how far the stored TAT lies ahead of now (us); the caller derives
-- remaining, retry-after and reset. A request's state is written only when every
-- one of its limits has room: a refused request costs nothing. Requests are
-- decided in order, so two requests of one client in one batch see each other.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local input = {}
for word in string.gmatch(ARGV[1], '%S+') do
  input[#input + 1] = tonumber(word)
end

local out = {}
local k = 0 -- KEYS consumed so far
local a = 0 -- numbers consumed so far
while a < #input do
  local n = input[a + 1]
  a = a + 1
  local allowed = 1
  local first = #out + 1
  local tats = {}
  out[first] = 1
  for i = 1, n do
    local cost, interval, horizon = input[a + 1], input[a + 2], input[a + 3]
    a = a + 3
    local tat = tonumber(redis.call('GET', KEYS[k + i]))
    local backlog = 0
    if tat and tat > now then
      backlog = tat - now
    end
    -- 1e-6 units of slack absorbs the rounding of stored TATs to whole us.
    local free = math.floor((horizon - backlog) / interval + 1e-6)
    if free < cost then
      allowed = 0
    end
    out[#out + 1] = string.format('%d', free)
    out[#out + 1] = string.format('%.0f', backlog)
    tats[i] = now + backlog + cost * interval
  end
  out[first] = allowed
  if allowed == 1 then
    for i = 1, n do
      -- The key expires when its TAT passes: an idle client costs no memory.
      local ttl = math.ceil((tats[i] - now) / 1000)
      redis.call('SET', KEYS[k + i], string.format('%.0f', tats[i]), 'PX', ttl)
    end
  end
  k = k + n
end

return table.concat(out, ' ')
