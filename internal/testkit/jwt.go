package testkit

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sign signs claims, as they are, with method and key (a []byte secret for
// HMAC, a private key otherwise).
func Sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("signing a token: %v", err)
	}
	return s
}

// HS256 signs claims with secret; an exp an hour ahead is added to claims
// unless it has one.
func HS256(t testing.TB, secret string, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	return Sign(t, jwt.SigningMethodHS256, []byte(secret), claims)
}

// Unsigned mints an alg "none" token, which a server must refuse.
func Unsigned(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatalf("building an alg none token: %v", err)
	}
	return s
}

// jwtHeader is how every token the tests sign starts: `{"alg` in base64url
// (the header's keys are marshalled in order, and "alg" sorts first).
const jwtHeader = "eyJhbGci"

// HasJWT reports whether s holds what looks like one of the tests' tokens:
// their header's opening. A bare "eyJ" is not enough: random base64 (a
// WebSocket key, a socket id in a URL) holds it about once in ten thousand
// strings, and an access log has hundreds of them.
func HasJWT(s string) bool { return strings.Contains(s, jwtHeader) }
