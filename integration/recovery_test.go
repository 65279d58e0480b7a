//go:build live

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Timings of the recovery config: a heartbeat of 1s in all (so the server
// notices a dead polling client quickly), a window of 3s, a presence
// grace of 2s.
const (
	recWindow = 3 * time.Second
	recGrace  = 2 * time.Second
	// recHeartbeat is ping_interval + ping_timeout: how long the server
	// takes to see that a polling client whose requests stopped is gone.
	recHeartbeat = time.Second
)

// cutProxy is a TCP proxy on loopback in front of Caddy whose connections
// the test cuts abruptly (RST, nothing sent), as a network that vanishes;
// while paused it accepts and drops new connections at once, as a network
// that is still gone.
type cutProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // the listener closed: the test is over
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			reset(c)
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies one way until either side ends, then closes both.
func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// reset closes c with an RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// cut resets every proxied connection, both sides.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
}

// retarget sends the next connections to target (another node, as a
// round-robin balancer would).
func (p *cutProxy) retarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *cutProxy) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.mu.Unlock()
}

// recBackend is the webhook backend: it verifies every signature and
// records the calls by hook.
type recBackend struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	calls  []map[string]any
	notify chan struct{}
}

func newRecBackend(t *testing.T) *recBackend {
	b := &recBackend{t: t, notify: make(chan struct{}, 1)}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if err := webhook.VerifyRequest([]byte(hookITSecret), r, raw, time.Minute); err != nil {
			t.Errorf("backend %s: %v", r.URL.Path, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("backend %s: %v", r.URL.Path, err)
		}
		if h := r.Header.Get(webhook.HookHeader); h != body["type"] {
			t.Errorf("backend: hook header %q, body type %v", h, body["type"])
		}
		b.mu.Lock()
		b.calls = append(b.calls, body)
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

// matching lists the calls for which keep is true.
func (b *recBackend) matching(keep func(map[string]any) bool) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, c := range b.calls {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// waitFor waits until a call matches and returns it.
func (b *recBackend) waitFor(what string, keep func(map[string]any) bool) map[string]any {
	b.t.Helper()
	deadline := time.After(clientWait)
	for {
		if got := b.matching(keep); len(got) > 0 {
			return got[len(got)-1]
		}
		select {
		case <-b.notify:
		case <-deadline:
			b.t.Fatalf("backend: no %s within %v", what, clientWait)
		}
	}
}

// presence lists the presence calls as "online alice".
func (b *recBackend) presence() []string {
	var out []string
	for _, c := range b.matching(func(c map[string]any) bool { return c["type"] == "online" || c["type"] == "offline" }) {
		out = append(out, fmt.Sprint(c["type"], " ", c["user"]))
	}
	return out
}

// startRecoveryCaddy runs Caddy with recovery, presence, the webhook and
// the emit API, and returns its base URL.
func startRecoveryCaddy(t *testing.T, backend string) string {
	t.Helper()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s	auto_https off
}

http://127.0.0.1:%d {
	root * testdata/www
	socketio {
		ping_interval 500ms
		ping_timeout 500ms
		auth optional {
			secret {env.JWT_SECRET}
		}
		join room-{socketio.query.room}
		emit welcome "hello {socketio.claims.sub}"
		recovery {
			max_disconnection_duration %s
		}
		presence {
			webhook %s/presence
			grace %s
		}
		webhook {
			secret %s
			connect %s/connect
			disconnect %s/disconnect
		}
	}
	socketio_api /internal/socketio/* {
		secrets %s %s
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, recWindow, backend, recGrace, hookITSecret, backend, backend, apiITSecretOld, apiITSecretNew)
	return startCaddyConfig(t, sc, cfg).BaseURL
}

func userToken(t *testing.T, sub string) string {
	return testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": sub})
}

// recClient connects a socket.io-client 4.8 through its own proxy, with
// quick reconnects.
func recClient(t *testing.T, drv *nodeclient.Driver, base, id, transport, sub, room string) (*nodeclient.Client, *cutProxy, nodeclient.Event) {
	t.Helper()
	p := newCutProxy(t, strings.TrimPrefix(base, "http://"))
	c := drv.Connect(id, "4", p.URL()+"?room="+room, map[string]any{
		"transports":           []string{transport},
		"auth":                 map[string]any{"token": userToken(t, sub)},
		"reconnectionDelay":    100,
		"reconnectionDelayMax": 200,
		"randomizationFactor":  0,
	})
	ev, err := c.WaitConnectEvent(clientWait)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if ev.Recovered {
		t.Fatalf("%s: a first connection says recovered", id)
	}
	if _, err := c.WaitEvent("welcome", clientWait); err != nil { // the first offset
		t.Fatalf("%s: %v", id, err)
	}
	return c, p, ev
}

// drop cuts a client's transport and waits until the server has kept its
// session (the disconnect hook says recoverable); a polling client is
// kept off the network until the server's heartbeat noticed, as the
// server only learns a polling client is gone from it.
func drop(t *testing.T, b *recBackend, p *cutProxy, sid, transport string) {
	t.Helper()
	p.pause(true)
	p.cut()
	if transport == "polling" {
		time.Sleep(recHeartbeat) // the heartbeat's timer is what the server waits on
	}
	b.waitFor("recoverable disconnect of "+sid, func(c map[string]any) bool {
		return c["type"] == "disconnect" && c["socket"] == sid && c["recoverable"] == true
	})
}

// waitBack waits for the client's next connect, past the connect_errors
// of the reconnect attempts made while its network was gone.
func waitBack(t *testing.T, c *nodeclient.Client, d time.Duration) nodeclient.Event {
	t.Helper()
	ev, err := c.Wait(d, "connect", func(e nodeclient.Event) bool { return e.Type == "connect" })
	if err != nil {
		t.Fatalf("%s: %v", c.ID(), err)
	}
	return ev
}

// marker emits a marker to everyone and waits until c has it: what was
// sent to c before it has arrived.
func marker(t *testing.T, base string, c *nodeclient.Client, label string) {
	t.Helper()
	apiITPost(t, base, "emit", `{"event":"marker","args":["`+label+`"]}`)
	for {
		args, err := c.WaitEvent("marker", clientWait)
		if err != nil {
			t.Fatalf("%s: marker %s: %v", c.ID(), label, err)
		}
		if len(args) > 0 && args[0] == label {
			return
		}
	}
}

// TestRecoveryLive runs socket.io-client 4.8 through a proxy that cuts its
// transport, WebSocket and polling, against a real Caddy.
func TestRecoveryLive(t *testing.T) {
	drv := nodeclient.Start(t)
	b := newRecBackend(t)
	base := startRecoveryCaddy(t, b.srv.URL)
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			t.Run("cut and back", func(t *testing.T) { testRecoveredAfterCut(t, drv, b, base, transport, true) })
			t.Run("back before the server noticed", func(t *testing.T) { testRecoveredAfterCut(t, drv, b, base, transport, false) })
			t.Run("deliberate disconnect", func(t *testing.T) { testNotRecoveredAfterDisconnect(t, drv, base, transport) })
			t.Run("after the window", func(t *testing.T) { testNotRecoveredAfterWindow(t, drv, b, base, transport) })
		})
	}
	t.Run("bogus pid and offset", func(t *testing.T) {
		c := drv.Connect("bogus", "4", base, map[string]any{
			"transports": []string{"websocket"},
			"auth":       map[string]any{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": "zzzz", "token": userToken(t, "mallory")},
		})
		ev, err := c.WaitConnectEvent(clientWait)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Recovered || len(ev.Sid) != 20 {
			t.Fatalf("bogus pid: %+v, want a new session", ev)
		}
	})
}

// testRecoveredAfterCut: recovered, same id, still in its room; the events
// of the gap exactly once and in order; volatile ones and ones with acks
// not replayed; the hooks say recoverable, then recovered. With noticed,
// the gap starts once the server has seen the transport go; without, the
// client is back before that (a polling client within the heartbeat):
// the server closes the old socket when the client proves its pid.
func testRecoveredAfterCut(t *testing.T, drv *nodeclient.Driver, b *recBackend, base, transport string, noticed bool) {
	room := fmt.Sprintf("cut-%s-%v", transport, noticed)
	c, p, first := recClient(t, drv, base, room, transport, "dana-"+room, room)
	if noticed {
		drop(t, b, p, first.Sid, transport)
	} else {
		p.pause(true)
		p.cut()
	}
	for i := 1; i <= 5; i++ {
		apiITPost(t, base, "emit", fmt.Sprintf(`{"to":["room-%s"],"event":"gap","args":[%d]}`, room, i))
	}
	apiITPost(t, base, "emit", `{"to":["room-`+room+`"],"event":"gap","args":["volatile"],"volatile":true}`)
	out := apiITPost(t, base, "emit", `{"to":["room-`+room+`"],"event":"gap","args":["with ack"],"ack":true,"timeout":"100ms"}`)
	if r, _ := out["replies"].([]any); len(r) != 0 && noticed {
		t.Fatalf("an ack'd emit reached a socket during the gap: %v", out)
	}
	p.pause(false)
	ev := waitBack(t, c, clientWait)
	if !ev.Recovered || ev.Sid != first.Sid {
		t.Fatalf("back as %+v, want recovered as %s", ev, first.Sid)
	}
	marker(t, base, c, "after-"+room)
	var got []any
	var offsets []string
	for _, args := range c.EventsNamed("gap") {
		got = append(got, args[0])
		if len(args) != 2 {
			t.Fatalf("gap event %v: want its argument and an offset", args)
		}
		offsets = append(offsets, args[1].(string))
	}
	if want := []any{1.0, 2.0, 3.0, 4.0, 5.0}; !slices.Equal(got, want) {
		t.Fatalf("gap events %v, want %v exactly once, in order", got, want)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(offsets)))) != len(offsets) {
		t.Fatalf("offsets %q: not one per event", offsets) // opaque strings: distinct, not sortable
	}
	// Still in its room: an event to the room reaches it live.
	apiITPost(t, base, "emit", `{"to":["room-`+room+`"],"event":"live","args":[1]}`)
	if _, err := c.WaitEvent("live", clientWait); err != nil {
		t.Fatalf("the recovered socket is not in its room: %v", err)
	}
	rc := b.waitFor("recovered connect", func(call map[string]any) bool {
		return call["type"] == "connect" && call["socket"] == first.Sid && call["recovered"] == true
	})
	if a, _ := rc["auth"].(map[string]any); a["pid"] != nil || a["offset"] != nil {
		t.Fatalf("the connect hook got the recovery fields: %v", a)
	}
	c.Disconnect()
}

// testNotRecoveredAfterDisconnect: a client's own disconnect() ends the
// session: connecting again is a new one.
func testNotRecoveredAfterDisconnect(t *testing.T, drv *nodeclient.Driver, base, transport string) {
	c, _, first := recClient(t, drv, base, "leave-"+transport, transport, "erin", "leave")
	c.Disconnect()
	if _, err := c.WaitDisconnect(clientWait); err != nil {
		t.Fatal(err)
	}
	c.Reconnect()
	ev, err := c.WaitConnectEvent(clientWait)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Recovered || ev.Sid == first.Sid {
		t.Fatalf("after disconnect(): %+v, want a new session (was %s)", ev, first.Sid)
	}
	c.Disconnect()
}

// testNotRecoveredAfterWindow: a client back after the window gets a new
// session.
func testNotRecoveredAfterWindow(t *testing.T, drv *nodeclient.Driver, b *recBackend, base, transport string) {
	c, p, first := recClient(t, drv, base, "late-"+transport, transport, "fred", "late")
	drop(t, b, p, first.Sid, transport)
	time.Sleep(recWindow + 500*time.Millisecond) // the window passing is what is tested
	p.pause(false)
	ev := waitBack(t, c, clientWait)
	if ev.Recovered || ev.Sid == first.Sid {
		t.Fatalf("back after the window: %+v, want a new session (was %s)", ev, first.Sid)
	}
	c.Disconnect()
}
