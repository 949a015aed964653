-- wrk script for bench/run.sh's soak: bench/wrk.lua (tokens from the file named after `--`, in
-- turn), plus a count of the answers by status, printed as one SOAK line at the end.

dofile("bench/wrk.lua") -- bench/run.sh runs wrk from the repository's root

local threads = {}
local take_turns = setup

function setup(thread)
  take_turns(thread)
  threads[#threads + 1] = thread
end

ok, unauthorized, forbidden, limited, server_error, other = 0, 0, 0, 0, 0, 0

function response(status)
  if status == 200 then ok = ok + 1
  elseif status == 401 then unauthorized = unauthorized + 1
  elseif status == 403 then forbidden = forbidden + 1
  elseif status == 429 then limited = limited + 1
  elseif status >= 500 then server_error = server_error + 1
  else other = other + 1 end
end

function done(summary, _, _)
  local totals = { ok = 0, unauthorized = 0, forbidden = 0, limited = 0, server_error = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    "SOAK requests=%d s200=%d s401=%d s403=%d s429=%d s5xx=%d other=%d socket=%d\n",
    summary.requests, totals.ok, totals.unauthorized, totals.forbidden, totals.limited,
    totals.server_error, totals.other,
    errors.connect + errors.read + errors.write + errors.timeout))
end
