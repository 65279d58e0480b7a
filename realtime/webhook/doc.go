// Package webhook is the Caddy-free part of caddy-socketio's webhooks: the
// signing scheme of the calls (Sign, Verify, VerifyRequest), so that a Go
// backend can verify them by importing only this package; the JSON of a
// call and of its reply (Body, Reply, Action); the Client that makes
// signed calls with two concurrency pools, a body bound, a timeout and a
// graceful Close; and the per-socket FIFO (Queue) that hands its calls
// over to the new Client on a reload. It never imports Caddy.
//
// Every call is a JSON POST carrying three headers: TimestampHeader (Unix
// seconds), HookHeader (connect, event or disconnect, the same as the
// body's "type") and SignatureHeader, whose value is
//
//	"sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + hook + "." + path + "." + body))
//
// where path is the URL path the call was sent to. A backend refuses
// replayed or forged calls with its copy of the secret, and a call signed
// for one hook or endpoint cannot be replayed against another.
package webhook
