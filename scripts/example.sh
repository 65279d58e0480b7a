#!/usr/bin/env bash
# example.sh runs Caddyfile.example for `make example`: it checks that the
# site port and Caddy's admin port are free before anything starts, mints a
# development token, prints the page URL and runs Caddy in the foreground.
#
#   PORT   site port (default 8080)
#   ADMIN  Caddy's admin address, passed as CADDY_ADMIN (default localhost:2019)
#   GO     the go command (default go)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8080}"
ADMIN="${ADMIN:-localhost:2019}"
GO="${GO:-go}"
: "${JWT_SECRET:?JWT_SECRET must be set (make example sets a development value)}"

[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "example: PORT must be a port number, got '$PORT'" >&2; exit 2; }
[[ "$ADMIN" =~ ^[^:]+:[0-9]+$ ]] || { echo "example: ADMIN must be host:port, got '$ADMIN'" >&2; exit 2; }

# in_use reports whether something accepts TCP connections on host:port.
in_use() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

busy=0
if in_use 127.0.0.1 "$PORT"; then
  echo "example: port $PORT is already in use (another Caddy or web server?)." >&2
  busy=1
fi
if in_use "${ADMIN%:*}" "${ADMIN##*:}"; then
  echo "example: Caddy's admin address $ADMIN is already in use (another Caddy running? 'caddy stop' stops it)." >&2
  busy=1
fi
if [ "$busy" = 1 ]; then
  echo "example: stop what holds them, or choose free ports, e.g.: make example PORT=$((PORT + 1)) ADMIN=localhost:2999" >&2
  exit 1
fi

config=Caddyfile.example
if [ "$PORT" != 8080 ]; then
  # The same file with only its site address changed.
  config=$(mktemp "${TMPDIR:-/tmp}/Caddyfile.example.XXXXXX")
  trap 'rm -f "$config"' EXIT
  sed "s/^:8080 {\$/:$PORT {/" Caddyfile.example >"$config"
  grep -q "^:$PORT {\$" "$config" || { echo "example: Caddyfile.example has no ':8080 {' line to change" >&2; exit 2; }
fi

"$GO" build -o bin/caddy ./cmd/caddy
token=$(bin/caddy socketio-token --sub demo-user --ttl 24h)
echo
echo "Open http://localhost:$PORT/?token=$token"
echo "(a second user: http://localhost:$PORT/?token=$(bin/caddy socketio-token --sub second-user --ttl 24h))"
echo
if [ "$config" = Caddyfile.example ]; then
  CADDY_ADMIN="$ADMIN" exec bin/caddy run --config "$config" --adapter caddyfile
fi
CADDY_ADMIN="$ADMIN" bin/caddy run --config "$config" --adapter caddyfile
