-- delete a lease key of another type, which nobody could hold
local kind = redis.call("TYPE", KEYS[1])["ok"]
if kind ~= "string" and kind ~= "none" then
	redis.call("DEL", KEYS[1])
	return 1
end
return 0
