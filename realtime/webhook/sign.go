package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Header names of a call.
const (
	// TimestampHeader holds the Unix seconds when the call was made.
	TimestampHeader = "X-SocketIO-Timestamp"
	// SignatureHeader holds the call's signature, see Sign.
	SignatureHeader = "X-SocketIO-Signature"
	// HookHeader holds the hook called: connect, event or disconnect.
	HookHeader = "X-SocketIO-Hook"
)

// Sign returns the SignatureHeader value of a call:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + hook + "." + path +
// "." + body)). path is the request's URL path in its escaped form, without
// the query ("/hooks/socketio").
func Sign(secret []byte, timestamp, hook, path string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	for _, part := range []string{timestamp, hook, path} {
		mac.Write([]byte(part))
		mac.Write([]byte{'.'})
	}
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a call's signature in constant time, and that its timestamp
// is within maxAge of now (no check when maxAge is 0). hook is the
// HookHeader value and path the URL path the backend was called on; the
// body's "type" must then equal hook (see VerifyRequest, which does both).
// Go backends can use it as is; it documents the scheme for the others.
func Verify(secret []byte, timestamp, hook, path, signature string, body []byte, maxAge time.Duration, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("verifying webhook: bad timestamp %q", timestamp)
	}
	if maxAge > 0 {
		age := now.Sub(time.Unix(ts, 0))
		if age > maxAge || age < -maxAge {
			return errors.New("verifying webhook: timestamp too old or in the future")
		}
	}
	want := Sign(secret, timestamp, hook, path, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errors.New("verifying webhook: signature mismatch")
	}
	return nil
}

// VerifyRequest verifies a call as a backend received it: body is the
// request body it read, r the request (its headers and URL path). It also
// checks that the body's "type" is the signed hook. maxAge bounds the
// timestamp's distance from now (5 minutes is what the docs advise; 0
// disables the check).
func VerifyRequest(secret []byte, r *http.Request, body []byte, maxAge time.Duration) error {
	hook := r.Header.Get(HookHeader)
	if err := Verify(secret, r.Header.Get(TimestampHeader), hook, r.URL.EscapedPath(),
		r.Header.Get(SignatureHeader), body, maxAge, time.Now()); err != nil {
		return err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return fmt.Errorf("verifying webhook: decoding body: %w", err)
	}
	if head.Type != hook {
		return fmt.Errorf("verifying webhook: body type %q is not the signed hook %q", head.Type, hook)
	}
	return nil
}
