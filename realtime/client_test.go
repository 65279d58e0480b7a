package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// These tests drive the official socket.io-client from npm (4.8.x and 3.1.3)
// through internal/nodeclient against this package's Server, so that what we
// check is what real clients see, not our reading of the protocol.

// clientWait bounds every wait on a client or the server; generous because
// the tests run under -race on two cores next to a Node process.
const clientWait = 10 * time.Second

// clientVersions are the socket.io-client major versions we support.
var clientVersions = []string{"4", "3"}

// clientEnv is one scenario: a fresh Server behind httptest, with the
// standard handlers of standardHandlers on "/" and "/admin", and the driver
// shared by every scenario of the test.
type clientEnv struct {
	t       *testing.T
	d       *nodeclient.Driver
	version string
	srv     *Server
	url     string // "http://127.0.0.1:PORT", no trailing slash

	mu      sync.Mutex
	clients []*nodeclient.Client
}

// startClientEnv starts a server for one scenario. extra runs after the
// standard handlers are installed. The cleanup disconnects the scenario's
// clients and makes the driver forget them, closes the server and checks
// that none of its goroutines is left.
func startClientEnv(t *testing.T, d *nodeclient.Driver, version string, extra func(*Server)) *clientEnv {
	t.Helper()
	return startClientEnvWith(t, d, version, nil, extra)
}

// startClientEnvWith is startClientEnv with options changed by opts first.
func startClientEnvWith(t *testing.T, d *nodeclient.Driver, version string, opts func(*Options), extra func(*Server)) *clientEnv {
	t.Helper()
	leaks := testkit.TrackGoroutines(realtimeCode)
	o := Options{
		Engine: engineio.Options{
			PingInterval: time.Second,
			PingTimeout:  3 * time.Second,
		},
		ConnectTimeout: 5 * time.Second,
	}
	if opts != nil {
		opts(&o)
	}
	srv := NewServer(o)
	for _, name := range []string{"/", "/admin"} {
		standardHandlers(srv.Of(name))
	}
	if extra != nil {
		extra(srv)
	}
	ts := httptest.NewServer(srv)
	e := &clientEnv{t: t, d: d, version: version, srv: srv, url: ts.URL}
	t.Cleanup(func() {
		e.disconnectClients()
		d.CloseAll()
		srv.Close()
		ts.Close()
		leaks.Check(t, 5*time.Second)
	})
	return e
}

// disconnectClients disconnects the scenario's connected clients and waits
// (briefly) for each to report it, so that what they still had in flight is
// buffered before CloseAll makes the driver forget them.
func (e *clientEnv) disconnectClients() {
	e.mu.Lock()
	clients := e.clients
	e.mu.Unlock()
	var live []*nodeclient.Client
	for _, c := range clients {
		connected := false
		for _, ev := range c.Events() {
			switch ev.Type {
			case "connect":
				connected = true
			case "disconnect", "connect_error":
				connected = false
			}
		}
		if connected {
			c.Disconnect()
			live = append(live, c)
		}
	}
	for _, c := range live {
		_, _ = c.Wait(time.Second, "client disconnect", func(ev nodeclient.Event) bool {
			return ev.Type == "disconnect" && ev.Reason == "io client disconnect"
		})
	}
}

// standardHandlers installs the events every scenario may use:
//   - "echo": emits "echo" back with the same arguments;
//   - "echo-ack": acknowledges with the same arguments;
//   - "whoami": acknowledges with the socket's namespace, id, session id,
//     transport and auth payload;
//   - "join": joins the room named by the first argument, then acknowledges;
//   - "shout": broadcasts "heard" with the other arguments to the room named
//     by the first, without the sender.
func standardHandlers(n *Namespace) {
	n.OnConnection(func(s *Socket) {
		s.On("echo", func(s *Socket, args []any, _ AckFunc) { _ = s.Emit("echo", args...) })
		s.On("echo-ack", func(_ *Socket, args []any, ack AckFunc) {
			if ack != nil {
				_ = ack(args...)
			}
		})
		s.On("whoami", func(s *Socket, _ []any, ack AckFunc) {
			if ack == nil {
				return
			}
			auth := s.Handshake().Auth
			if auth == nil {
				auth = map[string]any{}
			}
			_ = ack(map[string]any{
				"nsp":       s.Namespace().Name(),
				"sid":       s.ID(),
				"session":   s.SessionID(),
				"transport": s.Transport(),
				"auth":      auth,
			})
		})
		s.On("join", func(s *Socket, args []any, ack AckFunc) {
			if room, ok := firstString(args); ok {
				s.Join(room)
			}
			if ack != nil {
				_ = ack()
			}
		})
		s.On("shout", func(s *Socket, args []any, _ AckFunc) {
			if room, ok := firstString(args); ok {
				_ = s.To(room).Emit("heard", args[1:]...)
			}
		})
	})
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}

