// Package auth verifies the JSON Web Tokens that Socket.IO clients present
// when they connect to a namespace. It is plain Go (no Caddy import) so that
// the engine and its tests can use it without a web server.
//
// The rules it enforces follow RFC 8725 (JWT Best Current Practices): the
// accepted algorithms are fixed by configuration and never taken from the
// token header, "none" is always refused, and a key can only be used with the
// algorithm family it belongs to, which rules out the classic confusion of an
// RSA public key used as an HMAC secret.
package auth

import (
	"errors"
	"time"
)

// DefaultLeeway is the clock skew tolerated when checking exp and nbf. RFC
// 7519 section 4.1.4 allows "some small leeway"; a few seconds cover NTP-synced
// hosts without keeping an expired token alive for long.
const DefaultLeeway = 5 * time.Second

// ErrMissingToken is returned when no token was found in any configured source.
// Its message is what a client sees in its connect_error event.
var ErrMissingToken = errors.New("missing token")

// Error is a refused token. Its message is meant for the client (it becomes
// the message of the Socket.IO CONNECT_ERROR packet), so it names the reason
// but never echoes the token. Err keeps the underlying jwt error for logs and
// errors.Is checks (jwt.ErrTokenExpired, jwt.ErrTokenSignatureInvalid, ...).
type Error struct {
	Reason string
	Err    error
}

// Error returns "invalid token: <reason>".
func (e *Error) Error() string { return "invalid token: " + e.Reason }

// Unwrap gives access to the jwt error.
func (e *Error) Unwrap() error { return e.Err }
