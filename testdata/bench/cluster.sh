#!/usr/bin/env bash
# cluster.sh measures cross-node fan-out: a redis-server, two nodes of the
# same kind on it (two Go bench servers with the Redis adapter, then two
# Node socket.io 4.8 servers with @socket.io/redis-adapter 8.3), subscribers
# split over the two nodes (sioload fanout -addr2) and one publisher on the
# first, so half of every broadcast crosses Redis. It prints one table:
# deliveries/s, loss, p50/p99 latency and server CPU per delivery (the two
# nodes' CPU summed).
#
# Usage: testdata/bench/cluster.sh   (needs redis-server, node, npm ci done)
# Knobs: SERVERS ["node go"] N [1000] RATE [20] DURATION [10s] PAD [64]
#   REPEAT [1] PORT [3200] REDIS_PORT [6391] OUT [a new /tmp/siocluster.* dir]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

SERVERS=${SERVERS:-"node go"}
N=${N:-1000}
RATE=${RATE:-20}
DURATION=${DURATION:-10s}
PAD=${PAD:-64}
REPEAT=${REPEAT:-1}
PORT=${PORT:-3200}
REDIS_PORT=${REDIS_PORT:-6391}
OUT=${OUT:-$(mktemp -d /tmp/siocluster.XXXXXX)}
mkdir -p "$OUT/bin"
log() { echo "cluster-bench: $*" >&2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v redis-server >/dev/null || { log "redis-server not found"; exit 1; }

(cd "$root" && go build -o "$OUT/bin/sioload" ./cmd/sioload && go build -o "$OUT/bin/siobench-server" ./cmd/siobench-server)

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
pids+=($!)
sleep 0.5
redis_url="redis://127.0.0.1:$REDIS_PORT"

# start_node <kind> <port> <log>: starts one node, waits for "listening",
# and prints its pid.
start_node() {
	local kind=$1 port=$2 logf=$3
	if [ "$kind" = go ]; then
		"$OUT/bin/siobench-server" -addr "127.0.0.1:$port" -redis "$redis_url" >"$logf" 2>&1 &
	else
		REDIS_URL="$redis_url" node "$here/node-server.cjs" "$port" >"$logf" 2>&1 &
	fi
	local pid=$!
	for _ in $(seq 100); do
		grep -q '^listening' "$logf" 2>/dev/null && { echo "$pid"; return 0; }
		sleep 0.1
	done
	log "$kind node on $port did not start: $(cat "$logf")"
	return 1
}

for kind in $SERVERS; do
	for r in $(seq "$REPEAT"); do
		a=$(start_node "$kind" "$PORT" "$OUT/$kind-a.log"); pids+=("$a")
		b=$(start_node "$kind" $((PORT + 1)) "$OUT/$kind-b.log"); pids+=("$b")
		sleep 1
		log "$kind run $r: $N subscribers over 127.0.0.1:$PORT and :$((PORT + 1)), $RATE msg/s for $DURATION"
		"$OUT/bin/sioload" fanout -addr "127.0.0.1:$PORT" -addr2 "127.0.0.1:$((PORT + 1))" \
			-server-pid "$a" -server-pid2 "$b" -label "$kind-cluster" -n "$N" -rate "$RATE" \
			-duration "$DURATION" -pad "$PAD" -json >>"$OUT/$kind.jsonl"
		kill -TERM "$a" "$b" 2>/dev/null || true
		# The nodes were started in command substitutions, so they are not
		# this shell's children: wait until they are gone (ports free).
		for _ in $(seq 100); do
			kill -0 "$a" 2>/dev/null || kill -0 "$b" 2>/dev/null || break
			sleep 0.1
		done
	done
done

if [ -f "$OUT/node.jsonl" ] && [ -f "$OUT/go.jsonl" ]; then
	"$OUT/bin/sioload" compare -names node,go "$OUT/node.jsonl" "$OUT/go.jsonl"
else
	for f in "$OUT"/*.jsonl; do cat "$f"; done
fi
log "results in $OUT"
