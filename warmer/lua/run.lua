-- run: each command of ARGV after the fence, as MULTI/EXEC would; the first error is the answer.
local out = {}
local failed
local i = 5
while i <= #ARGV do
	local n = tonumber(ARGV[i])
	local ok, res
	if ARGV[i + 1] == 'vw.hashwrite' then
		ok, res = pcall(hashwrite, i + 2, i + n)
		out[#out + 1] = ok and res or 0
	elseif ARGV[i + 1] == 'vw.hashnew' then
		ok, res = pcall(hashnew, i + 2, i + n, true)
	elseif ARGV[i + 1] == 'vw.hashfresh' then
		ok, res = pcall(hashnew, i + 2, i + n, false)
	else
		res = redis.pcall(unpack(ARGV, i + 1, i + n))
		ok = type(res) ~= 'table' or not res.err
	end
	if not ok and not failed then
		failed = type(res) == 'table' and res.err or tostring(res)
	end
	i = i + n + 1
end
if failed then
	return redis.error_reply(failed)
end
return out
