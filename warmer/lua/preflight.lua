-- preflight: each command the warmer's scripts run, on scratch keys; returns those denied (see Preflight).
local denied = {}
local function try(name, ...)
	local r = redis.pcall(name, ...)
	-- Redis 7.0 says "can't run this command"; 7.2 and later "no
	-- permissions to run"; a denied key or channel is not a command's.
	if type(r) == 'table' and r.err and (string.find(r.err, "can't run this command", 1, true) or string.find(r.err, 'no permissions to run', 1, true)) then
		table.insert(denied, name)
	end
end
try('hset', KEYS[1], 'f', 'v')
try('hdel', KEYS[1], 'f')
try('hmget', KEYS[1], 'f')
try('type', KEYS[1])
try('expireat', KEYS[1], 4102444800)
try('zadd', KEYS[2], 1, 'm')
try('zrem', KEYS[2], 'm')
try('zremrangebyscore', KEYS[2], 0, 0)
try('sadd', KEYS[3], 'm')
try('srem', KEYS[3], 'm')
try('xadd', KEYS[4], 'MAXLEN', '~', 1, '*', 'f', 'v')
try('set', KEYS[5], 'v')
try('get', KEYS[5])
try('pexpire', KEYS[5], 1000)
try('publish', ARGV[1], 'preflight')
if ARGV[2] == '1' then try('spublish', ARGV[1], 'preflight') end
try('del', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return denied
