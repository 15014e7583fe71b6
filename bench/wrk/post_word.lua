-- POST /words with a word no request has sent before.  args: TOKEN PREFIX
-- PREFIX must differ between runs (bench/run.py passes the server, round and a time stamp).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local headers, prefix, n
local definitions = {
  "A small boat kept near the harbour for short trips along the coast",
  "To speak quietly and slowly so that only the person next to you can hear the words",
  "The feeling of being at home in a place one has never visited before, often in a city",
}
function init(args)
  headers = json_headers(args[1])
  prefix = args[2] .. "-" .. tid
  n = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"word":"%s-%d","definition":"%s","language":"en","difficulty":%d,"tags":["bench","b%d"]}',
    prefix, n, definitions[n % 3 + 1], n % 5 + 1, n % 2 + 1)
  return wrk.format("POST", "/words", headers, body)
end