// connect creates a client of the scenario's version on namespace nsp ("" or
// "/admin"); name only has to be unique within the scenario.
func (e *clientEnv) connect(name, nsp string, opts map[string]any) *nodeclient.Client {
	c := e.d.Connect(e.t.Name()+"/"+name, e.version, e.url+nsp, opts)
	e.mu.Lock()
	e.clients = append(e.clients, c)
	e.mu.Unlock()
	return c
}

// mustConnect connects and waits for the connect event.
func (e *clientEnv) mustConnect(name, nsp string, opts map[string]any) (*nodeclient.Client, nodeclient.Event) {
	e.t.Helper()
	c := e.connect(name, nsp, opts)
	ev, err := c.WaitConnectEvent(clientWait)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return c, ev
}

// serverSocket returns the server's socket for a client's socket id.
func (e *clientEnv) serverSocket(nsp, sid string) *Socket {
	e.t.Helper()
	if nsp == "" {
		nsp = "/"
	}
	s, ok := e.srv.Of(nsp).Socket(sid)
	if !ok {
		e.t.Fatalf("server has no socket %s in %s", sid, nsp)
	}
	return s
}

// whoami asks the server how it sees the client.
func whoami(t *testing.T, c *nodeclient.Client) map[string]any {
	t.Helper()
	args, err := c.EmitWithAck(clientWait, "whoami")
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 1 {
		t.Fatalf("whoami answered %v", args)
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		t.Fatalf("whoami answered %T %v", args[0], args[0])
	}
	return m
}

// roundTrip checks one event each way through the echo handler.
func roundTrip(t *testing.T, c *nodeclient.Client, args ...any) {
	t.Helper()
	c.Emit("echo", args...)
	got, err := c.WaitEvent("echo", clientWait)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("echo: got %#v, want %#v", got, args)
	}
}

// assertNoEvent fails if c received any event named in names (every event
// when names is empty). Call it after a round trip that would have carried
// the unwanted event.
func assertNoEvent(t *testing.T, c *nodeclient.Client, names ...string) {
	t.Helper()
	for _, ev := range c.Events() {
		if ev.Type != "event" {
			continue
		}
		if len(names) == 0 {
			t.Fatalf("client %s received event %q %v, want none", c.ID(), ev.Name, ev.Args)
		}
		for _, n := range names {
			if ev.Name == n {
				t.Fatalf("client %s received %q %v, want none", c.ID(), ev.Name, ev.Args)
			}
		}
	}
}

func TestRealClients(t *testing.T) {
	d := nodeclient.Start(t)
	t.Logf("socket.io-client versions: %v", d.Versions())
	scenarios := []struct {
		name string
		run  func(t *testing.T, d *nodeclient.Driver, version string)
	}{
		{"polling only", testClientPolling},
		{"websocket only", testClientWebSocket},
		{"upgrade loses nothing", testClientUpgrade},
		{"auth payload", testClientAuth},
		{"refused connect", testClientRefused},
		{"namespaces multiplexed", testClientNamespaces},
		{"acks", testClientAcks},
		{"binary", testClientBinary},
		{"rooms", testClientRooms},
		{"server disconnect", testClientServerDisconnect},
		{"disconnect and close", testClientDisconnectClose},
	}
	for _, v := range clientVersions {
		t.Run("v"+v, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, d, v) })
			}
		})
	}
}

