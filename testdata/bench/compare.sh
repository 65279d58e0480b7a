#!/usr/bin/env bash
# compare.sh runs the benchmark scenarios against the Node reference server
# (socket.io 4.8 from testdata/node_modules) and the Go bench server in the
# same run, and prints one table: scenario | metric | node | go | ratio. The
# server is pinned to one core and the load tool to the other (taskset); every
# scenario run gets a fresh server so that memory numbers do not carry over,
# and the two servers take turns scenario by scenario.
#
# Usage: testdata/bench/compare.sh            (from anywhere in the repo)
# Knobs (environment, defaults in brackets):
#   SERVERS ["node go"]  SCENARIOS ["connect fanout sweep echo overload"]
#   SERVER_CPU [0] LOAD_CPU [1]  PORT [3100]  RUN_TIMEOUT [240] seconds per run
#   REPEAT [1]: runs per scenario and server; the table shows medians
#   CONNECT_N [5000] CONNECT_HOLD [5s]
#   FANOUT_N [1000] FANOUT_RATE [20] FANOUT_DURATION [10s] PAD [64]
#   SWEEP_N [1000] SWEEP_START [5] SWEEP_FACTOR [2] SWEEP_STEPS [8] SWEEP_STEP [5s]
#   ECHO_CLIENTS [50] ECHO_WINDOW [10] ECHO_DURATION [10s]
#   OVERLOAD_N [5000] OVERLOAD_RATE [100] OVERLOAD_DURATION [20s]
#   OVERLOAD_DRAIN [5s] OVERLOAD_SAMPLE [10]
#   OUT [a new /tmp/siobench.* dir]: results (node.jsonl, go.jsonl), logs
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

SERVERS=${SERVERS:-"node go"}
SCENARIOS=${SCENARIOS:-"connect fanout sweep echo overload"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-3100}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
REPEAT=${REPEAT:-1}
CONNECT_N=${CONNECT_N:-5000}
CONNECT_HOLD=${CONNECT_HOLD:-5s}
FANOUT_N=${FANOUT_N:-1000}
FANOUT_RATE=${FANOUT_RATE:-20}
FANOUT_DURATION=${FANOUT_DURATION:-10s}
PAD=${PAD:-64}
SWEEP_N=${SWEEP_N:-1000}
SWEEP_START=${SWEEP_START:-5}
SWEEP_FACTOR=${SWEEP_FACTOR:-2}
SWEEP_STEPS=${SWEEP_STEPS:-8}
SWEEP_STEP=${SWEEP_STEP:-5s}
ECHO_CLIENTS=${ECHO_CLIENTS:-50}
ECHO_WINDOW=${ECHO_WINDOW:-10}
ECHO_DURATION=${ECHO_DURATION:-10s}
OVERLOAD_N=${OVERLOAD_N:-5000}
OVERLOAD_RATE=${OVERLOAD_RATE:-100}
OVERLOAD_DURATION=${OVERLOAD_DURATION:-20s}
OVERLOAD_DRAIN=${OVERLOAD_DRAIN:-5s}
OVERLOAD_SAMPLE=${OVERLOAD_SAMPLE:-10}
OUT=${OUT:-$(mktemp -d /tmp/siobench.XXXXXX)}
mkdir -p "$OUT/bin"

log() { echo "compare: $*" >&2; }

# Thousands of sockets per process: raise the descriptor limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Pin only when there are two cores to pin to.
pin_server=() pin_load=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	pin_server=(taskset -c "$SERVER_CPU")
	pin_load=(taskset -c "$LOAD_CPU")
else
	log "taskset or a second core missing: running unpinned, ratios are less meaningful"
fi

server_pid=""
stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# start_server NAME LOGFILE: starts the server on $PORT and waits (bounded)
# for its "listening" line.
start_server() {
	local name=$1 logf=$2
	case $name in
	node) "${pin_server[@]}" node "$here/node-server.cjs" "$PORT" >"$logf" 2>&1 & ;;
	go) "${pin_server[@]}" "$OUT/bin/siobench-server" -addr "127.0.0.1:$PORT" >"$logf" 2>&1 & ;;
	*) log "unknown server $name"; return 1 ;;
	esac
	server_pid=$!
	for _ in $(seq 100); do
		if grep -q '^listening' "$logf" 2>/dev/null; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	log "$name server did not start; see $logf"
	stop_server
	return 1
}

# scenario_args SCENARIO: the sioload command line of a scenario.
scenario_args() {
	case $1 in
	connect) echo connect -n "$CONNECT_N" -hold "$CONNECT_HOLD" ;;
	fanout) echo fanout -n "$FANOUT_N" -rate "$FANOUT_RATE" -duration "$FANOUT_DURATION" -pad "$PAD" ;;
	sweep) echo fanout -sweep -n "$SWEEP_N" -rate "$SWEEP_START" -sweep-factor "$SWEEP_FACTOR" \
		-sweep-steps "$SWEEP_STEPS" -duration "$SWEEP_STEP" -pad "$PAD" ;;
	echo) echo echo -clients "$ECHO_CLIENTS" -window "$ECHO_WINDOW" -duration "$ECHO_DURATION" -pad "$PAD" ;;
	overload) echo overload -n "$OVERLOAD_N" -rate "$OVERLOAD_RATE" -duration "$OVERLOAD_DURATION" \
		-drain "$OVERLOAD_DRAIN" -sample "$OVERLOAD_SAMPLE" -pad "$PAD" ;;
	*) return 1 ;;
	esac
}

cd "$root"
log "building into $OUT/bin"
go build -o "$OUT/bin/sioload" ./cmd/sioload
have_go=1
if ! go build -o "$OUT/bin/siobench-server" ./cmd/siobench-server 2>"$OUT/go-build.log"; then
	log "cmd/siobench-server does not build yet (see $OUT/go-build.log): go column skipped"
	have_go=0
fi
if [ ! -d testdata/node_modules/socket.io ]; then
	log "installing testdata/node_modules (npm ci)"
	(cd testdata && npm ci --no-audit --no-fund >/dev/null)
fi

servers=()
for server in $SERVERS; do
	if [ "$server" = go ] && [ "$have_go" = 0 ]; then
		continue
	fi
	servers+=("$server")
	: >"$OUT/$server.jsonl"
done

# Scenario by scenario, the servers take turns, so that a burst of other work
# on the machine does not land on one server only.
for sc in $SCENARIOS; do
	if ! line=$(scenario_args "$sc"); then
		log "unknown scenario $sc"
		continue
	fi
	read -r -a args <<<"$line"
	for run in $(seq "$REPEAT"); do
		for server in "${servers[@]}"; do
			log "$server: $sc (run $run of $REPEAT)"
			start_server "$server" "$OUT/$server-$sc-$run.server.log" || continue
			# sioload stops itself shortly before the outer timeout would kill it.
			if ! timeout -k 5 "$RUN_TIMEOUT" "${pin_load[@]}" "$OUT/bin/sioload" "${args[@]}" \
				-addr "127.0.0.1:$PORT" -server-pid "$server_pid" -label "$server" -json \
				-timeout "$((RUN_TIMEOUT - 10))s" >>"$OUT/$server.jsonl"; then
				log "$server: $sc failed or timed out"
			fi
			stop_server
		done
	done
done

echo
"$OUT/bin/sioload" compare -names node,go "$OUT/node.jsonl" "$OUT/go.jsonl"
echo
echo "ratio = go/node; * = metric with a target; results and logs in $OUT"
