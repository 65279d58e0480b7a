package socketio

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// TestOneClientCannotDisconnectTheRoom: a client that relays tens of
// thousands of events in one polling request used to fill every other
// member's queue, and they were all closed as "write queue full". Now the
// request is refused (too many packets) or the sender is rate limited, the
// limit is logged, and every other member stays connected.
func TestOneClientCannotDisconnectTheRoom(t *testing.T) {
	h := tutorialHandler("flood-room")
	httpBase, wsBase, logs := serveObserved(t, h)
	join := func(sub string) *wsClient {
		c := dial(t, wsBase, url.Values{"roomNumber": {"7"}})
		c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
		c.ExpectPrefix(`40{"sid":"`)
		return c
	}
	members := []*wsClient{join("ann"), join("bob")}
	flood := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(0x1e)
			}
			fmt.Fprintf(&b, `42["message_from_client",%d]`, i%10)
		}
		return b.String()
	}
	connect := "40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "mallory"})})

	t.Run("30,000 events in one request", func(t *testing.T) {
		m := testkit.OpenPolling(t, httpBase, url.Values{"roomNumber": {"7"}}, nil)
		m.MustPost(connect)
		code, body := m.Post(flood(30_000))
		if code != http.StatusBadRequest || !strings.Contains(body, `"code":3`) {
			t.Fatalf("30,000-packet POST: %d %q, want 400 Bad request", code, body)
		}
		if logs.FilterMessageSnippet("packet limit").Len() == 0 {
			t.Errorf("the packet limit is not in the log")
		}
	})
	t.Run("5,000 events in one request", func(t *testing.T) {
		m := testkit.OpenPolling(t, httpBase, url.Values{"roomNumber": {"7"}}, nil)
		m.MustPost(connect)
		if code, body := m.Post(flood(5_000)); code != http.StatusOK {
			t.Fatalf("5,000-packet POST: %d %q", code, body)
		}
		if logs.FilterMessageSnippet("rate limit").Len() == 0 {
			t.Errorf("the rate limit is not in the log")
		}
	})
	// Each member got at most the burst, in order, and is still connected:
	// a ping round trip and a relay from the other member still work.
	for i, c := range members {
		got := 0
		for {
			msg := c.Read()
			if !strings.HasPrefix(msg, `42["message_from_client",`) {
				if strings.HasPrefix(msg, `42["room-userId"`) || strings.HasPrefix(msg, `42["message_from_server"`) {
					continue
				}
				t.Fatalf("member %d: unexpected frame %q", i, msg)
			}
			if msg == `42["message_from_client","end-`+fmt.Sprint(i)+`"]` {
				break
			}
			got++
			if got == 1 {
				// Ask the other member to send an end marker after the flood.
				members[1-i].Send(fmt.Sprintf(`42["message_from_client","end-%d"]`, i))
			}
		}
		if limit := 1000 + 1000; got > limit+10 {
			t.Errorf("member %d received %d flooded events, want at most about the burst", i, got)
		}
	}
}

// TestRoomRequestsBounded: limits.max_rooms bounds the rooms a socket may
// request, and asking again for a room it is in is a no-op that announces
// nothing a second time.
func TestRoomRequestsBounded(t *testing.T) {
	h := tutorialHandler("room-bound")
	h.Limits = &Limits{MaxRooms: 2}
	base, _ := serve(t, h)
	c := joinTutorial(t, base, "1", "ann")
	c.Send(`421["join","room-ann-a"]`)
	c.Expect(`431[{"ok":true,"room":"room-ann-a"}]`)
	c.Expect(`42["room-userId","You are in room number: 1"]`)
	c.Send(`422["join","room-ann-a"]`)
	c.Expect(`432[{"ok":true,"room":"room-ann-a"}]`)
	c.Send(`423["join","room-ann-b"]`)
	// No second announcement came between the two answers.
	c.Expect(`433[{"error":"too many rooms","ok":false}]`)
}

