#!/usr/bin/env bash
# compare.sh runs the benchmark scenarios against the Node reference server
# (socket.io 4.8 from testdata/node_modules), the Go engine alone
# (cmd/siobench-server), the module inside a real Caddy built from the
# checkout (caddy.Caddyfile) and Caddy's reverse_proxy in front of Node
# (statusquo.Caddyfile; both processes measured together), in the same run,
# and prints one table per transport: scenario | metric | a column per server
# | each server's ratio to Node. The -tls servers are the same over TLS (a
# throw-away self-signed certificate) and are compared with node-tls. The
# server is pinned to one core and the load tool to the other (taskset); every
# scenario run gets a fresh server so that memory numbers do not carry over,
# and the servers take turns scenario by scenario.
#
# Usage: testdata/bench/compare.sh            (from anywhere in the repo)
# Knobs (environment, defaults in brackets):
#   SERVERS ["node go caddy statusquo node-tls caddy-tls statusquo-tls"]
#     (also: go-nopark, the engine with a goroutine blocked in every read)
#   SCENARIOS ["connect fanout fanout5k echo overload"] (also: sweep)
#   SERVER_CPU [0] LOAD_CPU [1]  PORT [3100]  RUN_TIMEOUT [240] seconds per run
#   REPEAT [1]: runs per scenario and server; the table shows medians
#   CONNECT_N [10000] CONNECT_HOLD [5s]
#   FANOUT_N [1000] FANOUT_RATE [100] FANOUT_DURATION [10s] PAD [64]
#   FANOUT5K_N [5000] FANOUT5K_RATE [10]
#   SWEEP_N [1000] SWEEP_START [5] SWEEP_FACTOR [2] SWEEP_STEPS [8] SWEEP_STEP [5s]
#   ECHO_CLIENTS [100] ECHO_WINDOW [1] ECHO_DURATION [10s]
#   OVERLOAD_N [5000] OVERLOAD_RATE [100] OVERLOAD_DURATION [20s]
#   OVERLOAD_DRAIN [5s] OVERLOAD_SAMPLE [10]
#   OUT [a new /tmp/siobench.* dir]: results (<server>.jsonl), logs
#   CADDY_ENV [""]: extra environment of the Caddy servers (e.g. GOGC=50)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

SERVERS=${SERVERS:-"node go caddy statusquo node-tls caddy-tls statusquo-tls"}
SCENARIOS=${SCENARIOS:-"connect fanout fanout5k echo overload"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-3100}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
REPEAT=${REPEAT:-1}
CONNECT_N=${CONNECT_N:-10000}
CONNECT_HOLD=${CONNECT_HOLD:-5s}
FANOUT_N=${FANOUT_N:-1000}
FANOUT_RATE=${FANOUT_RATE:-100}
FANOUT_DURATION=${FANOUT_DURATION:-10s}
FANOUT5K_N=${FANOUT5K_N:-5000}
FANOUT5K_RATE=${FANOUT5K_RATE:-10}
PAD=${PAD:-64}
SWEEP_N=${SWEEP_N:-1000}
SWEEP_START=${SWEEP_START:-5}
SWEEP_FACTOR=${SWEEP_FACTOR:-2}
SWEEP_STEPS=${SWEEP_STEPS:-8}
SWEEP_STEP=${SWEEP_STEP:-5s}
ECHO_CLIENTS=${ECHO_CLIENTS:-100}
ECHO_WINDOW=${ECHO_WINDOW:-1}
ECHO_DURATION=${ECHO_DURATION:-10s}
OVERLOAD_N=${OVERLOAD_N:-5000}
OVERLOAD_RATE=${OVERLOAD_RATE:-100}
OVERLOAD_DURATION=${OVERLOAD_DURATION:-20s}
OVERLOAD_DRAIN=${OVERLOAD_DRAIN:-5s}
OVERLOAD_SAMPLE=${OVERLOAD_SAMPLE:-10}
OUT=${OUT:-$(mktemp -d /tmp/siobench.XXXXXX)}
CADDY_ENV=${CADDY_ENV:-}
mkdir -p "$OUT/bin" "$OUT/caddy-home"

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

