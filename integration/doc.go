// Package integration holds the live tests: a real Caddy built from
// ./cmd/caddy (run from the repository root, so Caddyfile.example and
// testdata/ resolve as they do for a user), the official socket.io-client
// 4.8 and 3.1 driven through internal/nodeclient, and a headless Chromium.
// Its files are tests only, built with the live tag (`make test` and
// `make test-live` set it: go test -tags live ./integration/); this file
// names the package, so without the tag the fast loop (go test -short
// ./...) links no test binary for it.
//
// Every test also skips under -short and when a tool it needs is missing,
// and fails instead when CI=true.
package integration
