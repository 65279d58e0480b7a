//go:build live

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	// The module under test, registered with Caddy for the in-process run.
	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Secrets of the API and webhook integration test.
const (
	hookITSecret   = "integration-webhook-secret-0123456789"
	apiITSecretOld = "integration-api-secret-old-0123456789"
	apiITSecretNew = "integration-api-secret-new-0123456789"
	// hookITTimeout is the webhook timeout of the test config: short, so
	// the timeout case is quick, long enough for a loaded CI machine.
	hookITTimeout = 800 * time.Millisecond
	apiITWait     = 10 * time.Second
)

// hookITBackend is the site's backend: it verifies every webhook signature
// and answers like a small app that knows three session cookies.
type hookITBackend struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	verified    int
	disconnects map[string][]string // socket id -> reasons
	release     chan struct{}
	// slowIn gets a value when a "slow" event reaches the backend, and
	// disconnected when a disconnect call has been recorded: the test
	// waits on these instead of sleeping.
	slowIn       chan struct{}
	disconnected chan struct{}
}

func newHookITBackend(t *testing.T) *hookITBackend {
	b := &hookITBackend{t: t, disconnects: map[string][]string{}, release: make(chan struct{}),
		slowIn: make(chan struct{}, 16), disconnected: make(chan struct{}, 64)}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		close(b.release)
		b.srv.Close()
	})
	return b
}

var hookITUsers = map[string]string{"alice": "team-a", "bob": "team-a", "carol": "team-b"}

