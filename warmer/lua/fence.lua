-- fence: the write goes on only while the lease is the writer's and P:meta is as it expects (see fenceScript).
local holder = redis.call('GET', KEYS[1])
if holder == false then
	return redis.error_reply('VWFENCE nolease')
end
if holder ~= ARGV[1] then
	return redis.error_reply('VWFENCE lease')
end
if ARGV[2] ~= '' then
	local m = redis.call('HMGET', KEYS[2], 'epoch', 'seq')
	if m[1] == false then
		return redis.error_reply('VWFENCE nometa')
	end
	if m[1] ~= ARGV[2] then
		return redis.error_reply('VWFENCE epoch')
	end
	if ARGV[3] ~= '-1' and m[2] ~= ARGV[3] then
		return redis.error_reply('VWFENCE seq')
	end
end
