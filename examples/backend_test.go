//go:build live

package examples

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

const (
	hookSecret = "examples-webhook-secret-0123456789abcdef"
	jwtSecret  = "examples-jwt-secret-0123456789abcdef-0123"
)

// backendSpec is one of the backends of examples/backend/: how to start it
// on an address, and the lines in its log that mean it went wrong (a PHP
// notice, a Python traceback, a Node exception).
type backendSpec struct {
	name string
	find func(t *testing.T) []string // argv before the address-specific part
	argv func(base []string, addr string) []string
	bad  *regexp.Regexp
}

var backends = []backendSpec{
	{
		name: "php",
		find: func(t *testing.T) []string {
			php, err := exec.LookPath("php")
			if err != nil {
				testkit.SkipOrFail(t, "finding php: %v (apt-get install php-cli)", err)
			}
			// Every notice and warning goes to the log, where the test sees it.
			return []string{php, "-d", "error_reporting=-1", "-d", "display_errors=stderr", "-d", "log_errors=0"}
		},
		argv: func(base []string, addr string) []string {
			return append(base, "-S", addr, "examples/backend/php/index.php")
		},
		bad: regexp.MustCompile(`(?i)(warning|notice|deprecated|fatal error|parse error|uncaught)`),
	},
	{
		name: "python",
		find: func(t *testing.T) []string { return []string{flaskPython(t)} },
		argv: func(base []string, _ string) []string {
			return append(base, "examples/backend/python/app.py")
		},
		// The development server's own "WARNING: This is a development
		// server" banner is expected; anything logged at ERROR is not.
		bad: regexp.MustCompile(`Traceback|\bERROR\b|Exception`),
	},
	{
		name: "node",
		find: func(t *testing.T) []string {
			node, err := exec.LookPath("node")
			if err != nil {
				testkit.SkipOrFail(t, "finding node: %v", err)
			}
			return []string{node}
		},
		argv: func(base []string, _ string) []string {
			return append(base, "examples/backend/node/server.js")
		},
		bad: regexp.MustCompile(`Error|Uncaught|Warning`),
	},
}

// flaskPython finds a python3 that imports flask: the one on PATH, or
// Debian's /usr/bin/python3 with python3-flask.
func flaskPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, c := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if err := exec.Command(p, "-c", "import flask").Run(); err == nil {
			return p
		}
		tried = append(tried, p)
	}
	testkit.SkipOrFail(t, "no python3 with Flask (tried %v; apt-get install python3-flask)", tried)
	return ""
}

// TestBackends runs each backend of examples/backend/ behind a real Caddy
// configured by examples/backend/Caddyfile, with real socket.io-client
// connections: the connect hook places (or refuses) the socket, a client
// event reaches the backend and its reply comes back as the ack, the emit
// action reaches the other client, and the disconnect hook runs; the
// backend's log must show all three hooks and no error or notice. Each
// backend's own signature checks are tested directly too.
func TestBackends(t *testing.T) {
	drv := nodeclient.Start(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			base := b.find(t)
			testBackend(t, drv, b, base)
		})
	}
}

func testBackend(t *testing.T, drv *nodeclient.Driver, b backendSpec, base []string) {
	home := t.TempDir()
	bport, sport, aport := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	backendAddr := fmt.Sprintf("127.0.0.1:%d", bport)
	site := fmt.Sprintf("http://127.0.0.1:%d", sport)

	be := testkit.StartProcess(t, b.name+" backend", testkit.RepoRoot(t),
		baseEnv(home, "WEBHOOK_SECRET="+hookSecret, "BACKEND="+backendAddr), b.argv(base, backendAddr)...)
	be.WaitHTTP(t, nil, "http://"+backendAddr+"/", http.StatusOK, readyTimeout)

	refusals := testSignatureChecks(t, "http://"+backendAddr)
	// The refusals above are the only ones allowed; their log lines may
	// come a moment after the answers.
	waitCountLog(t, be, "refused:", refusals)
	mark := len(be.Log.String())

	cfg := withGlobal(readFile(t, "examples/backend/Caddyfile"), aport)
	caddy := startCaddy(t, cfg, baseEnv(home,
		"JWT_SECRET="+jwtSecret, "WEBHOOK_SECRET="+hookSecret,
		"SITE_ADDRESS="+site, "BACKEND="+backendAddr), nil, site+"/")

	connect := func(id, sub string) *nodeclient.Client {
		claims := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
		if sub != "" {
			claims["sub"] = sub
		}
		tok := testkit.HS256(t, jwtSecret, claims)
		return drv.Connect(b.name+"-"+id, "4", site, map[string]any{
			"auth": map[string]any{"token": tok}, "reconnection": false,
		})
	}
	alice, bob, nobody := connect("alice", "alice"), connect("bob", "bob"), connect("nobody", "")
	for _, c := range []*nodeclient.Client{alice, bob} {
		if _, err := c.WaitConnect(clientWait); err != nil {
			t.Fatalf("%s: %v\nbackend log:\n%s\ncaddy log:\n%s", c.ID(), err, be.Log, lastLines(caddy.Log.String(), 20))
		}
	}
	var ce *nodeclient.ConnectError
	if _, err := nobody.WaitConnect(clientWait); !errors.As(err, &ce) || ce.Message != "please log in" {
		t.Errorf("a token without sub: got %v, want connect_error %q", err, "please log in")
	}

	ack, err := alice.EmitWithAck(clientWait, "chat", "hi bob")
	if err != nil || !slices.Equal(ack, []any{"delivered"}) {
		t.Errorf("alice's chat: ack %v, %v; want [delivered]", ack, err)
	}
	got, err := bob.WaitEvent("chat", clientWait)
	if err != nil {
		t.Fatalf("bob did not get alice's chat: %v\nbackend log:\n%s", err, be.Log)
	}
	if m, _ := firstMap(got); m["from"] != "alice" || m["text"] != "hi bob" {
		t.Errorf("bob got chat %v, want {from: alice, text: hi bob}", got)
	}
	if _, err := bob.EmitWithAck(clientWait, "chat", "hi alice"); err != nil {
		t.Errorf("bob's chat: %v", err)
	}
	if _, err := alice.WaitEvent("chat", clientWait); err != nil {
		t.Errorf("alice did not get bob's chat: %v", err)
	}
	if n := len(alice.EventsNamed("chat")); n != 1 {
		t.Errorf("alice got %d chat events, want only bob's (not her own back)", n)
	}
	ack, err = alice.EmitWithAck(clientWait, "dance")
	if m, _ := firstMap(ack); err != nil || m["error"] != "unknown event dance" {
		t.Errorf("an unknown event: ack %v, %v; want [{error: unknown event dance}]", ack, err)
	}

	alice.Disconnect()
	bob.Disconnect()
	waitLog(t, be, "disconnect alice", "disconnect bob")

	log := be.Log.String()
	for _, want := range []string{"connect alice", "connect bob", "event chat from alice: hi bob", "disconnect alice", "disconnect bob"} {
		if !strings.Contains(log, want) {
			t.Errorf("backend log has no %q:\n%s", want, log)
		}
	}
	if strings.Contains(log[mark:], "refused:") {
		t.Errorf("the backend refused a call from Caddy:\n%s", log[mark:])
	}
	for _, line := range strings.Split(log, "\n") {
		if b.bad.MatchString(line) {
			t.Errorf("backend log: %q", line)
		}
	}
	if strings.Contains(caddy.Log.String(), "webhook failed") {
		t.Errorf("caddy logged a failed webhook:\n%s", lastLines(caddy.Log.String(), 20))
	}
	if t.Failed() {
		t.Logf("backend log:\n%s", log)
	}
}

