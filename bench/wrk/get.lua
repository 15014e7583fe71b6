-- GET one fixed path with a bearer token.  args: TOKEN PATH
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local req
function init(args)
  req = wrk.format("GET", args[2], bearer(args[1]))
end

function request()
  return req
end