func testClientPolling(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, nil)
	c, ev := e.mustConnect("a", "", map[string]any{"transports": []string{"polling"}})
	if ev.Transport != "polling" {
		t.Fatalf("connected over %q, want polling", ev.Transport)
	}
	roundTrip(t, c, "hello", 1.0, map[string]any{"x": []any{true, nil}})
	// Let a few heartbeats and long polls go by: the transport must stay.
	time.Sleep(1500 * time.Millisecond)
	roundTrip(t, c, "again")
	if who := whoami(t, c); who["transport"] != "polling" || who["sid"] != ev.Sid {
		t.Fatalf("server sees %v, want polling and sid %s", who, ev.Sid)
	}
	for _, ev := range c.Events() {
		if ev.Type == "upgrade" || ev.Type == "disconnect" {
			t.Fatalf("polling-only client got %s %s", ev.Type, ev.Transport+ev.Reason)
		}
	}
}

func testClientWebSocket(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, nil)
	c, ev := e.mustConnect("a", "", map[string]any{"transports": []string{"websocket"}})
	if ev.Transport != "websocket" {
		t.Fatalf("connected over %q, want websocket", ev.Transport)
	}
	roundTrip(t, c, "hello", 2.5, []any{"nested", map[string]any{"k": "v"}})
	if who := whoami(t, c); who["transport"] != "websocket" || who["sid"] != ev.Sid {
		t.Fatalf("server sees %v, want websocket and sid %s", who, ev.Sid)
	}
	if s := e.serverSocket("/", ev.Sid); s.Transport() != "websocket" {
		t.Fatalf("server socket transport %q", s.Transport())
	}
}

// The upgrade scenario: a burst queued during the connect, then ticks
// spread over the time the upgrade takes, until the server has sent
// upgradeTicksAfter of them over the websocket (at most upgradeMaxTicks).
const (
	upgradeBurst      = 200
	upgradeTickEvery  = 2 * time.Millisecond
	upgradeTicksAfter = 20
	upgradeMaxTicks   = 2000
	upgradeClientSeq  = 100
)

func testClientUpgrade(t *testing.T, d *nodeclient.Driver, v string) {
	var (
		mu             sync.Mutex
		seqSeen        []int
		tickTransports []string // transport of the session when each tick was sent
	)
	e := startClientEnv(t, d, v, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			s.On("seq", func(_ *Socket, args []any, _ AckFunc) {
				n := -1
				if len(args) == 1 {
					if num, ok := args[0].(json.Number); ok {
						if i, err := num.Int64(); err == nil {
							n = int(i)
						}
					}
				}
				mu.Lock()
				seqSeen = append(seqSeen, n)
				mu.Unlock()
			})
			s.On("seq-done", func(_ *Socket, _ []any, ack AckFunc) {
				mu.Lock()
				n := len(seqSeen)
				mu.Unlock()
				_ = ack(n)
			})
			for i := range upgradeBurst {
				if err := s.Emit("n", i); err != nil {
					return
				}
			}
			// Ticks keep flowing while the client probes and switches
			// transports; the goroutine ends with the socket or the count.
			go func() {
				n, onWS := 0, 0
				for ; n < upgradeMaxTicks && onWS < upgradeTicksAfter; n++ {
					tr := s.Transport()
					if tr == engineio.TransportWebSocket {
						onWS++
					}
					mu.Lock()
					tickTransports = append(tickTransports, tr)
					mu.Unlock()
					if s.Emit("tick", n) != nil {
						return
					}
					time.Sleep(upgradeTickEvery)
				}
				_ = s.Emit("ticks-done", n)
			}()
		})
	})
	// The client opens with polling and probes the websocket at once; 4.8
	// often finishes the upgrade before the CONNECT answer arrives, so the
	// transport at "connect" may be either.
	c, _ := e.mustConnect("a", "", nil)
	// Client to server while the upgrade runs.
	for i := range upgradeClientSeq {
		c.Emit("seq", i)
	}
	if err := c.WaitUpgrade(clientWait); err != nil {
		t.Fatal(err)
	}
	done, err := c.WaitEvent("ticks-done", clientWait)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 {
		t.Fatalf("ticks-done %v", done)
	}
	ticks, _ := done[0].(float64)
	mu.Lock()
	t.Logf("ticks sent per transport: %v", countStrings(tickTransports))
	if len(tickTransports) == 0 || tickTransports[0] != engineio.TransportPolling {
		t.Logf("the upgrade finished before the ticks began: this run did not cross it")
	}
	mu.Unlock()
	for _, stream := range []struct {
		name string
		n    int
	}{{"n", upgradeBurst}, {"tick", int(ticks)}} {
		for i := range stream.n {
			args, err := c.WaitEvent(stream.name, clientWait)
			if err != nil {
				t.Fatalf("%s %d: %v", stream.name, i, err)
			}
			if len(args) != 1 || args[0] != float64(i) {
				t.Fatalf("%s number %d arrived as %v", stream.name, i, args)
			}
		}
	}
	got, err := c.EmitWithAck(clientWait, "seq-done")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != float64(upgradeClientSeq) {
		t.Fatalf("server counted %v seq events, want %d", got, upgradeClientSeq)
	}
	mu.Lock()
	for i, n := range seqSeen {
		if n != i {
			t.Errorf("server received seq %d at position %d", n, i)
			break
		}
	}
	mu.Unlock()
	// Both ways after the upgrade, over the websocket.
	roundTrip(t, c, "after upgrade", []byte{1, 2, 3})
	if who := whoami(t, c); who["transport"] != "websocket" {
		t.Fatalf("server sees transport %v after upgrade", who["transport"])
	}
	for _, ev := range c.Events() {
		if ev.Type == "disconnect" {
			t.Fatalf("client disconnected during the upgrade: %s", ev.Reason)
		}
	}
}

