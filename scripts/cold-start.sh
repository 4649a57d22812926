#!/usr/bin/env bash
# scripts/cold-start.sh: how long a cold start takes, from outside.
#
#   scripts/cold-start.sh [-b BINARY] [-c CINEMAS] [-- WARMER FLAGS...]
#
# Starts a fresh redis-server (no persistence) and cmd/vistasim with
# CINEMAS cinemas of 14 screens and 5 shows a day for 14 days (113: about
# 100k sessions listed; 565: about 500k), runs the warmer BINARY (default:
# bin/vista-warmer, built by make build) with default flags and any given
# after --, and prints the seconds from its start to /readyz 200, the
# sessions in Redis, and Redis's used_cpu_user then. Everything it starts
# is stopped on the way out; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=bin/vista-warmer
cinemas=113
while getopts "b:c:" o; do
	case $o in
	b) bin=$OPTARG ;;
	c) cinemas=$OPTARG ;;
	*) sed -n '2,13p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ ${1:-} == -- ]] && shift
[[ -x $bin ]] || { echo "cold-start: $bin is not built (make build)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "cold-start: redis-server is not installed" >&2; exit 2; }

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
sport=$(free_port)
go build -o "$dir/vistasim" ./cmd/vistasim # built, not go run: a signal reaches the process itself
"$dir/vistasim" -listen "127.0.0.1:$sport" -cinemas "$cinemas" -screens 14 -shows 5 -days 14 >"$dir/sim.log" 2>&1 &
pids+=($!)
hport=$(free_port)
for _ in $(seq 100); do
	redis-cli -p "$rport" ping >/dev/null 2>&1 && curl -s -o /dev/null "127.0.0.1:$sport/WSVistaWebClient/OData.svc/Cinemas" && break
	sleep 0.1
done

start=$(date +%s.%N)
"$bin" --vista-url "http://127.0.0.1:$sport/WSVistaWebClient/" --redis-url "redis://127.0.0.1:$rport" \
	--listen "127.0.0.1:$hport" --instance-id cold-start "$@" >"$dir/warmer.log" 2>&1 &
pids+=($!)
until [[ $(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$hport/readyz") == 200 ]]; do
	kill -0 "${pids[2]}" 2>/dev/null || { echo "cold-start: the warmer stopped:" >&2; tail -5 "$dir/warmer.log" >&2; exit 1; }
	sleep 0.1
done
end=$(date +%s.%N)
sessions=$(redis-cli -p "$rport" zcard vista:sessions)
cpu=$(redis-cli -p "$rport" info cpu | tr -d '\r' | sed -n 's/^used_cpu_user://p')
echo "ready_s=$(echo "$end - $start" | bc) sessions=$sessions redis_cpu_user_s=$cpu"
if [[ -n ${COLD_START_STATS:-} ]]; then
	redis-cli -p "$rport" info commandstats | tr -d '\r' | grep -v '^#' | sort -t= -k3 -n -r | head -15
fi
