-- POST /words/{id}/reviews, rotating over the ids in a file (mostly "good").
-- args: TOKEN IDS_FILE
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local ids, headers, i
local ratings = { "good", "good", "good", "hard", "good", "easy", "good", "again" }
function init(args)
  ids = read_ids(args[2])
  headers = json_headers(args[1])
  i = (tid * 7919) % #ids
end

function request()
  i = i % #ids + 1
  local body = string.format('{"rating":"%s","duration_ms":%d}', ratings[i % 8 + 1], 1000 + i % 9000)
  return wrk.format("POST", "/words/" .. ids[i] .. "/reviews", headers, body)
end
