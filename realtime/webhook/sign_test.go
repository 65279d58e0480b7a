package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSecret = "webhook-secret-0123456789abcdef"

func TestWebhookSignature(t *testing.T) {
	secret := []byte(testSecret)
	body := []byte(`{"type":"event","event":"chat"}`)
	now := time.Unix(1_700_000_000, 0)
	ts := "1700000000"
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + ".event./hooks/chat." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := Sign(secret, ts, "event", "/hooks/chat", body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	cases := []struct {
		name      string
		secret    string
		ts        string
		hook      string
		path      string
		sig       string
		body      string
		now       time.Time
		wantError string
	}{
		{"valid", testSecret, ts, "event", "/hooks/chat", want, string(body), now, ""},
		{"valid within max age", testSecret, ts, "event", "/hooks/chat", want, string(body), now.Add(4 * time.Minute), ""},
		{"tampered body", testSecret, ts, "event", "/hooks/chat", want, `{"type":"event","event":"chax"}`, now, "signature mismatch"},
		{"wrong secret", "other-secret", ts, "event", "/hooks/chat", want, string(body), now, "signature mismatch"},
		{"other timestamp", testSecret, "1700000001", "event", "/hooks/chat", want, string(body), now, "signature mismatch"},
		// A call signed for one hook or endpoint does not verify on another.
		{"other hook", testSecret, ts, "connect", "/hooks/chat", want, string(body), now, "signature mismatch"},
		{"other path", testSecret, ts, "event", "/hooks/admin", want, string(body), now, "signature mismatch"},
		{"too old", testSecret, ts, "event", "/hooks/chat", want, string(body), now.Add(10 * time.Minute), "too old"},
		{"in the future", testSecret, ts, "event", "/hooks/chat", want, string(body), now.Add(-10 * time.Minute), "too old"},
		{"bad timestamp", testSecret, "yesterday", "event", "/hooks/chat", want, string(body), now, "bad timestamp"},
		{"bad signature format", testSecret, ts, "event", "/hooks/chat", "md5=00", string(body), now, "signature mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify([]byte(tc.secret), tc.ts, tc.hook, tc.path, tc.sig, []byte(tc.body), 5*time.Minute, tc.now)
			if tc.wantError == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantError)
			}
		})
	}
	t.Run("request whose body type is not the signed hook", func(t *testing.T) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		r := httptest.NewRequest(http.MethodPost, "/hooks/chat", nil)
		r.Header.Set(TimestampHeader, ts)
		r.Header.Set(HookHeader, "connect")
		r.Header.Set(SignatureHeader, Sign(secret, ts, "connect", "/hooks/chat", body))
		if err := VerifyRequest(secret, r, body, time.Minute); err == nil || !strings.Contains(err.Error(), "not the signed hook") {
			t.Fatalf("VerifyRequest = %v, want a hook mismatch", err)
		}
		r.Header.Set(HookHeader, "event")
		r.Header.Set(SignatureHeader, Sign(secret, ts, "event", "/hooks/chat", body))
		if err := VerifyRequest(secret, r, body, time.Minute); err != nil {
			t.Fatalf("VerifyRequest of a good call: %v", err)
		}
	})
}
