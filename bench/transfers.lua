-- wrk script for bench/load_bench.py: authenticated POST /api/v1/transfers.
--
--   wrk ... -s bench/transfers.lua http://127.0.0.1:PORT -- <tuples file> <key prefix>
--
-- Each line of the tuples file is "<access token> <from account> <to account>", the source
-- owned by the token's user. Every request picks a random line, a random amount string
-- ("0.01" to "9.99") and a unique Idempotency-Key (prefix, thread, counter). done() prints
-- one line "WRK_JSON {...}" with throughput, latency percentiles and the count per status.

local tuples = {}
local counter = 0
local prefix = "k"
local threads = {}

-- Globals read back by done() through thread:get().
statuses = {}
thread_id = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  prefix = args[2] or prefix
  for line in io.lines(args[1]) do
    local token, source, destination = line:match("^(%S+)%s+(%S+)%s+(%S+)$")
    if token then
      tuples[#tuples + 1] = {"Bearer " .. token, source, destination}
    end
  end
  math.randomseed(os.time() * 1000 + thread_id * 7919)
end

function request()
  counter = counter + 1
  local tuple = tuples[math.random(#tuples)]
  local amount = string.format("%d.%02d", math.random(0, 9), math.random(1, 99))
  local body = '{"from_account":"' .. tuple[2] .. '","to_account":"' .. tuple[3] ..
               '","amount":"' .. amount .. '","description":"load bench"}'
  local headers = {
    ["Authorization"] = tuple[1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. thread_id .. "-" .. counter,
  }
  return wrk.format("POST", "/api/v1/transfers", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, n)
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"timeouts":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, errors.connect, errors.read,
    errors.write, errors.timeout, table.concat(parts, ",")))
end
