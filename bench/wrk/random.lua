-- Requests to random targets, for the many-tenants scenarios of bench/run.sh. Configured by
-- the environment:
--   BENCH_TARGETS  a file of lines "PATH<TAB>AUTHORIZATION" (AUTHORIZATION may be empty)
--   BENCH_METHOD   GET or POST (default GET)
--   BENCH_BODY     form body for POST
--   BENCH_EXPECT   a string every good response body contains
--   BENCH_BAD_LOG  as in request.lua
-- done() prints the same summary line as request.lua.

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
local expect = os.getenv("BENCH_EXPECT") or ""
local bad_log = os.getenv("BENCH_BAD_LOG") or ""

local targets = {}
for line in io.lines(os.getenv("BENCH_TARGETS")) do
  local path, auth = line:match("^([^\t]*)\t?(.*)$")
  table.insert(targets, { path = path, auth = auth })
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Every request is formatted once, in init: formatting one per request in Lua costs wrk CPU
-- that, on a small machine, it takes from the server, and would make the many-tenant
-- scenarios look slower than their one-tenant counterparts for the load generator's sake.
local prepared = {}

function init(args)
  for i, t in ipairs(targets) do
    local headers = {}
    if t.auth ~= "" then
      headers["Authorization"] = t.auth
    end
    if body ~= "" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      prepared[i] = wrk.format(method, t.path, headers, body)
    else
      prepared[i] = wrk.format(method, t.path, headers)
    end
  end
  responses = 0
  non2xx = 0
  matched = 0
  logged = 0
  if bad_log ~= "" then
    log_file = io.open(bad_log .. "." .. tostring({}):sub(8), "a")
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  return prepared[math.random(#prepared)]
end

function response(status, headers, response_body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if log_file and logged < 500 then
      logged = logged + 1
      log_file:write(string.format("%d\t%s\n", status, (response_body or ""):gsub("\n", " ")))
      log_file:flush()
    end
  end
  if expect == "" or (response_body and string.find(response_body, expect, 1, true)) then
    matched = matched + 1
  end
end

function done(summary, latency, requests)
  local total, bad, good = 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    bad = bad + thread:get("non2xx")
    good = good + thread:get("matched")
  end
  io.write(string.format("bench: responses=%d non2xx=%d matched=%d\n", total, bad, good))
end