func countStrings(list []string) map[string]int {
	out := make(map[string]int)
	for _, s := range list {
		out[s]++
	}
	return out
}

func testClientAuth(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			auth := s.Handshake().Auth
			if auth == nil {
				auth = map[string]any{}
			}
			_ = s.Emit("auth", auth)
		})
	})
	for _, tr := range []string{"polling", "websocket"} {
		c, _ := e.mustConnect("auth-"+tr, "", map[string]any{
			"transports": []string{tr},
			"auth":       map[string]any{"token": "abc"},
		})
		got, err := c.WaitEvent("auth", clientWait)
		if err != nil {
			t.Fatal(err)
		}
		if want := []any{map[string]any{"token": "abc"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: server saw auth %v, want %v", tr, got, want)
		}
	}
	c, _ := e.mustConnect("no-auth", "", nil)
	if got, err := c.WaitEvent("auth", clientWait); err != nil || !reflect.DeepEqual(got, []any{map[string]any{}}) {
		t.Fatalf("without auth the server saw %v, %v; want {}", got, err)
	}
}

func testClientRefused(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, func(srv *Server) {
		srv.Of("/").Use(func(s *Socket) error {
			// Join first: a refused socket must leave its rooms again.
			s.Join("everyone")
			if s.Handshake().Auth["token"] != "good" {
				return &ConnectError{Message: "not authorized", Data: map[string]any{"reason": "bad token"}}
			}
			return nil
		})
		srv.Of("/").OnConnection(func(s *Socket) { _ = s.Emit("welcome") })
	})
	// The refused "/" socket and a probe on "/admin" share one Engine.IO
	// connection, so the probe's event is delivered after anything the
	// server might wrongly have sent to the refused socket.
	shared := map[string]any{"forceNew": false, "reconnection": false}
	bad := e.connect("bad", "", map[string]any{"forceNew": false, "reconnection": false, "auth": map[string]any{"token": "bad"}})
	_, err := bad.WaitConnect(clientWait)
	var ce *nodeclient.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("WaitConnect = %v, want a connect_error", err)
	}
	if ce.Message != "not authorized" || !reflect.DeepEqual(ce.Data, map[string]any{"reason": "bad token"}) {
		t.Fatalf("connect_error message %q data %#v", ce.Message, ce.Data)
	}
	probe, _ := e.mustConnect("probe", "/admin", shared)
	if e.srv.Of("/").Len() != 0 {
		t.Fatalf("namespace / has %d sockets after the refusal", e.srv.Of("/").Len())
	}
	if n := e.srv.Of("/").Rooms()["everyone"]; n != 0 {
		t.Fatalf("room of the refused socket has %d members", n)
	}
	_ = e.srv.Of("/").Emit("news", "to all of /")
	_ = e.srv.Of("/").To("everyone").Emit("news", "to the room")
	_ = e.srv.Of("/admin").Emit("probe")
	if _, err := probe.WaitEvent("probe", clientWait); err != nil {
		t.Fatal(err)
	}
	if who := whoami(t, probe); who["session"] == "" {
		t.Fatalf("probe whoami %v", who)
	}
	assertNoEvent(t, bad)
	for _, ev := range bad.Events() {
		if ev.Type == "connect" {
			t.Fatalf("refused client got connect %s", ev.Sid)
		}
	}
}

