// Package integration holds the live tests: a real Caddy built from
// ./cmd/caddy (run from the repository root, so Caddyfile.example and
// testdata/ resolve as they do for a user), the official socket.io-client
// 4.8 and 3.1 driven through internal/nodeclient, and a headless Chromium.
// Its files are tests only; this file names the package.
//
// Every test skips under -short (`make test-short` starts no Caddy process,
// Node or Chromium) and when a tool it needs is missing, and fails instead
// when CI=true.
package integration
