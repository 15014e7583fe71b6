-- Shared by the scenario scripts (loaded with dofile): thread numbering, headers, and one
-- machine-readable summary line that bench/run.py reads.

local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

-- One integer per line (word ids).
function read_ids(path)
  local ids = {}
  for line in io.lines(path) do
    ids[#ids + 1] = tonumber(line)
  end
  assert(#ids > 0, "no ids in " .. path)
  return ids
end

function bearer(token)
  return { ["Authorization"] = "Bearer " .. token }
end

function json_headers(token)
  return { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
