package realtime

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// dynamicServer serves "/" and dynamic namespaces under "/dyn-", whose
// middleware wants the auth token "good". setups counts setup calls.
func dynamicServer(t *testing.T, opts func(*Options), extra func(*Namespace)) (*Server, *httptest.Server, *atomic.Int64) {
	t.Helper()
	var setups atomic.Int64
	srv, ts := newTestServerWith(t, opts, func(s *Server) {
		s.OfFunc(func(name string) bool { return strings.HasPrefix(name, "/dyn-") }, func(n *Namespace) {
			setups.Add(1)
			n.Use(func(s *Socket) error {
				if s.Handshake().Auth["token"] != "good" {
					return &ConnectError{Message: "not authorized"}
				}
				return nil
			})
			if extra != nil {
				extra(n)
			}
		})
	})
	return srv, ts, &setups
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRefusedConnectsLeaveNothing: 151 CONNECTs with 200 KB names that a
// pattern accepts and the middleware refuses leave no namespace, and the
// heap does not keep them.
func TestRefusedConnectsLeaveNothing(t *testing.T) {
	testkit.WaitsOnClock(t)
	const (
		attempts  = 151
		nameBytes = 200 << 10
		heapBound = 8 << 20 // the names alone are 30 MB
	)
	srv, ts, setups := dynamicServer(t, func(o *Options) { o.MaxNamespaceLength = 1 << 20 }, nil)
	open := func() *testkit.WS {
		c := dialRaw(t, ts, "")
		c.Send("40") // joined in time: the connect timeout does not close it
		c.ExpectPrefix("40{")
		return c
	}
	c := open()
	before := heapAlloc()
	for i := range attempts {
		if i > 0 && i%connectBurst == 0 {
			// One connection may have connectBurst CONNECTs refused at
			// once (TestConnectLoopLimited); the attack opens more.
			c = open()
		}
		name := fmt.Sprintf("/dyn-%03d-%s", i, strings.Repeat("x", nameBytes))
		if err := c.Write(websocket.TextMessage, []byte("40"+name+",")); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		f := c.Next(clientWait)
		if want := "44" + name + `,{"message":"not authorized"}`; f.Data != want {
			t.Fatalf("attempt %d: reply %.80q..., want the refusal", i, f.Data)
		}
	}
	if n := setups.Load(); n != attempts {
		t.Fatalf("%d setups, want %d (one per new name)", n, attempts)
	}
	if names := namespaceNames(srv); len(names) != 1 || names[0] != "/" {
		t.Fatalf("namespaces after the refused CONNECTs: %d (want only /)", len(names))
	}
	srv.mu.RLock()
	pending := len(srv.pending)
	srv.mu.RUnlock()
	if pending != 0 {
		t.Fatalf("%d pending namespaces left", pending)
	}
	after := heapAlloc()
	growth := int64(after) - int64(before)
	t.Logf("heap %d -> %d bytes (%+d) after %d refused CONNECTs of %d-byte names", before, after, growth, attempts, nameBytes)
	if growth > heapBound {
		t.Fatalf("heap grew by %d bytes, more than %d", growth, heapBound)
	}
	// The connection is still usable.
	c.Send(`40/dyn-ok,{"token":"good"}`)
	c.ExpectPrefix(`40/dyn-ok,{"sid":`)
}

// TestDynamicNamespaceLife: a dynamic namespace appears once a socket is
// admitted, goes when its last socket leaves (namespace disconnect or
// closed connection), and comes back new; Of-created ones stay.
func TestDynamicNamespaceLife(t *testing.T) {
	srv, ts, setups := dynamicServer(t, nil, nil)
	static := srv.Of("/static")
	c := dialRaw(t, ts, "")
	c.Send(`40/dyn-a,{"token":"good"}`)
	c.ExpectPrefix(`40/dyn-a,{"sid":`)
	n1, ok := srv.Namespace("/dyn-a")
	if !ok || n1.Len() != 1 {
		t.Fatalf("/dyn-a after a connect: %v %v", n1, ok)
	}
	c.Send("41/dyn-a,")
	waitFor(t, "namespace dropped after the client's disconnect", func() bool {
		_, ok := srv.Namespace("/dyn-a")
		return !ok
	})
	// Again, twice on two connections: one new namespace, set up once more.
	c2 := dialRaw(t, ts, "")
	for _, cl := range []*testkit.WS{c, c2} {
		cl.Send(`40/dyn-a,{"token":"good"}`)
		cl.ExpectPrefix(`40/dyn-a,{"sid":`)
	}
	n2, ok := srv.Namespace("/dyn-a")
	if !ok || n2 == n1 || n2.Len() != 2 {
		t.Fatalf("second /dyn-a: %v (same as the first: %v), %d sockets", ok, n2 == n1, n2.Len())
	}
	if n := setups.Load(); n != 2 {
		t.Fatalf("%d setups, want 2", n)
	}
	c.Close()
	waitFor(t, "one socket left", func() bool { return n2.Len() == 1 })
	if _, ok := srv.Namespace("/dyn-a"); !ok {
		t.Fatal("namespace dropped while a socket is still in it")
	}
	c2.Close()
	waitFor(t, "namespace dropped after the connections closed", func() bool {
		_, ok := srv.Namespace("/dyn-a")
		return !ok
	})
	// Server-side disconnect too; and Of pins a dynamic namespace.
	c3 := dialRaw(t, ts, "")
	c3.Send(`40/dyn-b,{"token":"good"}`)
	c3.ExpectPrefix(`40/dyn-b,{"sid":`)
	pinned := srv.Of("/dyn-b")
	c3.Send(`40/dyn-c,{"token":"good"}`)
	c3.ExpectPrefix(`40/dyn-c,{"sid":`)
	nc, _ := srv.Namespace("/dyn-c")
	_ = nc.To().DisconnectSockets(context.Background(), false)
	c3.Expect("41/dyn-c,")
	waitFor(t, "namespace dropped after a server disconnect", func() bool {
		_, ok := srv.Namespace("/dyn-c")
		return !ok
	})
	_ = pinned.To().DisconnectSockets(context.Background(), false)
	c3.Expect("41/dyn-b,")
	if n, ok := srv.Namespace("/dyn-b"); !ok || n != pinned {
		t.Fatal("a dynamic namespace got from Of was dropped")
	}
	if n, ok := srv.Namespace("/static"); !ok || n != static {
		t.Fatal("static namespace gone")
	}
}

// TestDynamicNamespaceRaces: two CONNECTs to a new name at once share one
// namespace; a socket in the middlewares while the last one leaves is
// admitted to a namespace that stays; and a connect/disconnect storm always
// admits sockets to the published namespace.
func TestDynamicNamespaceRaces(t *testing.T) {
	t.Parallel()
	var (
		gateMu  sync.Mutex
		gate    chan struct{} // when set, the middleware waits on it
		arrived = make(chan struct{}, 16)
		badMu   sync.Mutex
		bad     []string
	)
	srv, ts, setups := dynamicServer(t, nil, func(n *Namespace) {
		n.Use(func(s *Socket) error {
			gateMu.Lock()
			g := gate
			gateMu.Unlock()
			if g != nil {
				arrived <- struct{}{}
				select {
				case <-g:
				case <-time.After(clientWait):
				}
			}
			return nil
		})
		n.OnConnection(func(s *Socket) {
			if pub, ok := s.Namespace().Server().Namespace(s.Namespace().Name()); !ok || pub != s.Namespace() {
				badMu.Lock()
				bad = append(bad, fmt.Sprintf("%s admitted to an unpublished namespace (published: %v)", s.ID(), ok))
				badMu.Unlock()
			}
		})
	})
	setGate := func(g chan struct{}) {
		gateMu.Lock()
		gate = g
		gateMu.Unlock()
	}

	// Two at once, both held in the middleware until both arrived.
	g := make(chan struct{})
	setGate(g)
	a, b := dialRaw(t, ts, ""), dialRaw(t, ts, "")
	a.Send(`40/dyn-same,{"token":"good"}`)
	b.Send(`40/dyn-same,{"token":"good"}`)
	<-arrived
	<-arrived
	if _, ok := srv.Namespace("/dyn-same"); ok {
		t.Fatal("namespace visible before any socket passed its middlewares")
	}
	close(g)
	a.ExpectPrefix(`40/dyn-same,{"sid":`)
	b.ExpectPrefix(`40/dyn-same,{"sid":`)
	n, ok := srv.Namespace("/dyn-same")
	if !ok || n.Len() != 2 {
		t.Fatalf("/dyn-same: %v, want one namespace with both sockets", ok)
	}
	if setups.Load() > 2 {
		t.Fatalf("%d setups", setups.Load())
	}

	// The last socket leaves while another is in the middleware.
	g = make(chan struct{})
	setGate(g)
	c := dialRaw(t, ts, "")
	c.Send(`40/dyn-same,{"token":"good"}`)
	<-arrived
	a.Send("41/dyn-same,")
	b.Send("41/dyn-same,")
	waitFor(t, "the connected sockets gone", func() bool { return n.Len() == 0 })
	if pub, ok := srv.Namespace("/dyn-same"); !ok || pub != n {
		t.Fatal("namespace dropped while a socket was on its way in")
	}
	close(g)
	c.ExpectPrefix(`40/dyn-same,{"sid":`)
	if pub, ok := srv.Namespace("/dyn-same"); !ok || pub != n || n.Len() != 1 {
		t.Fatalf("socket admitted while the others left: published %v, %d sockets", ok, n.Len())
	}
	setGate(nil)
	c.Send("41/dyn-same,")
	waitFor(t, "namespace dropped", func() bool { _, ok := srv.Namespace("/dyn-same"); return !ok })

	// Storm: clients connect and leave the same name, bounded in count.
	var wg sync.WaitGroup
	clients := []*testkit.WS{a, b, c, dialRaw(t, ts, "")}
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				if cl.Write(websocket.TextMessage, []byte(`40/dyn-storm,{"token":"good"}`)) != nil {
					return
				}
				select {
				case f, ok := <-cl.Frames():
					if !ok || !strings.HasPrefix(f.Data, `40/dyn-storm,{"sid":`) {
						badMu.Lock()
						bad = append(bad, fmt.Sprintf("storm connect got %q", f.Data))
						badMu.Unlock()
						return
					}
				case <-time.After(clientWait):
					return
				}
				if cl.Write(websocket.TextMessage, []byte(`41/dyn-storm,`)) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "storm namespace dropped", func() bool { _, ok := srv.Namespace("/dyn-storm"); return !ok })
	badMu.Lock()
	defer badMu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d problems: %v", len(bad), bad)
	}
	srv.mu.RLock()
	defer srv.mu.RUnlock()
	if len(srv.pending) != 0 || len(srv.nsps) != 1 {
		t.Fatalf("left: %d pending, namespaces %v", len(srv.pending), namespaceNames(srv))
	}
}