func testClientNamespaces(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, func(srv *Server) {
		for _, name := range []string{"/", "/admin"} {
			srv.Of(name).OnConnection(func(s *Socket) { _ = s.Emit("hello", s.Namespace().Name(), s.ID()) })
		}
	})
	opts := map[string]any{"forceNew": false}
	main, mainEv := e.mustConnect("main", "", opts)
	admin, adminEv := e.mustConnect("admin", "/admin", opts)
	if mainEv.Sid == "" || mainEv.Sid == adminEv.Sid {
		t.Fatalf("socket ids %q and %q, want two different ids", mainEv.Sid, adminEv.Sid)
	}
	for _, tc := range []struct {
		c   *nodeclient.Client
		nsp string
		sid string
	}{{main, "/", mainEv.Sid}, {admin, "/admin", adminEv.Sid}} {
		got, err := tc.c.WaitEvent("hello", clientWait)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, []any{tc.nsp, tc.sid}) {
			t.Fatalf("%s hello = %v, want [%s %s]", tc.nsp, got, tc.nsp, tc.sid)
		}
		if who := whoami(t, tc.c); who["nsp"] != tc.nsp || who["sid"] != tc.sid {
			t.Fatalf("%s whoami = %v", tc.nsp, who)
		}
	}
	// One Engine.IO connection carries both sockets.
	mainSess := e.serverSocket("/", mainEv.Sid).SessionID()
	if adminSess := e.serverSocket("/admin", adminEv.Sid).SessionID(); mainSess != adminSess {
		t.Fatalf("sockets on sessions %s and %s, want one multiplexed session", mainSess, adminSess)
	}
	if n := e.srv.ConnCount(); n != 1 {
		t.Fatalf("%d Engine.IO connections, want 1", n)
	}
	// Events stay in their namespace.
	roundTrip(t, main, "for main")
	roundTrip(t, admin, "for admin")
	_ = e.srv.Of("/admin").Emit("admin-only", 1)
	if _, err := admin.WaitEvent("admin-only", clientWait); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, main, "after admin-only")
	if n := len(main.EventsNamed("echo")); n != 2 {
		t.Fatalf("main got %d echoes, want 2", n)
	}
	if n := len(admin.EventsNamed("echo")); n != 1 {
		t.Fatalf("admin got %d echoes, want 1", n)
	}
	assertNoEvent(t, main, "admin-only")
	// Leaving one namespace keeps the other.
	admin.Disconnect()
	if reason, err := admin.WaitDisconnect(clientWait); err != nil || reason != "io client disconnect" {
		t.Fatalf("admin disconnect = %q, %v", reason, err)
	}
	roundTrip(t, main, "main still there")
	if n := e.srv.Of("/admin").Len(); n != 0 {
		t.Fatalf("/admin still has %d sockets", n)
	}
}

