-- OpenID Connect authorization-code flows with an existing browser session, for the code-flow
-- scenario of bench/run.sh. One flow is three requests:
--   1. GET the authorization request with the session cookie; a good answer is a 302 or 303
--      whose Location holds code=...
--   2. POST the token endpoint: grant_type=authorization_code, the code, redirect_uri and the
--      PKCE code_verifier, client_secret_basic; a good answer is a 2xx with "access_token"
--   3. GET userinfo with "Authorization: Bearer <access_token>"; a good answer is a 2xx with
--      "sub", and completes the flow
-- Configured by the environment:
--   BENCH_AUTHORIZE    path and query of the authorization request (client_id, redirect_uri,
--                      scope openid, state, a fixed S256 code_challenge of BENCH_VERIFIER)
--   BENCH_TOKEN        path of the token endpoint
--   BENCH_USERINFO     path of the userinfo endpoint
--   BENCH_AUTH         Authorization header value of the token request (Basic ...)
--   BENCH_REDIRECT_URI the redirect_uri of the authorization request (not encoded)
--   BENCH_VERIFIER     the PKCE code_verifier
--   BENCH_FLOW_TARGETS optional: a file of lines "HOST:PORT<TAB>COOKIE", one per session; with
--                      H distinct HOST:PORTs, wrk thread N talks to the ((N - 1) mod H) + 1th
--                      only, and its authorization requests take that HOST:PORT's sessions in
--                      turn (node keeps a session, its codes and tokens in one worker, which
--                      has a port of its own)
--   BENCH_COOKIE       without BENCH_FLOW_TARGETS: the Cookie header of the one session, for
--                      wrk's URL
--   BENCH_BAD_LOG      as in request.lua
--
-- wrk calls request() and response() for all of a thread's connections without saying which
-- connection, and a connection has one request in flight at a time. So each thread keeps two
-- queues: codes waiting for the token request and access tokens waiting for userinfo. Each
-- request() sends the most advanced step there is work for (userinfo if a token waits, else the
-- token request if a code waits, else a new authorization request), and response() recognises
-- the answer by its content and queues what it carries. A step's answer is thus used by
-- whichever connection of the thread is free next; flows in progress never exceed connections.
-- The queues are first in, first out, so no code waits long enough to expire.
--
-- done() prints one line that run.sh reads:
--   bench: responses=N non2xx=N matched=N flows=N
-- non2xx counts the answers that are neither 2xx nor a 302/303 (the authorization step's), matched
-- those that carry what their step expects (a code in Location, "access_token", "sub"), flows
-- the userinfo answers with "sub".

local authorize_path = os.getenv("BENCH_AUTHORIZE") or ""
local token_path = os.getenv("BENCH_TOKEN") or ""
local userinfo_path = os.getenv("BENCH_USERINFO") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local redirect_uri = os.getenv("BENCH_REDIRECT_URI") or ""
local verifier = os.getenv("BENCH_VERIFIER") or ""
local targets_file = os.getenv("BENCH_FLOW_TARGETS") or ""
local bad_log = os.getenv("BENCH_BAD_LOG") or ""

-- application/x-www-form-urlencoded encoding of one value.
local function form_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- The targets, by HOST:PORT in the order of the file, each with its session cookies.
local targets = {}
if targets_file ~= "" then
  local by_host = {}
  for line in io.lines(targets_file) do
    local hostport, cookie = line:match("^([^\t]+)\t(.*)$")
    if hostport then
      if not by_host[hostport] then
        by_host[hostport] = { hostport = hostport, cookies = {} }
        table.insert(targets, by_host[hostport])
      end
      table.insert(by_host[hostport].cookies, cookie)
    end
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if #targets > 0 then
    local t = targets[(#threads - 1) % #targets + 1]
    local host, port = t.hostport:match("^(.*):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
    thread:set("flow_host", t.hostport)
    thread:set("flow_cookies", table.concat(t.cookies, "\n"))
  end
end

-- The requests, built once per thread apart from the code or token they carry: one
-- authorization request per session, sent in turn.
local authorize_requests, token_head, token_body_head, token_body_tail, userinfo_head
local next_session = 0

function init(args)
  local host = flow_host or wrk.headers["Host"]
  authorize_requests = {}
  for cookie in (flow_cookies or os.getenv("BENCH_COOKIE") or ""):gmatch("[^\n]+") do
    table.insert(authorize_requests, "GET " .. authorize_path .. " HTTP/1.1\r\nHost: " ..
        host .. "\r\nCookie: " .. cookie .. "\r\n\r\n")
  end
  token_head = "POST " .. token_path .. " HTTP/1.1\r\nHost: " .. host ..
      "\r\nAuthorization: " .. auth ..
      "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
  token_body_head = "grant_type=authorization_code&code="
  token_body_tail = "&redirect_uri=" .. form_encode(redirect_uri) ..
      "&code_verifier=" .. form_encode(verifier)
  userinfo_head = "GET " .. userinfo_path .. " HTTP/1.1\r\nHost: " .. host ..
      "\r\nAuthorization: Bearer "

  codes, codes_first, codes_last = {}, 1, 0
  tokens, tokens_first, tokens_last = {}, 1, 0
  responses = 0
  non2xx = 0
  matched = 0
  flows = 0
  logged = 0
  if bad_log ~= "" then
    log_file = io.open(bad_log .. "." .. tostring({}):sub(8), "a")
  end
end

function request()
  if tokens_first <= tokens_last then
    local token = tokens[tokens_first]
    tokens[tokens_first] = nil
    tokens_first = tokens_first + 1
    return userinfo_head .. token .. "\r\n\r\n"
  end
  if codes_first <= codes_last then
    local code = codes[codes_first]
    codes[codes_first] = nil
    codes_first = codes_first + 1
    local body = token_body_head .. code .. token_body_tail
    return token_head .. #body .. "\r\n\r\n" .. body
  end
  next_session = next_session % #authorize_requests + 1
  return authorize_requests[next_session]
end

local function log_bad(status, text)
  if log_file and logged < 500 then
    logged = logged + 1
    log_file:write(string.format("%d\t%s\n", status, (text or ""):gsub("\n", " ")))
    log_file:flush()
  end
end

function response(status, headers, body)
  responses = responses + 1
  if status == 302 or status == 303 then
    local location = headers["Location"] or headers["location"]
    if not location then
      for name, value in pairs(headers) do
        if name:lower() == "location" then
          location = value
        end
      end
    end
    local code = location and location:match("[?&]code=([^&#]+)")
    if code then
      matched = matched + 1
      codes_last = codes_last + 1
      codes[codes_last] = code
    else
      log_bad(status, "Location: " .. (location or "(none)"))
    end
    return
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    log_bad(status, body)
    return
  end
  body = body or ""
  local token = body:match('"access_token"%s*:%s*"([^"]+)"')
  if token then
    matched = matched + 1
    tokens_last = tokens_last + 1
    tokens[tokens_last] = token
  elseif string.find(body, '"sub"', 1, true) then
    matched = matched + 1
    flows = flows + 1
  end
end

function done(summary, latency, requests)
  local total, bad, good, complete = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    bad = bad + thread:get("non2xx")
    good = good + thread:get("matched")
    complete = complete + thread:get("flows")
  end
  io.write(string.format("bench: responses=%d non2xx=%d matched=%d flows=%d\n", total, bad, good,
    complete))
end
