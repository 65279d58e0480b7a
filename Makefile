# The commands of the README and docs/, and their helpers.
#   make example   runs Caddyfile.example on :8080 (the tutorial's site);
#                  PORT=8081 ADMIN=localhost:2999 move it off taken ports
#   make cluster   redis-server and two Caddy nodes (examples/cluster/) behind
#                  a Caddy load balancer on :8080 (docs/cluster.md)
#   make test      runs every test (Go unit, protocol, real clients, Caddy, browser)
#   make test-short  the fast loop: in-process tests only
#   make test-live   the live packages only: integration/, examples/,
#                  internal/nodeclient/, realtime/cluster/, realtime/redispresence/
#   make conformance SUITES=<dir>   the official protocol suites (docs/conformance.md)
#   make soak      a real Caddy under steady load for SOAK_DURATION (default 10m),
#                  not part of CI (docs/operations.md)
# The test files of the packages whose tests are all live (integration/,
# examples/, internal/nodeclient/, realtime/cluster/, realtime/redispresence/)
# carry the build tag `live`, so the fast loop links no test binary for
# them: every target that runs, vets or lints them sets LIVE_TAGS.

GO       ?= go
NPM      ?= npm
JWT_SECRET ?= dev-only-secret-change-me-in-production-0123
export JWT_SECRET
LIVE_TAGS := -tags live

NODE_STAMP := testdata/node_modules/.installed
BUNDLE     := testdata/www/vendor/socket.io.min.js

.PHONY: example cluster test test-short test-live lint deps token bench conformance fuzz soak

# npm ci only when the lock file changed since the last install.
$(NODE_STAMP): testdata/package.json testdata/package-lock.json
	cd testdata && $(NPM) ci --no-audit --no-fund
	touch $@

# The page loads the client bundle from our own origin (no CDN); it comes
# from npm at set-up time and is never committed.
$(BUNDLE): $(NODE_STAMP)
	mkdir -p $(dir $@)
	cp testdata/node_modules/socket.io-client/dist/socket.io.min.js $@

deps: $(NODE_STAMP) $(BUNDLE)

PORT  ?= 8080
ADMIN ?= localhost:2019

example: deps
	@PORT='$(PORT)' ADMIN='$(ADMIN)' GO='$(GO)' scripts/example.sh

cluster: deps
	@GO='$(GO)' scripts/cluster.sh

token:
	@$(GO) run ./cmd/caddy socketio-token --sub demo-user --ttl 24h

test: deps
	$(GO) vet $(LIVE_TAGS) ./...
	$(GO) test -race -count=1 $(LIVE_TAGS) -timeout 30m ./...

# golangci-lint with .golangci.yml (CI installs the version below).
GOLANGCI_LINT ?= golangci-lint
lint:
	$(GOLANGCI_LINT) run ./...

# The fast loop: unit and in-process tests only; no Caddy process, Node,
# Chromium or redis-server is started (the live packages are not built
# without LIVE_TAGS, and the live tests elsewhere skip under -short).
test-short:
	$(GO) test -short -count=1 ./...

# Only the live tests: a real Caddy built from ./cmd/caddy, the Node clients,
# Chromium, the example backends (integration/ and examples/), the Node
# client kit, the cluster and the presence tracker on redis-server.
test-live: deps
	$(GO) test -count=1 $(LIVE_TAGS) -timeout 20m ./integration/ ./examples/ ./internal/nodeclient/ ./realtime/cluster/ ./realtime/redispresence/

# Not part of `make test`: numbers are measured by hand (see README).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(LIVE_TAGS) ./realtime/...
	testdata/bench/compare.sh

# Not part of `make test` or CI: 5,000 steady sockets, 100 connects and
# disconnects per second, a room broadcast every 100 ms and a `caddy
# reload` every minute against a Caddy built from this checkout; prints the
# goroutine and RSS curve (cmd/soak; SOAK_FLAGS adds its other flags).
SOAK_DURATION ?= 10m
soak:
	$(GO) build -o bin/caddy-soak ./cmd/caddy
	$(GO) run ./cmd/soak -caddy bin/caddy-soak -duration $(SOAK_DURATION) $(SOAK_FLAGS)

# The official protocol suites against cmd/conformance; SUITES is
# a folder with your clones of socketio/engine.io-protocol and
# socketio/socket.io-protocol (docs/conformance.md).
conformance:
	@scripts/conformance.sh '$(SUITES)'

# FuzzDecodePayloadMany's seeds hold up to 10,001 packets: at the default
# -fuzzminimizetime (60s) minimizing one new input takes most of its run.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 60s ./realtime/parser/
	$(GO) test -run '^$$' -fuzz FuzzJSON -fuzztime 60s ./realtime/parser/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePayload$$' -fuzztime 60s ./realtime/engineio/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePayloadMany$$' -fuzztime 60s -fuzzminimizetime 2s ./realtime/engineio/
	$(GO) test -run '^$$' -fuzz FuzzQuery -fuzztime 60s ./realtime/engineio/
	$(GO) test -run '^$$' -fuzz FuzzNames -fuzztime 60s ./realtime/
	$(GO) test -run '^$$' -fuzz FuzzRecoveryLookup -fuzztime 60s ./realtime/
	$(GO) test -run '^$$' -fuzz FuzzRecoveryOffset -fuzztime 60s ./realtime/redisadapter/
	$(GO) test -run '^$$' -fuzz FuzzAPIRequest -fuzztime 60s ./realtime/emitapi/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./realtime/redisadapter/