func testClientAcks(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, nil)
	c, ev := e.mustConnect("a", "", nil)

	// Client to server.
	got, err := c.EmitWithAck(clientWait, "echo-ack", "x", 1.0, map[string]any{"y": []any{"z"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{"x", 1.0, map[string]any{"y": []any{"z"}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ack = %v, want %v", got, want)
	}
	got, err = c.EmitWithAck(clientWait, "echo-ack")
	if err != nil || len(got) != 0 {
		t.Fatalf("empty ack = %v, %v", got, err)
	}

	// Server to client: the driver echoes by default, or replies as told.
	s := e.serverSocket("/", ev.Sid)
	emit := func(timeout time.Duration, args ...any) ([]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return s.EmitWithAck(ctx, "question", args...)
	}
	// The server decodes numbers as json.Number.
	if got, err := emit(clientWait, "q", 7); err != nil || !reflect.DeepEqual(got, []any{"q", json.Number("7")}) {
		t.Fatalf("server EmitWithAck = %#v, %v", got, err)
	}
	c.SetAckReply("question", []any{"answer", map[string]any{"ok": true}})
	// The driver reads commands in order: this ack proves the rule is set.
	if _, err := c.EmitWithAck(clientWait, "echo-ack"); err != nil {
		t.Fatal(err)
	}
	if got, err := emit(clientWait, "q"); err != nil || !reflect.DeepEqual(got, []any{"answer", map[string]any{"ok": true}}) {
		t.Fatalf("server EmitWithAck with reply rule = %#v, %v", got, err)
	}

	// Unanswered: the server's context deadline ends the wait.
	c.SetAckIgnore("question")
	if _, err := c.EmitWithAck(clientWait, "echo-ack"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got, err := emit(300*time.Millisecond, "q"); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("unanswered EmitWithAck = %v, %v; want ErrAckTimeout", got, err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("ack timeout after %v, want about 300ms", el)
	}
	// The question did reach the client, asking for an ack.
	var asked int
	for _, ev := range c.Events() {
		if ev.Type == "event" && ev.Name == "question" {
			if !ev.AckWanted {
				t.Fatalf("question without ack request: %v", ev.Args)
			}
			asked++
		}
	}
	if asked != 3 {
		t.Fatalf("client saw %d questions, want 3", asked)
	}
	// Still connected and working after the timeout.
	roundTrip(t, c, "after timeout")
	// A pending ack fails with ErrSocketClosed when the socket goes.
	errc := make(chan error, 1)
	if err := s.EmitWithAckFunc(0, "question", nil, func(_ []any, err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitEvent("question", clientWait); err != nil {
		t.Fatal(err)
	}
	s.Disconnect(false)
	select {
	case err := <-errc:
		if !errors.Is(err, ErrSocketClosed) {
			t.Fatalf("pending ack after disconnect: %v, want ErrSocketClosed", err)
		}
	case <-time.After(clientWait):
		t.Fatal("pending ack not failed after disconnect")
	}
	if reason, err := c.WaitDisconnect(clientWait); err != nil || reason != "io server disconnect" {
		t.Fatalf("disconnect = %q, %v; want io server disconnect", reason, err)
	}
}

func testClientBinary(t *testing.T, d *nodeclient.Driver, v string) {
	type received struct {
		event string
		args  []any
	}
	seen := make(chan received, 16)
	e := startClientEnv(t, d, v, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			s.OnAny(func(_ *Socket, event string, args []any, _ AckFunc) {
				select {
				case seen <- received{event, args}:
				default:
				}
			})
		})
	})
	bytes1 := []byte{0, 1, 2, 255}
	bytes2 := bytes.Repeat([]byte{0xab}, 1000)
	payload := func() []any {
		return []any{
			map[string]any{"a": []any{bytes1, map[string]any{"b": bytes2}}},
			"text",
			[]byte{},
			bytes1,
		}
	}
	checkServer := func(t *testing.T, event string) {
		t.Helper()
		select {
		case r := <-seen:
			if r.event != event || !reflect.DeepEqual(r.args, payload()) {
				t.Fatalf("server received %q %#v, want %q %#v", r.event, r.args, event, payload())
			}
		case <-time.After(clientWait):
			t.Fatalf("server did not see %q", event)
		}
	}
	for _, tr := range []string{"polling", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			c, ev := e.mustConnect(tr, "", map[string]any{"transports": []string{tr}})
			// BINARY_EVENT both ways.
			c.Emit("echo", payload()...)
			checkServer(t, "echo")
			got, err := c.WaitEvent("echo", clientWait)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, payload()) {
				t.Fatalf("echo = %#v, want %#v", got, payload())
			}
			// BINARY_ACK from the server.
			got, err = c.EmitWithAck(clientWait, "echo-ack", payload()...)
			if err != nil {
				t.Fatal(err)
			}
			checkServer(t, "echo-ack")
			if !reflect.DeepEqual(got, payload()) {
				t.Fatalf("ack = %#v, want %#v", got, payload())
			}
			// BINARY_ACK from the client (the driver echoes the arguments).
			ctx, cancel := context.WithTimeout(context.Background(), clientWait)
			defer cancel()
			got, err = e.serverSocket("/", ev.Sid).EmitWithAck(ctx, "question", payload()...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, payload()) {
				t.Fatalf("client ack = %#v, want %#v", got, payload())
			}
			if q, err := c.WaitEvent("question", clientWait); err != nil || !reflect.DeepEqual(q, payload()) {
				t.Fatalf("client question = %#v, %v", q, err)
			}
		})
	}
}