// TestDynamicNamespaceRealClient: with socket.io-client, a dynamic
// namespace exists while the client is connected and is gone after it
// disconnects; a refused client leaves nothing.
func TestDynamicNamespaceRealClient(t *testing.T) {
	d := nodeclient.Start(t)
	e := startClientEnvWith(t, d, "4", nil, func(srv *Server) {
		srv.OfFunc(func(name string) bool { return strings.HasPrefix(name, "/room-") }, func(n *Namespace) {
			n.Use(func(s *Socket) error {
				if s.Handshake().Auth["token"] != "good" {
					return &ConnectError{Message: "not authorized"}
				}
				return nil
			})
			standardHandlers(n)
		})
	})
	bad := e.connect("bad", "/room-1", map[string]any{"reconnection": false})
	if _, err := bad.WaitConnect(clientWait); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("refused client: %v", err)
	}
	if _, ok := e.srv.Namespace("/room-1"); ok {
		t.Fatal("refused client left its namespace")
	}
	c, _ := e.mustConnect("good", "/room-1", map[string]any{"auth": map[string]any{"token": "good"}})
	roundTrip(t, c, "hi")
	if n, ok := e.srv.Namespace("/room-1"); !ok || n.Len() != 1 {
		t.Fatal("namespace missing while the client is connected")
	}
	c.Disconnect()
	if _, err := c.Wait(clientWait, "disconnect", func(ev nodeclient.Event) bool { return ev.Type == "disconnect" }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "namespace dropped after the client left", func() bool {
		_, ok := e.srv.Namespace("/room-1")
		return !ok
	})
}