server_pids=()
stop_server() {
	local pid
	for pid in "${server_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${server_pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	server_pids=()
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# wait_ready LOGFILE PORT: waits (bounded) until the log has its "listening"
# line or, for Caddy, which prints none at level WARN, the port accepts.
wait_ready() {
	local logf=$1 port=$2
	for _ in $(seq 150); do
		if grep -q '^listening' "$logf" 2>/dev/null; then
			return 0
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		for pid in "${server_pids[@]}"; do
			kill -0 "$pid" 2>/dev/null || return 1
		done
		sleep 0.1
	done
	return 1
}

# caddy_run CADDYFILE SCHEME UPSTREAM LOGFILE: starts the Caddy built from
# the checkout with a bench Caddyfile; its data and config stay in $OUT.
caddy_run() {
	local cf=$1 scheme=$2 upstream=$3 logf=$4
	# shellcheck disable=SC2086 # CADDY_ENV is a list of NAME=value words
	env HOME="$OUT/caddy-home" XDG_DATA_HOME="$OUT/caddy-home" XDG_CONFIG_HOME="$OUT/caddy-home" \
		SIOBENCH_PORT="$PORT" SIOBENCH_UPSTREAM="$upstream" SIOBENCH_SCHEME="$scheme" \
		SIOBENCH_CERT="$OUT/cert.pem" SIOBENCH_KEY="$OUT/key.pem" $CADDY_ENV \
		"${pin_server[@]}" "$OUT/bin/caddy" run --adapter caddyfile --config "$here/$cf" >"$logf" 2>&1 &
	server_pids+=($!)
}

# node_run PORT TLS LOGFILE: starts the Node reference, over TLS when TLS is 1.
node_run() {
	local port=$1 tls=$2 logf=$3
	if [ "$tls" = 1 ]; then
		TLS_CERT="$OUT/cert.pem" TLS_KEY="$OUT/key.pem" "${pin_server[@]}" node "$here/node-server.cjs" "$port" >"$logf" 2>&1 &
	else
		"${pin_server[@]}" node "$here/node-server.cjs" "$port" >"$logf" 2>&1 &
	fi
	server_pids+=($!)
}

# start_server NAME LOGFILE: starts the server on $PORT (statusquo: Caddy on
# $PORT and Node on $PORT+1, both pinned to the server core) and waits,
# bounded, until it accepts.
start_server() {
	local name=$1 logf=$2 upstream=$((PORT + 1))
	case $name in
	node) node_run "$PORT" 0 "$logf" ;;
	node-tls) node_run "$PORT" 1 "$logf" ;;
	go) "${pin_server[@]}" "$OUT/bin/siobench-server" -addr "127.0.0.1:$PORT" >"$logf" 2>&1 &
		server_pids+=($!) ;;
	go-nopark) "${pin_server[@]}" "$OUT/bin/siobench-server" -addr "127.0.0.1:$PORT" -no-park >"$logf" 2>&1 &
		server_pids+=($!) ;;
	caddy) caddy_run caddy.Caddyfile http 0 "$logf" ;;
	caddy-tls) caddy_run caddy.Caddyfile https 0 "$logf" ;;
	statusquo | statusquo-tls)
		node_run "$upstream" 0 "$logf.node"
		if ! wait_ready "$logf.node" "$upstream"; then
			log "$name: node did not start; see $logf.node"
			stop_server
			return 1
		fi
		if [ "$name" = statusquo ]; then
			caddy_run statusquo.Caddyfile http "$upstream" "$logf"
		else
			caddy_run statusquo.Caddyfile https "$upstream" "$logf"
		fi
		;;
	*) log "unknown server $name"; return 1 ;;
	esac
	if wait_ready "$logf" "$PORT"; then
		return 0
	fi
	log "$name server did not start; see $logf"
	stop_server
	return 1
}

# server_args NAME: the sioload flags a server needs. Caddy serves the
# contract from configuration: it relays "publish" and answers a room
# request "join" where the others have "echo".
server_args() {
	case $1 in
	caddy) echo -relay -echo-event join -echo-arg '"e"' ;;
	caddy-tls) echo -tls -relay -echo-event join -echo-arg '"e"' ;;
	*-tls) echo -tls ;;
	esac
}

# scenario_args SCENARIO: the sioload command line of a scenario.
scenario_args() {
	case $1 in
	connect) echo connect -n "$CONNECT_N" -hold "$CONNECT_HOLD" ;;
	fanout) echo fanout -n "$FANOUT_N" -rate "$FANOUT_RATE" -duration "$FANOUT_DURATION" -pad "$PAD" ;;
	fanout5k) echo fanout -as fanout5k -n "$FANOUT5K_N" -rate "$FANOUT5K_RATE" -duration "$FANOUT_DURATION" -pad "$PAD" ;;
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
go build -o "$OUT/bin/siobench-server" ./cmd/siobench-server
go build -o "$OUT/bin/caddy" ./cmd/caddy
if [ ! -d testdata/node_modules/socket.io ]; then
	log "installing testdata/node_modules (npm ci)"
	(cd testdata && npm ci --no-audit --no-fund >/dev/null)
fi
# A throw-away certificate for the TLS servers, for 127.0.0.1 only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null

read -r -a servers <<<"$SERVERS"
for server in "${servers[@]}"; do
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
			read -r -a extra <<<"$(server_args "$server")"
			pids=$(IFS=,; echo "${server_pids[*]}")
			# sioload stops itself shortly before the outer timeout would kill it.
			if ! timeout -k 5 "$RUN_TIMEOUT" "${pin_load[@]}" "$OUT/bin/sioload" "${args[@]}" "${extra[@]}" \
				-addr "127.0.0.1:$PORT" -server-pid "$pids" -label "$server" -json \
				-timeout "$((RUN_TIMEOUT - 10))s" >>"$OUT/$server.jsonl"; then
				log "$server: $sc failed or timed out"
			fi
			stop_server
		done
	done
done

# table BASE SERVER...: the comparison of the servers that ran, ratios to BASE.
table() {
	local names=() files=() s
	for s in "$@"; do
		if [[ " $SERVERS " == *" $s "* ]]; then
			names+=("$s")
			files+=("$OUT/$s.jsonl")
		fi
	done
	[ "${#names[@]}" -ge 1 ] || return 0
	[ "${#names[@]}" -ge 2 ] || { names+=("${names[0]}"); files+=("${files[0]}"); }
	echo
	"$OUT/bin/sioload" compare -names "$(IFS=,; echo "${names[*]}")" "${files[@]}"
}
table node go caddy statusquo go-nopark
table node-tls caddy-tls statusquo-tls
echo
echo "ratios are to the first column (Node); * = metric with a target; tool cpu is the load tool's own core (near 100 %: client-bound)"
echo "results and logs in $OUT"
