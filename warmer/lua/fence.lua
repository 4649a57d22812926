-- fence: the write goes on only while the lease is the writer's, P:meta is as it expects and Redis is the one its epoch is written to (see fenceScript).
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
-- ARGV[4]: the replication id of the Redis the epoch is written to ('': no
-- check); a replica promoted by a failover has another (see home.go).
if ARGV[4] ~= '' and not string.find(redis.call('INFO', 'replication'), 'master_replid:' .. ARGV[4] .. '\r', 1, true) then
	return redis.error_reply('VWFENCE moved')
end
