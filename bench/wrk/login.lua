-- POST /auth/token (OAuth2 password form).  args: FORM_BODY (already URL-encoded)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local req
function init(args)
  req = wrk.format("POST", "/auth/token",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, args[1])
end

function request()
  return req
end
