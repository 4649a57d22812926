#!/usr/bin/env bash
# with-redis.sh runs a command with a Redis answering at $REDIS_URL.
#
# The tests talk to a real redis-server. When one already answers at
# REDIS_URL (default redis://127.0.0.1:6379/0) the command runs against it;
# the tests use a unique key prefix there and delete only their own keys.
# When nothing answers, this starts a throwaway redis-server on a free
# loopback port in a temporary directory, points REDIS_URL at it, and stops
# it afterwards.
set -euo pipefail

url=${REDIS_URL:-redis://127.0.0.1:6379/0}

# hostport prints host and port of a redis:// URL, defaulting as Redis does.
hostport() {
	local rest=${1#*://}
	rest=${rest#*@}   # drop user:password@
	rest=${rest%%/*}  # drop /db
	local host=${rest%%:*} port=6379
	[[ $rest == *:* ]] && port=${rest##*:}
	echo "${host:-127.0.0.1} $port"
}

# answers reports whether a Redis at host port replies to PING.
answers() {
	local reply
	{ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=
	exec 3<&- 3>&-
	# +PONG, or -NOAUTH from a Redis that wants a password (REDIS_URL carries it).
	[[ $reply == +PONG* || $reply == -NOAUTH* ]]
}

read -r host port < <(hostport "$url")
if answers "$host" "$port"; then
	export REDIS_URL=$url
	exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "with-redis: nothing answers at $host:$port and redis-server is not installed" >&2
	echo "with-redis: install it (Debian: apt-get install redis-server) or set REDIS_URL" >&2
	exit 1
fi

wanted="$host:$port"
dir=$(mktemp -d)
# A free port: ask the kernel for one through a short-lived listener.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
echo "with-redis: nothing answers at $wanted; starting redis-server on 127.0.0.1:$port in $dir"
redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
	--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
cleanup() {
	[[ -f $dir/redis.pid ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 50); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
answers 127.0.0.1 "$port" || { echo "with-redis: redis-server did not start; its log:" >&2; cat "$dir/redis.log" >&2; exit 1; }

export REDIS_URL=redis://127.0.0.1:$port/0
"$@"