func (b *hookITBackend) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := webhook.VerifyRequest([]byte(hookITSecret), r, raw, time.Minute); err != nil {
		b.t.Errorf("backend %s: %v", r.URL.Path, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var body struct {
		Socket  string            `json:"socket"`
		Event   string            `json:"event"`
		Args    []any             `json:"args"`
		Rooms   []string          `json:"rooms"`
		Data    map[string]any    `json:"data"`
		Cookies map[string]string `json:"cookies"`
		Reason  string            `json:"reason"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		b.t.Errorf("backend %s: body %s: %v", r.URL.Path, raw, err)
	}
	b.mu.Lock()
	b.verified++
	b.mu.Unlock()
	reply := map[string]any{}
	switch r.URL.Path {
	case "/connect":
		user := body.Cookies["session"]
		team, ok := hookITUsers[user]
		if !ok {
			reply["error"] = map[string]any{"message": "unknown session", "data": map[string]any{"login": "/login"}}
			break
		}
		reply["rooms"] = []string{"user-" + user, team}
		reply["data"] = map[string]any{"user": user}
	case "/disconnect":
		b.mu.Lock()
		b.disconnects[body.Socket] = append(b.disconnects[body.Socket], body.Reason)
		b.mu.Unlock()
		select {
		case b.disconnected <- struct{}{}:
		default:
		}
	case "/event":
		switch body.Event {
		case "whoami":
			reply["ack"] = []any{body.Data["user"], body.Rooms}
		case "slow":
			select {
			case b.slowIn <- struct{}{}:
			default:
			}
			select {
			case <-b.release:
			case <-r.Context().Done():
			}
			reply["ack"] = []any{"too late"}
		default:
			reply["ack"] = []any{body.Event, body.Args}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

func (b *hookITBackend) disconnectsOf(sid string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.disconnects[sid])
}

// waitDisconnectCall waits until the backend has a disconnect call for sid.
func (b *hookITBackend) waitDisconnectCall(t *testing.T, sid string) {
	t.Helper()
	deadline := time.After(apiITWait)
	for len(b.disconnectsOf(sid)) == 0 {
		select {
		case <-b.disconnected:
		case <-deadline:
			t.Fatalf("no disconnect call for %s after %v", sid, apiITWait)
		}
	}
}

// startAPICaddy runs Caddy in this process with socketio (webhooks on) and
// socketio_api side by side on a free loopback port, and returns its base
// URL. Caddy stops when the test ends.
func startAPICaddy(t *testing.T, backend string) string {
	t.Helper()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	caddyfile := fmt.Sprintf(`{
%s	auto_https off
}

http://127.0.0.1:%d {
	root * testdata/www
	socketio {
		webhook {
			secret %s
			events %s/event *
			connect %s/connect
			disconnect %s/disconnect
			cookies session
			timeout %s
		}
	}
	socketio_api /internal/socketio/* {
		secrets %s %s
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, hookITSecret, backend, backend, backend, hookITTimeout, apiITSecretOld, apiITSecretNew)
	return startCaddyConfig(t, sc, caddyfile).BaseURL
}

// apiITCall calls the API through Caddy.
func apiITCall(t *testing.T, base, method, endpoint, secret, body string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiITWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+"/internal/socketio/"+endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, endpoint, err)
	}
	return resp.StatusCode, out
}

func apiITPost(t *testing.T, base, endpoint, body string) map[string]any {
	t.Helper()
	status, out := apiITCall(t, base, "POST", endpoint, apiITSecretNew, body)
	if status != http.StatusOK {
		t.Fatalf("POST %s %s: %d %v", endpoint, body, status, out)
	}
	return out
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAPIAndWebhooksLive runs a real Caddy with socketio and socketio_api,
// a real backend, and the real socket.io-client 4.8 and 3.1.
func TestAPIAndWebhooksLive(t *testing.T) {
	drv := nodeclient.Start(t)
	backend := newHookITBackend(t)
	base := startAPICaddy(t, backend.srv.URL)

	t.Run("api secret", func(t *testing.T) {
		if status, out := apiITCall(t, base, "GET", "rooms", "", ""); status != http.StatusUnauthorized {
			t.Fatalf("no secret: %d %v", status, out)
		}
		if status, out := apiITCall(t, base, "GET", "rooms", "wrong-secret", ""); status != http.StatusForbidden {
			t.Fatalf("wrong secret: %d %v", status, out)
		}
		for _, s := range []string{apiITSecretOld, apiITSecretNew} {
			if status, out := apiITCall(t, base, "GET", "rooms", s, ""); status != http.StatusOK {
				t.Fatalf("rotated secret: %d %v", status, out)
			}
		}
	})
	for _, ver := range []string{"4", "3"} {
		t.Run("v"+ver, func(t *testing.T) { testAPILive(t, drv, backend, base, ver) })
	}
	backend.mu.Lock()
	verified := backend.verified
	backend.mu.Unlock()
	if verified < 10 {
		t.Fatalf("backend verified only %d signed calls", verified)
	}
}

func testAPILive(t *testing.T, drv *nodeclient.Driver, backend *hookITBackend, base, ver string) {
	connect := func(user string, transports ...string) (*nodeclient.Client, string) {
		t.Helper()
		opts := map[string]any{
			"extraHeaders": map[string]any{"Cookie": "theme=dark; session=" + user},
			"reconnection": false,
		}
		if len(transports) > 0 {
			opts["transports"] = transports
		}
		c := drv.Connect("v"+ver+"-"+user, ver, base, opts)
		sid, err := c.WaitConnect(apiITWait)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		return c, sid
	}
	alice, aliceID := connect("alice")
	bob, _ := connect("bob", "websocket")
	carol, carolID := connect("carol", "polling")
	everyone := []*nodeclient.Client{alice, bob, carol}
	// marker reaches everyone after what was sent before it: a client that
	// has it and not an earlier event never got that event.
	markers := 0
	marker := func(clients ...*nodeclient.Client) {
		t.Helper()
		markers++
		label := fmt.Sprint(markers)
		apiITPost(t, base, "emit", `{"event":"marker","args":["`+label+`"]}`)
		for _, c := range clients {
			for {
				args, err := c.WaitEvent("marker", apiITWait)
				if err != nil {
					t.Fatalf("%s: marker %s: %v", c.ID(), label, err)
				}
				if len(args) == 1 && args[0] == label {
					break
				}
			}
		}
	}

	t.Run("connect hook refuses", func(t *testing.T) {
		c := drv.Connect("v"+ver+"-mallory", ver, base, map[string]any{
			"extraHeaders": map[string]any{"Cookie": "session=mallory"},
			"reconnection": false,
		})
		_, err := c.WaitConnect(apiITWait)
		var ce *nodeclient.ConnectError
		if !errors.As(err, &ce) || ce.Message != "unknown session" || toJSON(t, ce.Data) != `{"login":"/login"}` {
			t.Fatalf("mallory: %v (%#v)", err, ce)
		}
	})
	t.Run("emit to a room", func(t *testing.T) {
		apiITPost(t, base, "emit", `{"event":"news","args":["for team a",{"n":1}],"to":["team-a"]}`)
		for _, c := range []*nodeclient.Client{alice, bob} {
			args, err := c.WaitEvent("news", apiITWait)
			if err != nil || toJSON(t, args) != `["for team a",{"n":1}]` {
				t.Fatalf("%s: %v %v", c.ID(), args, err)
			}
		}
		marker(everyone...)
		if got := carol.EventsNamed("news"); len(got) != 0 {
			t.Fatalf("carol (team b) got %v", got)
		}
	})
	t.Run("emit with acks", func(t *testing.T) {
		bob.SetAckReply("poll", []any{"bob votes no"})
		// A round trip through the driver, after which the rule is set.
		if _, err := bob.EmitWithAck(apiITWait, "whoami"); err != nil {
			t.Fatal(err)
		}
		out := apiITPost(t, base, "emit", `{"event":"poll","args":["yes?"],"to":["team-a"],"ack":true,"timeout":"3s"}`)
		var got []string
		for _, r := range out["replies"].([]any) {
			got = append(got, toJSON(t, r))
		}
		slices.Sort(got)
		if out["timed_out"] != false || strings.Join(got, " ") != `["bob votes no"] ["yes?"]` {
			t.Fatalf("answer %v", out)
		}
	})
	t.Run("join leave and list", func(t *testing.T) {
		apiITPost(t, base, "join", `{"to":["`+carolID+`"],"rooms":["vip"]}`)
		status, out := apiITCall(t, base, "GET", "sockets?room=vip", apiITSecretOld, "")
		socks, _ := out["sockets"].([]any)
		if status != 200 || len(socks) != 1 {
			t.Fatalf("sockets in vip: %d %v", status, out)
		}
		if s := socks[0].(map[string]any); s["id"] != carolID || toJSON(t, s["rooms"]) != `["team-b","user-carol","vip"]` ||
			toJSON(t, s["data"]) != `{"user":"carol"}` || s["transport"] != "polling" {
			t.Fatalf("carol listed as %v", s)
		}
		apiITPost(t, base, "emit", `{"event":"vip-news","to":["vip"]}`)
		if _, err := carol.WaitEvent("vip-news", apiITWait); err != nil {
			t.Fatal(err)
		}
		apiITPost(t, base, "leave", `{"to":["team-b"],"rooms":["vip"]}`)
		apiITPost(t, base, "emit", `{"event":"vip-news","to":["vip"]}`)
		marker(everyone...)
		if n := len(carol.EventsNamed("vip-news")); n != 1 {
			t.Fatalf("carol got %d vip-news, want 1 (the one before leaving)", n)
		}
		if n := len(alice.EventsNamed("vip-news")) + len(bob.EventsNamed("vip-news")); n != 0 {
			t.Fatalf("team a got %d vip-news", n)
		}
		_, out = apiITCall(t, base, "GET", "rooms", apiITSecretOld, "")
		if toJSON(t, out["rooms"]) != `[{"name":"team-a","size":2},{"name":"team-b","size":1},{"name":"user-alice","size":1},{"name":"user-bob","size":1},{"name":"user-carol","size":1}]` {
			t.Fatalf("rooms %v", out)
		}
	})
	t.Run("client event acked by the backend", func(t *testing.T) {
		args, err := alice.EmitWithAck(apiITWait, "whoami")
		if err != nil || toJSON(t, args) != `["alice",["team-a","user-alice"]]` {
			t.Fatalf("whoami: %v %v", args, err)
		}
	})
	t.Run("backend timeout does not hold up others", func(t *testing.T) {
		type result struct {
			args []any
			err  error
			took time.Duration
		}
		slow := make(chan result, 1)
		start := time.Now()
		go func() {
			args, err := alice.EmitWithAck(apiITWait, "slow")
			slow <- result{args, err, time.Since(start)}
		}()
		select { // the slow call is in flight
		case <-backend.slowIn:
		case <-time.After(apiITWait):
			t.Fatal("alice's slow event did not reach the backend")
		}
		fastStart := time.Now()
		args, err := bob.EmitWithAck(apiITWait, "fast", 1)
		if took := time.Since(fastStart); err != nil || toJSON(t, args) != `["fast",[1]]` || took > hookITTimeout/2 {
			t.Fatalf("bob's event while alice's waits: %v %v after %v", args, err, took)
		}
		r := <-slow
		if r.err != nil || toJSON(t, r.args) != `[{"error":"webhook failed: timeout"}]` {
			t.Fatalf("alice's slow event: %v %v", r.args, r.err)
		}
		if r.took < hookITTimeout-100*time.Millisecond {
			t.Fatalf("timeout ack after %v, before the %v timeout", r.took, hookITTimeout)
		}
	})
	t.Run("disconnect through the API and the hook once", func(t *testing.T) {
		apiITPost(t, base, "disconnect", `{"to":["team-b"]}`)
		reason, err := carol.WaitDisconnect(apiITWait)
		if err != nil || reason != "io server disconnect" {
			t.Fatalf("carol: %q %v", reason, err)
		}
		marker(alice, bob)
		alice.Disconnect()
		if _, err := alice.WaitDisconnect(apiITWait); err != nil {
			t.Fatal(err)
		}
		backend.waitDisconnectCall(t, carolID)
		backend.waitDisconnectCall(t, aliceID)
		// A wrong second call would come after the first: proving that
		// none comes takes a wait (no signal is sent for what never happens).
		time.Sleep(300 * time.Millisecond)
		if got := backend.disconnectsOf(carolID); len(got) != 1 || got[0] != "server namespace disconnect" {
			t.Fatalf("carol's disconnect calls %v", got)
		}
		if got := backend.disconnectsOf(aliceID); len(got) != 1 || got[0] != "client namespace disconnect" {
			t.Fatalf("alice's disconnect calls %v", got)
		}
		if _, out := apiITCall(t, base, "GET", "sockets", apiITSecretOld, ""); len(out["sockets"].([]any)) != 1 {
			t.Fatalf("sockets left %v, want bob only", out)
		}
	})
	drv.CloseAll()
	// Let the server see the clients go before the next version's run: the
	// API's socket list is the only view of it from here, so it is polled.
	deadline := time.Now().Add(apiITWait)
	for time.Now().Before(deadline) {
		if _, out := apiITCall(t, base, "GET", "sockets", apiITSecretOld, ""); len(out["sockets"].([]any)) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("sockets still listed after the clients closed")
}