// waitFor polls cond for up to clientWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(clientWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCountsWithoutWalk: Counts and RoomCount, which the metrics scrape
// reads instead of walking every socket and room, and PollingConnCount
// (the admin UI's stats every 2 s), follow sockets as they
// connect over polling, upgrade, connect over WebSocket, join and leave
// rooms and go; and a crowd of clients doing all of it at once leaves
// them at exactly zero (a count that drifted would lie for the life of the
// process).
func TestCountsWithoutWalk(t *testing.T) {
	t.Parallel()
	var nsp *Namespace
	srv, ts := newTestServer(t, func(s *Server) {
		nsp = s.Of("/")
		nsp.OnConnection(func(s *Socket) {
			if r := s.Handshake().Query.Get("room"); r != "" {
				_ = s.Join(r, "all")
			}
		})
	})
	// One socket per connection here: the connection counts follow.
	expect := func(what string, polling, websocket, rooms int) {
		t.Helper()
		waitFor(t, what, func() bool {
			p, w := nsp.Counts()
			return p == polling && w == websocket && nsp.RoomCount() == rooms &&
				srv.PollingConnCount() == polling && srv.ConnCount() == polling+websocket
		})
	}
	base := ts.URL + "/socket.io/"
	// upgrade moves a polling session to WebSocket (probe, then upgrade).
	upgrade := func(p *testkit.Polling) *testkit.WS {
		c := testkit.DialWSURL(t, testkit.WSURL(base, url.Values{"sid": {p.SID}}), nil)
		c.Send("2probe")
		c.Expect("3probe")
		c.Send("5")
		return c
	}

	p := testkit.OpenPolling(t, base, url.Values{"room": {"a"}}, nil)
	p.MustPost("40")
	expect("a polling socket", 1, 0, 2)

	up := upgrade(p)
	expect("the polling socket upgraded", 0, 1, 2)

	ws := dialRaw(t, ts, "&room=b")
	ws.ConnectSocket("")
	expect("a websocket socket in another room", 0, 2, 3)

	ws.Close()
	expect("the websocket socket gone", 0, 1, 2)
	up.Close()
	expect("every socket gone", 0, 0, 0)

	// The crowd: half upgrade from polling, half connect over WebSocket,
	// each in a room of its own and "all", all at once.
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := url.Values{"room": {fmt.Sprint("r", i)}}
			if i%2 == 0 {
				c := dialRaw(t, ts, "&"+room.Encode())
				c.ConnectSocket("")
				c.Close()
				return
			}
			p := testkit.OpenPolling(t, base, room, nil)
			p.MustPost("40")
			upgrade(p).Close()
		}()
	}
	wg.Wait()
	expect("the crowd gone", 0, 0, 0)
	if v := nsp.webSockets.Load(); v != 0 {
		t.Fatalf("webSockets = %d after every socket left", v)
	}
}