// TestRoomBurstKeepsReaders: a server-side publisher sends 20,000 messages
// of 1 KB to a room within 0.5 s (stretched under -race), never more than
// 2,000 ahead of the member that reads. That member gets every message in
// order (the old engine dropped it at
// 1,024 queued messages); the member that never reads is dropped as slow;
// the heap stays under a bound set by the hard cap of the stalled member's
// backlog.
func TestRoomBurstKeepsReaders(t *testing.T) {
	testkit.WaitsOnClock(t) // 20 MB through a room and 40 collections: a second of CPU
	h := tutorialHandler("burst-room")
	h.Auth = nil
	_, wsBase, logs := serveObserved(t, h)
	join := func() *wsClient {
		c := dial(t, wsBase, url.Values{"roomNumber": {"9"}})
		c.Send("40")
		c.ExpectPrefix(`40{"sid":"`)
		c.ExpectPrefix(`42["room-userId"`)
		c.ExpectPrefix(`42["message_from_server"`)
		return c
	}
	fast := join()
	stalled := join()
	_ = stalled                           // never read from again
	fast.ExpectPrefix(`42["room-userId"`) // the stalled member's join

	const n, maxAhead = 20_000, 2_000
	payload := strings.Repeat("x", 1000)
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan int, 1)
	var read atomic.Int64
	go func() {
		// The fast member reads everything, checking the order.
		got := 0
		defer func() { read.Store(n) }() // the publisher waits no more
		for got < n {
			f, err := fast.Recv(20 * time.Second) // pings are answered by its reader
			if err != nil {
				break
			}
			s := f.Data
			want := fmt.Sprintf(`42["burst",%d,"%s"]`, got, payload)
			if s != want {
				t.Errorf("fast member: message %d is %.40q", got, s)
				break
			}
			got++
			read.Store(int64(got))
		}
		done <- got
	}()
	room := h.hub.server.Of("/").To("room-userId-9")
	span := time.Duration(raceSlowdown) * 500 * time.Millisecond
	start := time.Now()
	for i := range n {
		if err := room.Emit("burst", i, payload); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
		if i%500 == 499 {
			// Pace the publisher to n messages per span.
			if ahead := time.Duration(i+1)*span/n - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
			// And on the reader: a member that reads stays within
			// maxAhead messages (2 MB, twice the old engine's 1,024
			// messages, a quarter of the backlog cap), however starved
			// its goroutine is on a loaded machine. Bounded in time.
			for wait := time.Now().Add(20 * time.Second); int64(i+1)-read.Load() > maxAhead && time.Now().Before(wait); {
				time.Sleep(time.Millisecond)
			}
			// What the server holds (the stalled backlog above all),
			// not the garbage of encoding: measured after a GC.
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.HeapInuse {
				peak = m
			}
		}
	}
	t.Logf("published %d x 1 KB in %v", n, time.Since(start).Round(time.Millisecond))
	select {
	case got := <-done:
		if got != n {
			t.Fatalf("the reading member got %d of %d messages", got, n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reading member did not get every message in 30 s")
	}
	// The engine drops the stalled member on its own timer: its count is
	// polled (bounded), as the engine tells no one but its log.
	deadline := time.Now().Add(10 * time.Second)
	for h.hub.server.ConnCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled member was not dropped: %d connections", h.hub.server.ConnCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if logs.FilterMessageSnippet("slow client").Len() == 0 {
		t.Errorf("the slow client's drop is not in the log")
	}
	growth := int64(peak.HeapInuse) - int64(before.HeapInuse)
	// Each member's backlog is capped at 8 MiB as counted (encoded size
	// plus 64 bytes a message); a broadcast message is also held as its
	// prepared WebSocket frame and its arguments, so a member that is its
	// last holder weighs about three times its count. The stalled member
	// sits at the cap; on a loaded machine the reading one may lag too.
	const bound = 2 * 3 * 8 << 20
	t.Logf("live heap growth at peak: %.1f MiB (bound %d MiB)", float64(growth)/(1<<20), bound>>20)
	if growth > bound {
		t.Errorf("heap grew %d bytes during the burst, bound %d", growth, bound)
	}
}

