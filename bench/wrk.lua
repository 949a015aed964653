-- wrk script for bench/run.sh: sends `GET <url path>` with `Authorization: Bearer <token>`,
-- taking the tokens in turn from the file named after `--`, and prints one machine-readable
-- RESULT line at the end. With BENCH_SECOND_PORT set, every other thread sends to that port on
-- 127.0.0.1 instead (a second replica), so one run loads two servers.
--
-- Requests are formatted once, in init, so wrk does the same small amount of work per request
-- on every line of the table (the /healthz baseline is sent the same headers).

local thread_count = 0

local second_port = os.getenv("BENCH_SECOND_PORT")

function setup(thread)
  -- Threads start at different tokens, so they do not send the same one in lockstep.
  thread:set("start", thread_count * 389)
  if second_port and second_port ~= "" and thread_count % 2 == 1 then
    thread.addr = wrk.lookup("127.0.0.1", second_port)[1]
  end
  thread_count = thread_count + 1
end

local requests = {}
local index = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s bench/wrk.lua <url> -- <token file>")
  end
  for token in io.lines(path) do
    if #token > 0 then
      requests[#requests + 1] = wrk.format("GET", nil, { Authorization = "Bearer " .. token })
    end
  end
  if #requests == 0 then
    error(path .. " holds no tokens")
  end
  index = (start or 0) % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
