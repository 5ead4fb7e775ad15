-- wrk script for the POST /api/v1/sessions benchmark (scripts/bench_sessions.py
-- runs it; BENCHMARKS.md "POST /sessions (issue 15)"). Every request
-- asks for a distinct voice session between one of the client hosts and one
-- of the server hosts (BENCH_CLIENTS, BENCH_SERVERS: comma-separated IPv4
-- addresses), client and server ports counted up, so none is a retry of
-- another: external_id "<BENCH_RUN>-<n>". The caller's phone cycles through
-- the sample CRM's customers, so every request is scored. Prints one JSON
-- line at the end: latency percentiles (microseconds, as wrk measures them:
-- request written to answer read) and the answers by status.

local function split(s)
  local out = {}
  for x in string.gmatch(s or "", "[^,]+") do
    out[#out + 1] = x
  end
  return out
end

local clients = split(os.getenv("BENCH_CLIENTS"))
local servers = split(os.getenv("BENCH_SERVERS"))
local run = os.getenv("BENCH_RUN") or "bench"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local token = os.getenv("TIERFLOW_API_TOKEN")
local phones = { "+14155550101", "+14155550102", "+14155550103", "+14155550104" }

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

counter = 0
created = 0
other = 0
statuses = ""

function init(args)
  if #clients == 0 or #servers == 0 then
    error("BENCH_CLIENTS and BENCH_SERVERS must name hosts")
  end
  wrk.headers["Content-Type"] = "application/json"
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  local n = counter * nthreads + tid
  counter = counter + 1
  local pairs_ = #clients * #servers
  local pair = n % pairs_
  local k = math.floor(n / pairs_)
  local client = clients[math.floor(pair / #servers) + 1]
  local server = servers[pair % #servers + 1]
  -- Even ports (RTP; RTCP is the next one), 20000 pairs of ports per host pair.
  local cport = 10000 + 2 * (k % 20000)
  local sport = 50000 + 2 * (math.floor(k / 20000) % 7000)
  local body = string.format(
    '{"external_id":"%s-%d","proto":"udp","kind":"voice",' ..
    '"client":{"ip":"%s","port":%d},"server":{"ip":"%s","port":%d},' ..
    '"client_data":{"phone":"%s"}}',
    run, n, client, cport, server, sport, phones[n % #phones + 1])
  return wrk.format("POST", "/api/v1/sessions", nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
    if #statuses < 200 then
      statuses = statuses .. status .. " " .. string.sub(body or "", 1, 80) .. "; "
    end
  end
end

function done(summary, latency, requests)
  local c, o, s = 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
    s = s .. t:get("statuses")
  end
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"requests_per_sec":%.1f,"created_201":%d,' ..
    '"other_answers":%d,"socket_errors":%d,"latency_us_p50":%d,"latency_us_p90":%d,' ..
    '"latency_us_p99":%d,"latency_us_max":%d,"latency_us_mean":%.1f,"first_other":"%s"}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    c, o, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean,
    -- Answers' bodies go into a JSON string: no quotes, backslashes or
    -- control characters.
    (string.gsub(s, '[%c\\"]', "'"))))
end
