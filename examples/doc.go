// Package examples tests what the README, docs/ and examples/ give a new
// user to copy: every Caddyfile loads as it is (caddy validate), the
// backends in examples/backend/ answer real webhooks, the emit API example
// reaches a real client, and the HTTPS example serves polling over HTTP/2
// and HTTP/3, WebSocket over TLS and the page to a browser that trusts
// Caddy's local CA.
//
// The tests run a Caddy built from ./cmd/caddy, as `make example` does. Tools
// from outside Go (node, php, python3 with Flask, chromium, certutil) are
// looked up on the machine: a test skips when one is missing, and fails
// instead when CI=true.
//
// Its files are tests only, built with the live tag (`make test` and
// `make test-live` set it: go test -tags live ./examples/); without it the
// package is this file, so the fast loop (go test -short ./...) does not
// link a test binary for it.
package examples
