package socketio

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Provision registers the hub's shutdown hook on the HTTP server found in
// its context through shutdownNotifier: Caddy's server must have it, or
// the hook would silently never run (no live test can tell: on exit the
// hub drains from Destruct too).
var _ shutdownNotifier = (*caddyhttp.Server)(nil)

// Tests of module.go: Provision and its errors, the path ServeHTTP
// answers.

func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOCKETIO_TEST_EMPTY", "")
	cases := []struct {
		name string
		h    Handler
		want string
	}{
		{"auth without key", Handler{Auth: &AuthConfig{}}, "auth: a secret or a public_key is needed"},
		{"auth both keys", Handler{Auth: &AuthConfig{Secret: "x", PublicKey: "y"}}, "not both"},
		{"secret env unset", Handler{Auth: &AuthConfig{Secret: "{env.SOCKETIO_TEST_EMPTY}"}}, "secret is empty after resolving placeholders"},
		{"public key file missing", Handler{Auth: &AuthConfig{PublicKey: filepath.Join(dir, "nope.pem")}}, "reading public key"},
		{"public key garbage", Handler{Auth: &AuthConfig{PublicKey: garbage}}, "no PEM block"},
		{"alg not fitting", Handler{Auth: &AuthConfig{Secret: testSecret, Algorithms: []string{"RS256"}}}, `"RS256" does not fit`},
		{"bad mode", Handler{Auth: &AuthConfig{Mode: "sometimes", Secret: "x"}}, "unknown mode"},
		{"bad token source", Handler{Auth: &AuthConfig{Secret: testSecret, TokenFrom: []string{"body"}}}, "token_from"},
		{"bad transport", Handler{Transports: []string{"flash"}}, "unknown transport"},
		{"bad origin", Handler{Origins: []string{"example.com"}}, "is not an origin"},
		{"origin with path", Handler{Origins: []string{"https://example.com/app"}}, "is not an origin"},
		{"namespace without slash", Handler{Namespaces: []string{"chat"}}, "must start with /"},
		{"reserved relay", Handler{Relay: []string{"disconnect"}}, "reserved"},
		{"reserved emit", Handler{Emit: &Message{Event: "connect", Text: "x"}}, "reserved"},
		{"event used twice", Handler{Relay: []string{"join"}, RoomRequests: &RoomRequests{Join: "join"}}, "already used"},
		{"same join and leave", Handler{RoomRequests: &RoomRequests{Join: "a", Leave: "a"}}, "must differ"},
		{"negative payload", Handler{MaxPayload: -1}, "max_payload"},
		{"path with dot segment", Handler{Path: "/a/../socket.io/"}, "must be a clean path"},
		{"path with doubled slash", Handler{Path: "/a//b/"}, "must be a clean path"},
		{"path with wildcard", Handler{Path: "/socket.io/*"}, "plain path prefix"},
		{"path with escape", Handler{Path: "/socket%2eio/"}, "plain path prefix"},
		{"send buffer max below soft", Handler{Limits: &Limits{SendBuffer: 2 << 20, SendBufferMax: 1 << 20}}, "below its soft bound"},
		{"bad event rate", Handler{Limits: &Limits{EventRate: -3}}, "event_rate must be positive"},
		{"rate off alone", Handler{Limits: &Limits{EventRate: -1, EventBurst: 10}}, "turned off together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			err := h.Provision(testContext(t))
			if err == nil {
				_ = h.Cleanup()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if n := poolSize(); n != 0 {
				t.Fatalf("failed Provision left %d hubs in the pool", n)
			}
		})
	}
}

func TestProvisionResolvesEnvSecret(t *testing.T) {
	t.Setenv("SOCKETIO_TEST_SECRET", testSecret)
	h := &Handler{Name: "env", Auth: &AuthConfig{Secret: "{env.SOCKETIO_TEST_SECRET}"}}
	provision(t, h)
	tok, err := mintToken(tokenOptions{Secret: testSecret, Sub: "bob", TTL: time.Minute}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.entry.pol.verifier.Verify(tok); err != nil {
		t.Fatalf("token signed with the env secret refused: %v", err)
	}
}

func TestServeHTTPPassesOtherPaths(t *testing.T) {
	h := &Handler{Name: "paths", Path: "/rt"}
	provision(t, h)
	cases := []struct {
		path string
		next bool
	}{
		{"/", true},
		{"/rtx/", true},
		{"/socket.io/", true},
		{"/rt/", false},
		{"/rt", false},
		{"/rt/anything", false},
		// Cleaned and compared as Caddy's path matcher does, so that
		// `basic_auth /rt/*` in front and this handler agree.
		{"/rt/../", true},
		{"/rt/%2e%2e/", true},
		{"/rt/%2E%2E", true},
		{"/rt/x/../../", true},
		{"/rt/./../rtx/", true},
		{"/RT/", false},
		{"/rt/./", false},
		{"//rt/", false},
		{"/x/../rt/", false},
	}
	for _, tc := range cases {
		nextCalled := false
		next := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { nextCalled = true; return nil })
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, tc.path+"?EIO=4&transport=polling", nil)
		if err := h.ServeHTTP(rec, req, next); err != nil {
			t.Fatal(err)
		}
		if nextCalled != tc.next {
			t.Errorf("%s: next called = %v, want %v", tc.path, nextCalled, tc.next)
		}
		if !tc.next && (rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "0{")) {
			t.Errorf("%s: engine answered %d %q, want an open packet", tc.path, rec.Code, rec.Body.String())
		}
	}
}
