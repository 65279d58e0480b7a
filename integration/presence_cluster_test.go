//go:build live

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/redispresence"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// presClusterGrace is the presence grace of the cluster test's nodes.
const presClusterGrace = 2 * time.Second

// presBackend records the presence calls of every node, checking each
// signature.
type presBackend struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []string // "online gina", in arrival order
	at     map[string]time.Time
	notify chan struct{}
}

func newPresBackend(t *testing.T) *presBackend {
	b := &presBackend{notify: make(chan struct{}, 1), at: map[string]time.Time{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		if err := webhook.VerifyRequest([]byte(hookITSecret), r, raw, time.Minute); err != nil {
			t.Errorf("presence call %s: %v", r.URL.Path, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var body struct{ Type, User string }
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("presence call: %v", err)
		}
		if r.URL.Path != "/presence" {
			w.WriteHeader(http.StatusNoContent)
			return // the disconnect hook (a webhook block needs one)
		}
		call := body.Type + " " + body.User
		b.mu.Lock()
		b.calls = append(b.calls, call)
		b.at[call] = time.Now()
		b.mu.Unlock()
		select {
		case b.notify <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// count is how many times call came.
func (b *presBackend) count(call string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (b *presBackend) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprint(b.calls)
}

// wait waits until call came, within d.
func (b *presBackend) wait(t *testing.T, call string, d time.Duration) time.Time {
	t.Helper()
	deadline := time.After(d)
	for b.count(call) == 0 {
		select {
		case <-b.notify:
		case <-deadline:
			t.Fatalf("no %q within %v; calls: %s", call, d, b)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.at[call]
}

// startPresenceNode runs a Caddy node of a Redis cluster with presence.
func startPresenceNode(t *testing.T, redisURL, backend string) *caddyProc {
	t.Helper()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s}

:%d {
	respond /app.js "ok" 200
	socketio {
		auth optional {
			secret {env.JWT_SECRET}
		}
		join room-{socketio.query.room}
		adapter redis %s {
			request_timeout 3s
		}
		presence {
			webhook %s/presence
			grace %s
		}
		webhook {
			secret %s
			disconnect %s/disconnect
		}
	}
	socketio_api /internal/socketio/* {
		secrets %s
	}
}
`, adminOptions(sc.AdminPort), sc.Port, redisURL, backend, presClusterGrace, hookITSecret, backend, apiITSecretOld)
	return startCaddyConfig(t, sc, cfg)
}

// presClient connects a socket.io-client 4.8 over WebSocket as user sub,
// in room-<room>, with quick reconnects.
func presClient(t *testing.T, drv *nodeclient.Driver, base, id, sub, room string) *nodeclient.Client {
	t.Helper()
	c := drv.Connect(id, "4", base+"?room="+room, map[string]any{
		"transports":           []string{"websocket"},
		"auth":                 map[string]any{"token": userToken(t, sub)},
		"reconnectionDelay":    100,
		"reconnectionDelayMax": 200,
		"randomizationFactor":  0,
	})
	if _, err := c.WaitConnect(clientWait); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return c
}

// roomUsers is the emit API's presence listing of a room, from one node.
func roomUsers(t *testing.T, base, room string) string {
	t.Helper()
	status, out := apiITCall(t, base, "GET", "presence?namespace=/&room=room-"+room, apiITSecretOld, "")
	if status != http.StatusOK {
		t.Fatalf("presence of room-%s: %d %v", room, status, out)
	}
	return toJSON(t, out["users"])
}

// waitUsers waits until node base lists want in the room.
func waitUsers(t *testing.T, base, room, want string) {
	t.Helper()
	deadline := time.Now().Add(clientWait)
	for got := roomUsers(t, base, room); got != want; got = roomUsers(t, base, room) {
		if time.Now().After(deadline) {
			t.Fatalf("room-%s on %s lists %s, want %s", room, base, got, want)
		}
		time.Sleep(100 * time.Millisecond) // another process's state: asked again
	}
}

// TestPresenceClusterLive: two Caddy nodes on one Redis, a signed-webhook
// backend and real socket.io-client 4.8 sockets. One user with a socket
// on each node: one online for the cluster; one socket drops and comes
// back within the grace: no offline; both gone past the grace: exactly
// one offline. The emit API of either node lists the users of a room on
// both, also after a reload. A node killed with SIGKILL while holding a user's only socket:
// the socket stops counting once the node's heartbeat is older than the
// node TTL, and the other node sends the offline, once.
func TestPresenceClusterLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Caddy, Node and redis-server")
	}
	r := testkit.StartRedis(t)
	drv := nodeclient.Start(t)
	b := newPresBackend(t)
	nodeA := startPresenceNode(t, r.URL(), b.srv.URL)
	nodeB := startPresenceNode(t, r.URL(), b.srv.URL)
	a, bb := nodeA.BaseURL, nodeB.BaseURL

	c1 := presClient(t, drv, a, "gina-a", "gina", "team")
	c2 := presClient(t, drv, bb, "gina-b", "gina", "team")
	presClient(t, drv, bb, "hal-b", "hal", "team")
	b.wait(t, "online gina", clientWait)
	b.wait(t, "online hal", clientWait)
	// Either node lists the users of both.
	waitUsers(t, a, "team", `["gina","hal"]`)
	waitUsers(t, bb, "team", `["gina","hal"]`)

	// A reload keeps the tracker: nobody goes offline or comes online.
	nodeA.command("reload", "--config", nodeA.cfgPath, "--adapter", "caddyfile", "--address", nodeA.admin, "--force")
	waitUsers(t, a, "team", `["gina","hal"]`)

	// gina's socket on A drops and reconnects: within the grace.
	c1.DropTransport()
	if err := c1.WaitReconnect(clientWait); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.WaitConnect(clientWait); err != nil {
		t.Fatal(err)
	}
	// Both of gina's sockets go, then one comes back on B within the grace.
	c1.Disconnect()
	c2.Disconnect()
	if _, err := c2.WaitDisconnect(clientWait); err != nil {
		t.Fatal(err)
	}
	c2.Reconnect()
	if _, err := c2.WaitConnect(clientWait); err != nil {
		t.Fatal(err)
	}
	time.Sleep(presClusterGrace + time.Second) // the grace passing is what is tested
	if b.count("offline gina") != 0 || b.count("online gina") != 1 || b.count("online hal") != 1 {
		t.Fatalf("a blip within the grace was reported: %s", b)
	}

	// All of gina's sockets gone past the grace: one offline, from one node.
	c2.Disconnect()
	gone := time.Now()
	at := b.wait(t, "offline gina", clientWait)
	if d := at.Sub(gone); d < presClusterGrace-200*time.Millisecond {
		t.Fatalf("offline %v after the last socket left, before the grace %v", d, presClusterGrace)
	}
	time.Sleep(presClusterGrace + time.Second) // a second offline would come by now
	if b.count("offline gina") != 1 || b.count("online gina") != 1 {
		t.Fatalf("want exactly one online and one offline for gina: %s", b)
	}
	waitUsers(t, a, "team", `["hal"]`)

	// Node B dies holding hal's only socket.
	presClient(t, drv, a, "ivan-a", "ivan", "team")
	b.wait(t, "online ivan", clientWait)
	_ = nodeB.Cmd.Process.Kill()
	killed := time.Now()
	<-nodeB.Done()
	at = b.wait(t, "offline hal", redispresence.DefaultNodeTTL+presClusterGrace+15*time.Second)
	if d := at.Sub(killed); d < redispresence.DefaultNodeTTL-6*time.Second {
		// The last heartbeat came at most a third of the TTL before the kill.
		t.Fatalf("offline %v after the kill, before the node TTL (%v) could pass", d, redispresence.DefaultNodeTTL)
	}
	time.Sleep(presClusterGrace + time.Second)
	if b.count("offline hal") != 1 || b.count("online hal") != 1 || b.count("offline ivan") != 0 {
		t.Fatalf("after the kill: %s", b)
	}
	waitUsers(t, a, "team", `["ivan"]`)
	t.Logf("calls: %s; offline of the killed node's user %v after the kill", b, at.Sub(killed).Round(100*time.Millisecond))
}