func firstMap(args []any) (map[string]any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	m, ok := args[0].(map[string]any)
	return m, ok
}

// waitCountLog waits until p's log holds s n times.
func waitCountLog(t *testing.T, p *testkit.Process, s string, n int) {
	t.Helper()
	if !p.Log.WaitFor(clientWait, p.Done(), func(log string) bool { return strings.Count(log, s) >= n }) {
		t.Fatalf("%s log has %d %q, want %d:\n%s", p.Name, strings.Count(p.Log.String(), s), s, n, p.Log)
	}
}

// waitLog waits until p's log holds every line.
func waitLog(t *testing.T, p *testkit.Process, lines ...string) {
	t.Helper()
	missing := func(log string) []string {
		return slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.Contains(log, l) })
	}
	if !p.Log.WaitFor(clientWait, p.Done(), func(log string) bool { return len(missing(log)) == 0 }) {
		log := p.Log.String()
		t.Errorf("%s log has no %q after %v:\n%s", p.Name, missing(log), clientWait, log)
	}
}

// sign is the webhook signature of the docs (docs/backend.md): HMAC-SHA256
// over timestamp.hook.path.body, written here from the text, not from the
// module's code, so the backends are checked against what users read.
func sign(secret, ts, hook, path, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + hook + "." + path + "." + body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// testSignatureChecks posts calls straight to the backend: a good one is
// answered, and a bad signature, a stale or future timestamp, a call
// signed for another path and a hook header that is not the body's type
// are refused. It returns the number of refusals.
func testSignatureChecks(t *testing.T, backend string) int {
	t.Helper()
	body := `{"type":"disconnect","namespace":"/","socket":"testsocket0000000000","reason":"client namespace disconnect","rooms":[],"data":{"user":"tester"}}`
	now := strconv.FormatInt(time.Now().Unix(), 10)
	old := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10)
	cases := []struct {
		name, ts, hook, sig string
		ok                  bool
	}{
		{"good", now, "disconnect", sign(hookSecret, now, "disconnect", "/socket/disconnect", body), true},
		{"bad signature", now, "disconnect", sign("another-secret", now, "disconnect", "/socket/disconnect", body), false},
		{"stale timestamp", old, "disconnect", sign(hookSecret, old, "disconnect", "/socket/disconnect", body), false},
		{"future timestamp", future, "disconnect", sign(hookSecret, future, "disconnect", "/socket/disconnect", body), false},
		{"signed for another path", now, "disconnect", sign(hookSecret, now, "disconnect", "/socket/event", body), false},
		{"hook is not the body's type", now, "event", sign(hookSecret, now, "event", "/socket/disconnect", body), false},
		{"no signature", now, "disconnect", "", false},
	}
	client := &http.Client{Timeout: clientWait}
	refused := 0
	for _, c := range cases {
		req, err := http.NewRequest(http.MethodPost, backend+"/socket/disconnect", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-SocketIO-Timestamp", c.ts)
		req.Header.Set("X-SocketIO-Hook", c.hook)
		if c.sig != "" {
			req.Header.Set("X-SocketIO-Signature", c.sig)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if ok := resp.StatusCode/100 == 2; ok != c.ok {
			t.Errorf("%s: backend answered %s, want accepted=%v", c.name, resp.Status, c.ok)
		}
		if !c.ok {
			refused++
		}
	}
	return refused
}
