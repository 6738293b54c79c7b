-- One request, repeated, for bench/run.sh. Configured by the environment:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    form body; sent with Content-Type application/x-www-form-urlencoded
--   BENCH_AUTH    value of the Authorization header
--   BENCH_EXPECT  a string every good response body contains (plain match, not a pattern)
--   BENCH_STATUS  the status every good response has (default: any 2xx)
--   BENCH_COOKIE  value of the Cookie header
--   BENCH_BAD_LOG when set, a file prefix: each thread appends every non-2xx status and body
--                 (the first 500 of them) to PREFIX.N, for the soak runs
-- done() prints one line that run.sh reads:
--   bench: responses=N non2xx=N matched=N
-- where matched counts the responses whose body contains BENCH_EXPECT.

local body = os.getenv("BENCH_BODY") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local expect = os.getenv("BENCH_EXPECT") or ""
local want_status = tonumber(os.getenv("BENCH_STATUS") or "")
local cookie = os.getenv("BENCH_COOKIE") or ""

wrk.method = os.getenv("BENCH_METHOD") or "GET"
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local bad_log = os.getenv("BENCH_BAD_LOG") or ""
local thread_no = 0

function init(args)
  responses = 0
  non2xx = 0
  matched = 0
  logged = 0
  if bad_log ~= "" then
    log_file = io.open(bad_log .. "." .. tostring({}):sub(8), "a")
  end
end

function response(status, headers, response_body)
  responses = responses + 1
  local good
  if want_status then
    good = status == want_status
  else
    good = status >= 200 and status <= 299
  end
  if not good then
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
