-- GET /words/{id}, rotating over the ids in a file.  args: TOKEN IDS_FILE
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local ids, headers, i
function init(args)
  ids = read_ids(args[2])
  headers = bearer(args[1])
  i = (tid * 7919) % #ids
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/words/" .. ids[i], headers)
end