func testClientRooms(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, nil)
	var clients []*nodeclient.Client
	for i, room := range []string{"r1", "r1", "r2"} {
		c, _ := e.mustConnect(fmt.Sprintf("c%d", i), "", nil)
		if _, err := c.EmitWithAck(clientWait, "join", room); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	sender, mate, other := clients[0], clients[1], clients[2]
	if got := e.srv.Of("/").Rooms(); got["r1"] != 2 || got["r2"] != 1 {
		t.Fatalf("rooms %v, want r1:2 r2:1", got)
	}

	// To r1, except the sender: only its room mate.
	sender.Emit("shout", "r1", "hi", []byte{7})
	if got, err := mate.WaitEvent("heard", clientWait); err != nil || !reflect.DeepEqual(got, []any{"hi", []byte{7}}) {
		t.Fatalf("mate heard %v, %v", got, err)
	}
	// The broadcast was queued for every recipient before the mate got it,
	// so these round trips come back after it would have.
	for _, c := range []*nodeclient.Client{sender, other} {
		roundTrip(t, c, "sync")
	}
	assertNoEvent(t, sender, "heard")
	assertNoEvent(t, other, "heard")

	// The same from the namespace: to r1, except the sender's id-room.
	senderSid := whoami(t, sender)["sid"].(string)
	if err := e.srv.Of("/").To("r1").Except(senderSid).Emit("heard-nsp", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := mate.WaitEvent("heard-nsp", clientWait); err != nil || !reflect.DeepEqual(got, []any{1.0}) {
		t.Fatalf("mate heard-nsp %v, %v", got, err)
	}
	for _, c := range []*nodeclient.Client{sender, other} {
		roundTrip(t, c, "sync")
		assertNoEvent(t, c, "heard-nsp")
	}

	// Namespace broadcast except r2.
	if err := e.srv.Of("/").Except("r2").Emit("news", "not for r2"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nodeclient.Client{sender, mate} {
		if got, err := c.WaitEvent("news", clientWait); err != nil || !reflect.DeepEqual(got, []any{"not for r2"}) {
			t.Fatalf("%s news = %v, %v", c.ID(), got, err)
		}
	}
	roundTrip(t, other, "sync")
	assertNoEvent(t, other, "news")

	// A socket's broadcast to everyone but r1 (and itself) reaches r2 only.
	s := e.serverSocket("/", whoami(t, other)["sid"].(string))
	if err := s.Except("r1").Emit("solo"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Of("/").To("r2").Emit("solo-check"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.WaitEvent("solo-check", clientWait); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nodeclient.Client{sender, mate} {
		roundTrip(t, c, "sync2")
	}
	for _, c := range clients {
		assertNoEvent(t, c, "solo")
	}
	// Counts: nobody got anything twice.
	if n := len(mate.EventsNamed("heard")); n != 1 {
		t.Fatalf("mate heard %d times", n)
	}
}

// reconnectFast makes the client's manager retry quickly after a lost
// connection.
var reconnectFast = map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 200}

func testClientServerDisconnect(t *testing.T, d *nodeclient.Driver, v string) {
	e := startClientEnv(t, d, v, nil)
	c, ev := e.mustConnect("a", "", reconnectFast)
	sid1 := ev.Sid
	if err := c.WaitUpgrade(clientWait); err != nil {
		t.Fatal(err)
	}

	// Namespace disconnect: the client does not come back by itself.
	e.serverSocket("/", sid1).Disconnect(false)
	if reason, err := c.WaitDisconnect(clientWait); err != nil || reason != "io server disconnect" {
		t.Fatalf("disconnect = %q, %v; want io server disconnect", reason, err)
	}
	c.Reconnect()
	ev, err := c.WaitConnectEvent(clientWait)
	if err != nil {
		t.Fatal(err)
	}
	sid2 := ev.Sid
	if sid2 == sid1 {
		t.Fatalf("same socket id %s after reconnect", sid1)
	}
	// (The client's manager closes its connection once its last socket is
	// disconnected, so this may be a new Engine.IO session.)
	sess2 := e.serverSocket("/", sid2).SessionID()
	roundTrip(t, c, "back")

	// The Engine.IO connection closes under the socket (Node's
	// socket.conn.Close(), a server-side network drop): the manager
	// reconnects by itself.
	e.serverSocket("/", sid2).conn.sess.Close("forced close")
	// "transport close", or "forced close" when socket.io-client 3 was
	// still polling: either way not a server disconnect, so it reconnects.
	if reason, err := c.WaitDisconnect(clientWait); err != nil || (reason != "transport close" && reason != "forced close") {
		t.Fatalf("disconnect = %q, %v; want transport close", reason, err)
	}
	if err := c.WaitReconnect(clientWait); err != nil {
		t.Fatal(err)
	}
	ev, err = c.WaitConnectEvent(clientWait)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sid == sid1 || ev.Sid == sid2 {
		t.Fatalf("socket id %s reused after the connection closed", ev.Sid)
	}
	if sess := e.serverSocket("/", ev.Sid).SessionID(); sess == sess2 {
		t.Fatalf("new connection reused session %s", sess)
	}
	roundTrip(t, c, "reconnected")
	if n := e.srv.Of("/").Len(); n != 1 {
		t.Fatalf("namespace has %d sockets, want 1", n)
	}
}

// testClientDisconnectClose checks Socket.Disconnect(true) as Node's
// socket.disconnect(true): every socket of the connection gets a DISCONNECT,
// then the connection closes, so the clients see "io server disconnect" and
// do not reconnect by themselves.
func testClientDisconnectClose(t *testing.T, d *nodeclient.Driver, v string) {
	reasons := make(chan string, 4)
	e := startClientEnv(t, d, v, func(srv *Server) {
		for _, name := range []string{"/", "/admin"} {
			srv.Of(name).OnConnection(func(s *Socket) {
				s.OnDisconnect(func(s *Socket, reason string) { reasons <- s.Namespace().Name() + " " + reason })
			})
		}
	})
	opts := map[string]any{"forceNew": false, "reconnectionDelay": 100, "reconnectionDelayMax": 200}
	main, mainEv := e.mustConnect("main", "", opts)
	admin, _ := e.mustConnect("admin", "/admin", opts)
	roundTrip(t, admin, "ready")

	e.serverSocket("/", mainEv.Sid).Disconnect(true)
	for _, c := range []*nodeclient.Client{main, admin} {
		if reason, err := c.WaitDisconnect(clientWait); err != nil || reason != "io server disconnect" {
			t.Errorf("%s: disconnect = %q, %v; want io server disconnect", c.ID(), reason, err)
		}
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case r := <-reasons:
			got[r] = true
		case <-time.After(clientWait):
			t.Fatalf("server disconnect handlers ran for %v only", got)
		}
	}
	if want := map[string]bool{"/ server namespace disconnect": true, "/admin server namespace disconnect": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("server disconnect reasons %v, want %v", got, want)
	}
	// Many reconnection delays later, neither client has tried to come back.
	time.Sleep(600 * time.Millisecond)
	for _, c := range []*nodeclient.Client{main, admin} {
		connects := 0
		for _, ev := range c.Events() {
			if strings.HasPrefix(ev.Type, "reconnect") {
				t.Errorf("%s: %s after disconnect(true)", c.ID(), ev.Type)
			}
			if ev.Type == "connect" {
				connects++
			}
		}
		if connects != 1 {
			t.Errorf("%s connected %d times, want once", c.ID(), connects)
		}
	}
	if n := e.srv.ConnCount(); n != 0 {
		t.Errorf("%d connections left after disconnect(true)", n)
	}
	// The application may bring a client back.
	main.Reconnect()
	if _, err := main.WaitConnect(clientWait); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, main, "back")
}

// realtimeCode picks the goroutines running code of this module's realtime
// packages for the leak checks (testkit.TrackGoroutines).
const realtimeCode = "caddy-socketio/realtime"

// TestServerGoroutineCheck makes sure the leak check of the real-client
// tests sees the goroutines of a live connection, so that its silence after
// Close means something.
func TestServerGoroutineCheck(t *testing.T) {
	leaks := testkit.TrackGoroutines(realtimeCode)
	// A parked idle connection, written to directly, runs no goroutine:
	// a reader blocked in its read is what the check must see.
	srv := NewServer(Options{Engine: engineio.Options{DisableParking: true}})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	var live int
	for _, g := range leaks.New() {
		if strings.Contains(g, "realtime/engineio.(*Session)") {
			live++
		}
	}
	if live == 0 {
		t.Fatal("no engine goroutine found for a live websocket connection")
	}
	srv.Close()
	c.Expect("1")
	c.ExpectClosed(clientWait)
	c.Close()
	ts.Close()
	leaks.Check(t, 5*time.Second)
}
