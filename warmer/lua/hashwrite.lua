-- hashwrite: a hash written whole or confirmed, never created by a confirmation (see hashWriteCmd).
local function hashwrite(a, b)
	local key, expireat = ARGV[a], ARGV[a + 1]
	local nset, ndel, whole = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4]
	local s = a + 5
	local d = s + nset
	local e = d + ndel
	local kind = redis.call('TYPE', key)['ok']
	local r = 1
	if kind == 'hash' then
		if nset > 0 then redis.call('HSET', key, unpack(ARGV, s, d - 1)) end
		if ndel > 0 then redis.call('HDEL', key, unpack(ARGV, d, e - 1)) end
	elseif whole == '' then
		r = 0
	else
		-- the rest of the hash, packed: each field and value as its
		-- length in bytes, a colon and its bytes (packField)
		local fields, i = {}, 1
		while i <= #whole do
			local colon = string.find(whole, ':', i, true)
			local n = tonumber(string.sub(whole, i, colon - 1))
			fields[#fields + 1] = string.sub(whole, colon + 1, colon + n)
			i = colon + n + 1
		end
		if kind ~= 'none' then redis.call('DEL', key) end
		redis.call('HSET', key, unpack(fields))
		if nset > 0 then redis.call('HSET', key, unpack(ARGV, s, d - 1)) end
		r = 2
	end
	if r ~= 0 and expireat ~= '' then redis.call('EXPIREAT', key, expireat) end
	return r
end
-- hashnew: a new entity's hash, written whole in one call (see hashNewCmd):
-- whatever an earlier epoch left under its key goes (unless clear is
-- false: hashFreshCmd, a key that holds nothing), then its fields, then
-- its expiry. ARGV[a] is EXPIREAT ('' for none), ARGV[a + 1] the word
-- hset, ARGV[a + 2] the key, the rest up to ARGV[b] field and value pairs.
local function hashnew(a, b, clear)
	local expireat, key = ARGV[a], ARGV[a + 2]
	if clear then redis.call('DEL', key) end
	redis.call('HSET', key, unpack(ARGV, a + 3, b))
	if expireat ~= '' then redis.call('EXPIREAT', key, expireat) end
end
