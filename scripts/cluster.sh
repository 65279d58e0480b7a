#!/usr/bin/env bash
# cluster.sh runs the cluster example for `make cluster`: redis-server on
# 127.0.0.1:$REDIS_PORT (no persistence), two Caddy nodes
# (examples/cluster/Caddyfile on 127.0.0.1:8081 and :8082) and the load
# balancer (examples/cluster/lb.Caddyfile on :8080). It builds Caddy once,
# prints a page URL with a development token, and stops everything on
# Ctrl-C.
#
#   REDIS_PORT  default 6390
#   GO          the go command (default go)
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT="${REDIS_PORT:-6390}"
GO="${GO:-go}"
: "${JWT_SECRET:?JWT_SECRET must be set (make cluster sets a development value)}"
command -v redis-server >/dev/null || { echo "cluster: redis-server not found (apt-get install redis-server)" >&2; exit 1; }

bin="$(mktemp -d)/caddy"
"$GO" build -o "$bin" ./cmd/caddy

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
export REDIS_ADDR="127.0.0.1:$REDIS_PORT"

NODE_PORT=8081 NODE_ADMIN=localhost:2021 "$bin" run --config examples/cluster/Caddyfile --adapter caddyfile &
pids+=($!)
NODE_PORT=8082 NODE_ADMIN=localhost:2022 "$bin" run --config examples/cluster/Caddyfile --adapter caddyfile &
pids+=($!)
"$bin" run --config examples/cluster/lb.Caddyfile --adapter caddyfile &
pids+=($!)

sleep 2
token="$("$bin" socketio-token --sub demo-user --ttl 24h)"
echo
echo "cluster: open http://localhost:8080/?token=$token in two tabs (Ctrl-C stops everything)"
wait
