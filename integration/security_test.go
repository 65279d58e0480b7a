//go:build live

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// The attack review's path findings, on a real Caddy: Caddy's path matchers
// clean a path before they compare it, so the socketio handler must do the
// same, or "/socket.io/../" skips an auth directive scoped to /socket.io/*
// and still reaches the engine.

// traversalPaths each reached the engine past `basic_auth /socket.io/*`
// before the handler matched the cleaned path.
var traversalPaths = []string{
	"/socket.io/../",
	"/socket.io/%2e%2e/",
	"/socket.io/%2E%2E/",
	"/socket.io/x/../../",
	"/socket.io/./../",
}

// rawGet sends a GET for base+pathQuery exactly as written: Go's client keeps
// dot segments and percent escapes (curl --path-as-is).
func rawGet(t *testing.T, base, pathQuery string, header http.Header) (int, string) {
	t.Helper()
	u, err := url.Parse(base + pathQuery)
	if err != nil {
		t.Fatalf("parsing %q: %v", pathQuery, err)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	hc := &http.Client{Timeout: clientWait}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", pathQuery, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// hashPassword asks the built Caddy for a bcrypt hash, as a user would.
func hashPassword(t *testing.T, bin, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caddyCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "hash-password", "--plaintext", password).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func isOpenPacket(body string) bool { return strings.HasPrefix(body, `0{"sid"`) }

// TestCaddyPathTraversalKeepsAuth puts basic_auth and forward_auth in front
// of the socket path and checks that no spelling of the path reaches the
// engine without them, while the plain path still works with credentials.
func TestCaddyPathTraversalKeepsAuth(t *testing.T) {
	t.Parallel()
	bin := testkit.CaddyBinary(t)
	// The forward_auth backend: "Bearer alice-token" is alice, anything
	// else is refused. It names the user in X-User, which Caddy copies onto
	// the request (replacing whatever the client sent).
	authd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer alice-token" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", "alice")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(authd.Close)

	basicPort, fwdPort := testkit.FreePort(t), testkit.FreePort(t)
	sc := siteConfig{Port: basicPort, AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	basic_auth /socket.io/* {
		alice %s
	}
	socketio {
		name basic
	}
	file_server
}

:%d {
	root * testdata/www
	forward_auth /socket.io/* %s {
		uri /check
		copy_headers X-User
	}
	socketio {
		name forward
		join user-{socketio.header.X-User}
		emit welcome "hello {socketio.header.X-User}"
	}
	file_server
}
`, adminOptions(sc.AdminPort), basicPort, hashPassword(t, bin, "wonderland"), fwdPort, strings.TrimPrefix(authd.URL, "http://"))
	c := startCaddyConfig(t, sc, cfg)
	basicURL := c.BaseURL
	fwdURL := fmt.Sprintf("http://127.0.0.1:%d", fwdPort)
	const hs = "?EIO=4&transport=polling"

	t.Run("basic_auth", func(t *testing.T) {
		if code, body := rawGet(t, basicURL, "/socket.io/"+hs, nil); code != http.StatusUnauthorized {
			t.Fatalf("plain path without credentials: %d %q, want 401", code, body)
		}
		creds := http.Header{"Authorization": {"Basic " + basicAuth("alice", "wonderland")}}
		if code, body := rawGet(t, basicURL, "/socket.io/"+hs, creds); code != http.StatusOK || !isOpenPacket(body) {
			t.Fatalf("plain path with credentials: %d %q, want an open packet", code, body)
		}
		// Caddy's matcher is case-insensitive, and so is the handler: the
		// same auth applies to either spelling.
		if code, body := rawGet(t, basicURL, "/SOCKET.IO/"+hs, nil); code != http.StatusUnauthorized {
			t.Fatalf("upper-case path without credentials: %d %q, want 401", code, body)
		}
		for _, p := range traversalPaths {
			code, body := rawGet(t, basicURL, p+hs, nil)
			if isOpenPacket(body) {
				t.Errorf("%s without credentials reached the engine: %d %q", p, code, body)
			}
		}
	})

	t.Run("forward_auth", func(t *testing.T) {
		bob := http.Header{"X-User": {"bob"}}
		if code, body := rawGet(t, fwdURL, "/socket.io/"+hs, bob); code != http.StatusUnauthorized {
			t.Fatalf("plain path without a token: %d %q, want 401", code, body)
		}
		for _, p := range traversalPaths {
			code, body := rawGet(t, fwdURL, p+hs, bob)
			if isOpenPacket(body) {
				t.Errorf("%s as an anonymous 'bob' reached the engine: %d %q", p, code, body)
			}
		}
		// With a token the client is alice, whatever X-User it sends.
		alice := http.Header{"Authorization": {"Bearer alice-token"}, "X-User": {"bob"}}
		got := pollWelcome(t, fwdURL, alice)
		if !strings.Contains(got, `"hello alice"`) || strings.Contains(got, "bob") {
			t.Fatalf("welcome through forward_auth: %q, want hello alice", got)
		}
	})
}

func basicAuth(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// pollWelcome opens a polling session with the given headers on every
// request, connects to "/" and returns what the server sent up to its
// welcome event.
func pollWelcome(t *testing.T, base string, header http.Header) string {
	t.Helper()
	p := testkit.OpenPolling(t, base+"/socket.io/", nil, header)
	p.MustPost("40")
	return strings.Join(p.ReadUntil(`42["welcome"`, clientWait), "\x1e")
}
