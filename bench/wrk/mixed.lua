-- The memory phase: list, one word, the study queue and a new word in turn, until each thread
-- has had LIMIT responses.  args: READ_TOKEN WRITE_TOKEN IDS_FILE PREFIX LIMIT
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local ids, read_headers, write_headers, prefix, n
local limit, seen = 0, 0
function init(args)
  ids = read_ids(args[3])
  read_headers = bearer(args[1])
  write_headers = json_headers(args[2])
  prefix = args[4] .. "-" .. tid
  n = (tid * 7919) % #ids
  limit = tonumber(args[5])
end

function request()
  n = n + 1
  local kind = n % 4
  if kind == 0 then
    return wrk.format("GET", "/words?limit=50", read_headers)
  elseif kind == 1 then
    return wrk.format("GET", "/words/" .. ids[n % #ids + 1], read_headers)
  elseif kind == 2 then
    return wrk.format("GET", "/study", read_headers)
  end
  local body = string.format(
    '{"word":"%s-%d","definition":"A word added while memory is measured","tags":["mem"]}',
    prefix, n)
  return wrk.format("POST", "/words", write_headers, body)
end

-- Defined at the top level, where wrk looks for it before the threads start.
-- Past the limit, the thread says so (bench/run.py ends wrk once every thread has) and stops.
function response()
  seen = seen + 1
  if limit > 0 and seen == limit then
    io.write("THREAD_DONE\n")
    io.flush()
    wrk.thread:stop()
  end
end
