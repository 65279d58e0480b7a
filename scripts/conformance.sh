#!/usr/bin/env bash
# conformance.sh runs the official Engine.IO v4 and Socket.IO v5 protocol
# test suites against this repository's engine (cmd/conformance)
# and prints "conformance: N of M passed".
#
#   make conformance SUITES=<dir>
#   scripts/conformance.sh <dir>
#
# <dir> holds the two suites, fetched by you (they are not part of this
# repository and must not be committed):
#   <dir>/engine.io-protocol   a clone of github.com/socketio/engine.io-protocol
#   <dir>/socket.io-protocol   a clone of github.com/socketio/socket.io-protocol
# (their test-suite/ folders are what is used; a folder that is itself a
# test-suite/ works too).
#
# Each suite is copied to a temporary directory, where its own lock file is
# installed (npm ci) and its one hard-coded URL is pointed at the server;
# your clones are not modified. The server is built from this checkout and
# started on a free loopback port, and stopped at the end.
#
# Variables: RETRIES=<n> lets mocha retry a failed test n times (default 0;
# tests that pass only on a retry are listed as flaky); SUITE_TIMEOUT bounds
# each suite run in seconds (default 300); RAW=1 runs without
# scripts/conformance-ws.cjs (see that file for why it exists).
#
# Exit status: 0 when every test passed, 1 when one failed, 2 on a setup error.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

die() { echo "conformance: $*" >&2; exit 2; }

suites=${1:-${SUITES:-}}
[ -n "$suites" ] || die "usage: make conformance SUITES=<dir with engine.io-protocol and socket.io-protocol>"
[ -d "$suites" ] || die "$suites is not a directory"
RETRIES=${RETRIES:-0}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-300}
RAW=${RAW:-0}
[[ "$RETRIES" =~ ^[0-9]+$ ]] || die "RETRIES must be a number"
[[ "$SUITE_TIMEOUT" =~ ^[0-9]+$ ]] || die "SUITE_TIMEOUT must be a number of seconds"
command -v node >/dev/null || die "node is not on PATH"
command -v npm >/dev/null || die "npm is not on PATH"

# suite_dir finds the test-suite folder of one repository.
suite_dir() {
  local c
  for c in "$suites/$1/test-suite" "$suites/$1"; do
    if [ -f "$c/test-suite.js" ] && [ -f "$c/package-lock.json" ]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
eio=$(suite_dir engine.io-protocol) || die "no engine.io-protocol/test-suite/test-suite.js under $suites"
sio=$(suite_dir socket.io-protocol) || die "no socket.io-protocol/test-suite/test-suite.js under $suites"

work=$(mktemp -d "${TMPDIR:-/tmp}/conformance.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "conformance: building cmd/conformance"
go build -o "$work/conformance" ./cmd/conformance || die "go build failed"

# A free loopback port: ask the kernel through node (bash cannot).
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:$port"
"$work/conformance" --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited"; }
  sleep 0.1
done
echo "conformance: server on $url"

shim=()
[ "$RAW" = 1 ] || shim=(--require "$repo/scripts/conformance-ws.cjs")

total_pass=0
total_fail=0
total=0
# run_suite copies a suite, installs it, points it at the server and runs it.
run_suite() { # $1 label, $2 source folder
  local label=$1 src=$2 dir="$work/$1"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$src/test-suite.js" "$dir/"
  [ -f "$src/node-imports.js" ] && cp "$src/node-imports.js" "$dir/"
  local needle='const URL = "http://localhost:3000";'
  [ "$(grep -cF "$needle" "$dir/test-suite.js")" = 1 ] || die "$label: expected one line '$needle' in test-suite.js"
  URL_LINE="const URL = \"$url\";" node -e '
    const fs = require("fs"), f = process.argv[1];
    fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace(process.argv[2], process.env.URL_LINE));
  ' "$dir/test-suite.js" "$needle"
  echo "conformance: [$label] npm ci"
  (cd "$dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >"$work/$label-npm.log" 2>&1) ||
    { cat "$work/$label-npm.log" >&2; die "$label: npm ci failed"; }
  (cd "$dir" && timeout -k 10 "$SUITE_TIMEOUT" node_modules/.bin/mocha --exit --retries "$RETRIES" \
    ${shim[@]+"${shim[@]}"} --reporter json --reporter-option "output=$work/$label.json" test-suite.js \
    >"$work/$label.log" 2>&1)
  local counts
  counts=$(node - "$work/$label.json" "$label" <<'JS'
const fs = require("fs");
const [file, label] = process.argv.slice(2);
let r;
try { r = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {
  console.log(`  [${label}] no mocha report (the suite crashed or timed out)`);
  console.log("0 0 0");
  process.exit(0);
}
for (const t of r.passes) console.log(`  ok    ${t.fullTitle}${t.currentRetry > 0 ? `   (flaky: passed on retry ${t.currentRetry})` : ""}`);
for (const t of r.failures) console.log(`  FAIL  ${t.fullTitle}\n          ${((t.err && t.err.message) || "").split("\n")[0]}`);
for (const t of r.pending) console.log(`  skip  ${t.fullTitle}`);
console.log(`${r.passes.length} ${r.failures.length} ${r.stats.tests}`);
JS
)
  printf '%s\n' "$counts" | sed '$d'
  local p f n
  read -r p f n <<<"$(printf '%s\n' "$counts" | tail -n 1)"
  if [ "$n" = 0 ]; then
    sed 's/^/    /' "$work/$label.log" | tail -n 20
    f=1 # a suite that ran nothing is a failure, not an empty success
  fi
  echo "conformance: [$label] $p of $n passed"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  total=$((total + n))
}

run_suite engine.io "$eio"
run_suite socket.io "$sio"

echo "conformance: $total_pass of $total passed"
[ "$total" -gt 0 ] && [ "$total_pass" -eq "$total" ] && [ "$total_fail" -eq 0 ]
