-- wrk script for bench/load_bench.py: the web form transfer, as a logged-in browser sends
-- its confirmed POST /accounts/transfer/ (confirmed=yes, the session's CSRF token, a fresh
-- one-time idempotency key per request).
--
--   wrk ... -s bench/web_transfers.lua http://127.0.0.1:PORT -- <tuples file> <key prefix>
--
-- Each line of the tuples file is "<Cookie header>\t<csrf token>\t<from>\t<to>", the source
-- owned by the session's user. A posted transfer answers 303 (302 before) to the account page; done()
-- prints "WRK_JSON {...}" like transfers.lua.

local tuples = {}
local counter = 0
local prefix = "w"
local threads = {}

statuses = {}
thread_id = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  prefix = args[2] or prefix
  for line in io.lines(args[1]) do
    local cookie, csrf, source, destination = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if cookie then
      tuples[#tuples + 1] = {cookie, csrf, source, destination}
    end
  end
  math.randomseed(os.time() * 1000 + thread_id * 7919)
end

local function encode(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  counter = counter + 1
  local tuple = tuples[math.random(#tuples)]
  local amount = string.format("%d.%02d", math.random(0, 9), math.random(1, 99))
  local key = string.format("%s-%04d-%012d", prefix, thread_id, counter)
  local body = "csrf_token=" .. encode(tuple[2]) .. "&from_account=" .. tuple[3] ..
               "&to_account=" .. tuple[4] .. "&amount=" .. amount ..
               "&description=web+bench&idempotency_key=" .. encode(key) .. "&confirmed=yes"
  local headers = {
    ["Cookie"] = tuple[1],
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  return wrk.format("POST", "/accounts/transfer/", headers, body)
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