// swappable serves whichever handler it points at: a reload in process
// (the old handler is cleaned up, the new one serves the same hub).
type swappable struct{ h atomic.Pointer[Handler] }

func (s *swappable) serve(t *testing.T) (httpBase, wsBase string) {
	t.Helper()
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = s.h.Load().ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/socket.io/", "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/"
}

// reload provisions next (same hub name as the current handler), points
// the server at it and cleans up the old one, as `caddy reload` does.
func (s *swappable) reload(t *testing.T, next *Handler) {
	t.Helper()
	provision(t, next)
	old := s.h.Swap(next)
	if old != nil {
		if err := old.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSocketsPerSubjectAcrossReload: a token subject holds at most
// max_sockets_per_subject sockets, whatever connections and namespaces
// they are on; the next CONNECT gets the connect_error "too many
// connections for this user", another user is not affected, a reload
// keeps the counts, and a socket that leaves frees its slot.
func TestSocketsPerSubjectAcrossReload(t *testing.T) {
	cfg := func() *Handler {
		h := tutorialHandler("subject-limit")
		h.Limits = &Limits{MaxSocketsPerSubject: 3}
		return h
	}
	var sw swappable
	sw.reload(t, cfg())
	_, wsBase := sw.serve(t)
	limitedBefore := counterValue(t, sw.h.Load().metrics.limited[limitSubjectName]) // per hub name, for the process
	connect := func(sub, ns string) (*wsClient, string) {
		c := dial(t, wsBase, url.Values{"roomNumber": {"1"}})
		prefix := "40"
		if ns != "/" {
			prefix += ns + ","
		}
		c.Send(prefix + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
		return c, c.Read()
	}
	var alice []*wsClient
	for _, ns := range []string{"/", "/team-a", "/"} {
		c, f := connect("alice", ns)
		if !strings.Contains(f, `{"sid":"`) {
			t.Fatalf("alice's socket %d on %s: %q", len(alice)+1, ns, f)
		}
		alice = append(alice, c)
	}
	refused := `44{"message":"` + errTooManyForSubject + `"}`
	if _, f := connect("alice", "/"); f != refused {
		t.Fatalf("alice's 4th socket: %q, want %q", f, refused)
	}
	if _, f := connect("bob", "/"); !strings.Contains(f, `{"sid":"`) {
		t.Fatalf("bob: %q", f)
	}
	sw.reload(t, cfg())
	if _, f := connect("alice", "/"); f != refused {
		t.Fatalf("alice's 4th socket after a reload: %q", f)
	}
	h := sw.h.Load()
	if n := counterValue(t, h.metrics.limited[limitSubjectName]) - limitedBefore; n != 2 {
		t.Errorf("limited_total{limit=sockets_per_subject} = %v, want 2", n)
	}
	alice[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.hub.subjects.Held("alice") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("alice holds %d after one socket left", h.hub.subjects.Held("alice"))
		}
		time.Sleep(10 * time.Millisecond) // the disconnect runs on the connection's goroutine
	}
	if _, f := connect("alice", "/"); !strings.Contains(f, `{"sid":"`) {
		t.Fatalf("alice once a socket left: %q", f)
	}
}

// TestConnectionsPerIPAcrossReload: the per-address bound counts the
// connections made before a reload; a handshake over it gets 403
// {"code":4,...} and the metric counts it; one that closes frees its slot.
func TestConnectionsPerIPAcrossReload(t *testing.T) {
	cfg := func() *Handler {
		h := tutorialHandler("ip-limit")
		h.Auth = nil
		h.Limits = &Limits{MaxConnectionsPerIP: 5}
		return h
	}
	var sw swappable
	sw.reload(t, cfg())
	httpBase, wsBase := sw.serve(t)
	limitedBefore := counterValue(t, sw.h.Load().metrics.limited[realtime.LimitConnectionsPerAddr])
	var conns []*wsClient
	for range 5 {
		conns = append(conns, dial(t, wsBase, nil))
	}
	handshake := func() (int, string) {
		resp, err := http.Get(httpBase + "?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := `{"code":4,"message":"too many connections from this address"}`
	if code, body := handshake(); code != http.StatusForbidden || body != want {
		t.Fatalf("6th handshake: %d %s", code, body)
	}
	sw.reload(t, cfg())
	if code, body := handshake(); code != http.StatusForbidden || body != want {
		t.Fatalf("6th handshake after a reload: %d %s", code, body)
	}
	h := sw.h.Load()
	if n := counterValue(t, h.metrics.limited[realtime.LimitConnectionsPerAddr]) - limitedBefore; n != 2 {
		t.Errorf("limited_total{limit=connections_per_ip} = %v, want 2", n)
	}
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.hub.server.OpenConnections() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted after one closed", h.hub.server.OpenConnections())
		}
		time.Sleep(10 * time.Millisecond) // the close runs on the connection's goroutine
	}
	if code, body := handshake(); code != http.StatusOK || !strings.HasPrefix(body, "0{") {
		t.Fatalf("a handshake once one closed: %d %s", code, body)
	}
}

// TestLimitsDefaults: the connection limits are on by default in the
// module (the engine leaves them off), and -1 turns each off.
func TestLimitsDefaults(t *testing.T) {
	var o realtime.Options
	(*Limits)(nil).apply(&o)
	if o.MaxConnections != 0 || o.MaxConnectionsPerAddr != DefaultMaxConnectionsPerIP ||
		o.HandshakeRate != DefaultHandshakeRate || o.HandshakeBurst != DefaultHandshakeBurst ||
		o.MaxNamespacesPerConn != 0 || o.MaxPendingAcks != 0 {
		t.Errorf("defaults: %+v", o)
	}
	if (*Limits)(nil).maxPerSubject() != DefaultMaxSocketsPerSubject {
		t.Error("max_sockets_per_subject default")
	}
	off := &Limits{MaxConnections: -1, MaxConnectionsPerIP: -1, HandshakeRate: -1, HandshakeBurst: -1,
		MaxSocketsPerSubject: -1, MaxNamespaces: -1, MaxPendingAcks: -1}
	if err := off.check(); err != nil {
		t.Fatal(err)
	}
	o = realtime.Options{}
	off.apply(&o)
	if o.MaxConnections != 0 || o.MaxConnectionsPerAddr != 0 || o.HandshakeRate != 0 || o.HandshakeBurst != 0 ||
		o.MaxNamespacesPerConn != -1 || o.MaxPendingAcks != -1 || off.maxPerSubject() != 0 {
		t.Errorf("off: %+v", o)
	}
	if err := (&Limits{MaxConnectionsPerIP: -2}).check(); err == nil {
		t.Error("max_connections_per_ip -2 accepted")
	}
}

// TestJoinRuleRefusalLoggedOnce: a join-rule room over limits.max_rooms is
// skipped, the socket still connects in the rooms that fit, and the
// refusal is logged once per socket (joinRule logs it; the connection
// handler's second pass, a no-op, stays quiet).
func TestJoinRuleRefusalLoggedOnce(t *testing.T) {
	h := tutorialHandler("join-refused-once")
	h.Join = []string{"room-userId-{socketio.query.roomNumber}", "second-{socketio.query.roomNumber}"}
	h.Announce = nil
	h.Limits = &Limits{MaxRooms: 1}
	base, logs := serve(t, h)
	for _, sub := range []string{"ann", "bob"} {
		c := dial(t, base, url.Values{"roomNumber": {"4"}})
		c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
		c.ExpectPrefix(`40{"sid":"`)
		c.Expect(`42["message_from_server","Message: welcome ` + sub + `"]`)
		// The room request's ack comes after the connection handler ran.
		c.Send(`421["join","room-` + sub + `-x"]`)
		c.Expect(`431[{"error":"too many rooms","ok":false}]`)
	}
	refused := logs.FilterMessage("join rule not applied").All()
	if len(refused) != 2 {
		t.Fatalf("%d join-rule refusals logged for 2 sockets, want 2: %v", len(refused), refused)
	}
	for _, e := range refused {
		if room := e.ContextMap()["room"]; room != "second-4" {
			t.Errorf("refused room %v, want second-4", room)
		}
	}
}
