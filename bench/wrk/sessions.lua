-- wrk script for the session benchmark.
--
-- BENCH_COOKIES names a file of Cookie header values, one per line: each
-- request picks one at random, so concurrent requests sometimes share a
-- session as real users' tabs do. Without it, requests carry no cookie.
-- With BENCH_DRAIN_AFTER=<seconds>, requests after that many seconds go to
-- /plain instead, so that every request to the measured path has been
-- answered when wrk stops, and the 2xx answers whose body is a number (what
-- /incr answers; /plain answers "ok") are counted exactly. At the end one
-- line is printed: RESULT {json}.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  cookies = {}
  local path = os.getenv("BENCH_COOKIES")
  if path ~= nil and path ~= "" then
    for line in io.lines(path) do
      if line ~= "" then
        cookies[#cookies + 1] = line
      end
    end
  end
  drain_after = tonumber(os.getenv("BENCH_DRAIN_AFTER") or "")
  started = os.time()
  counted = 0
  math.randomseed(os.time() * 1009 + id * 7919)
end

function request()
  local path = wrk.path
  if drain_after ~= nil and os.time() - started >= drain_after then
    path = "/plain"
  end
  if #cookies == 0 then
    return wrk.format("GET", path)
  end
  return wrk.format("GET", path, { Cookie = cookies[math.random(#cookies)] })
end

-- Defined only when counting: wrk reads response bodies only if it exists.
if os.getenv("BENCH_DRAIN_AFTER") ~= nil then
  function response(status, headers, body)
    if status >= 200 and status < 300 and string.match(body, "^%d+$") then
      counted = counted + 1
    end
  end
end

function done(summary, latency, requests)
  local answered = 0
  for _, thread in ipairs(threads) do
    answered = answered + thread:get("counted")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "answered_numbers": %d, "duration_us": %d, "status_errors": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, answered, summary.duration, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
