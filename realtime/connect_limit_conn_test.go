package realtime

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// wsFrom dials an Engine.IO WebSocket to ts from the loopback address src
// (127.0.0.1, 127.0.0.2, ...: Linux routes all of 127/8 to lo), and reads
// the open packet. It returns the refusal's HTTP status and body instead
// when the handshake is refused.
func wsFrom(t testing.TB, ts *httptest.Server, src string) (c *websocket.Conn, status int, body string) {
	t.Helper()
	d := websocket.Dialer{
		HandshakeTimeout: 5 * time.Second,
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}).DialContext,
	}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		if resp == nil {
			t.Errorf("dialing from %s: %v", src, err)
			return nil, 0, ""
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		return nil, resp.StatusCode, string(b)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, open, err := c.ReadMessage()
	if err != nil || !strings.HasPrefix(string(open), "0{") {
		_ = c.Close()
		// The session was closed at once: as refused.
		return nil, -1, string(open)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, http.StatusSwitchingProtocols, ""
}

// limitCounts counts OnLimited calls by limit name.
type limitCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *limitCounts) on(_ *Socket, limit string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[limit]++
}

func (l *limitCounts) get(limit string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[limit]
}

// dialMany dials n WebSockets from src at once and returns the open ones
// and the refusals' bodies; the open ones are closed when the test ends.
func dialMany(t *testing.T, ts *httptest.Server, src string, n int) (open []*websocket.Conn, refused []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, status, body := wsFrom(t, ts, src)
			mu.Lock()
			defer mu.Unlock()
			if c != nil {
				open = append(open, c)
				return
			}
			if status != http.StatusForbidden && status != -1 {
				t.Errorf("refused with status %d %q, want 403", status, body)
			}
			refused = append(refused, body)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range open {
			_ = c.Close()
		}
	})
	return open, refused
}

// waitConns waits until the server holds n connections.
func waitConns(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ConnCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d connections, want %d", srv.ConnCount(), n)
		}
		time.Sleep(10 * time.Millisecond) // polling a count the server changes on its own goroutines
	}
}

// TestConnectionsPerAddrHold: 60 handshakes at once from one address with
// a bound of 20 leave exactly 20 connections; the others get Node's 403
// {"code":4,...} with the reason; another address is not affected; a
// closed connection frees its slot. One WARN line however many refusals.
func TestConnectionsPerAddrHold(t *testing.T) {
	t.Parallel()
	zcore, logs := observer.New(zap.WarnLevel)
	var lim limitCounts
	srv, ts := newTestServerWith(t, func(o *Options) {
		o.MaxConnectionsPerAddr = 20
		o.Logger = zap.New(zcore)
		o.OnLimited = lim.on
	}, nil)
	open, refused := dialMany(t, ts, "127.0.0.1", 60)
	if len(open) != 20 {
		t.Fatalf("%d connections open from one address, want 20 (%d refused)", len(open), len(refused))
	}
	for _, b := range refused {
		if b != "too many connections from this address" {
			t.Fatalf("refusal body %q", b)
		}
	}
	waitConns(t, srv, 20)
	if c, status, body := wsFrom(t, ts, "127.0.0.2"); c == nil {
		t.Fatalf("another address was refused: %d %s", status, body)
	} else {
		defer c.Close()
	}
	if n := lim.get(LimitConnectionsPerAddr); n != 40 {
		t.Errorf("OnLimited(connections_per_ip) %d times, want 40", n)
	}
	if n := logs.FilterMessage("handshake refused: " + errTooManyFromIP).Len(); n != 1 {
		t.Errorf("%d WARN lines for 40 refusals, want 1", n)
	}
	for _, c := range open[:5] {
		_ = c.Close()
	}
	waitConns(t, srv, 16)
	again, _ := dialMany(t, ts, "127.0.0.1", 10)
	if len(again) != 5 {
		t.Errorf("%d connections after 5 closed, want 5", len(again))
	}
}

// TestMaxConnectionsHold: the hub's bound holds under 80 concurrent
// handshakes from two addresses, and never more connections are held.
func TestMaxConnectionsHold(t *testing.T) {
	t.Parallel()
	var lim limitCounts
	srv, ts := newTestServerWith(t, func(o *Options) {
		o.MaxConnections = 30
		o.OnLimited = lim.on
	}, nil)
	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(srv.ConnCount()); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(time.Millisecond) // sampling
		}
	}()
	var wg sync.WaitGroup
	var a, b []*websocket.Conn
	wg.Go(func() { a, _ = dialMany(t, ts, "127.0.0.1", 40) })
	wg.Go(func() { b, _ = dialMany(t, ts, "127.0.0.3", 40) })
	wg.Wait()
	close(stop)
	<-watched
	if got := len(a) + len(b); got != 30 {
		t.Errorf("%d connections open, want 30", got)
	}
	if p := peak.Load(); p > 30 {
		t.Errorf("the server held %d connections at once, bound 30", p)
	}
	if n := lim.get(LimitConnections); n < 50 {
		t.Errorf("OnLimited(connections) %d times, want at least 50", n)
	}
	_, status, body := wsFrom(t, ts, "127.0.0.4")
	if status != http.StatusForbidden || body != "too many connections" {
		t.Errorf("a websocket handshake to a full server: %d %s", status, body)
	}
	resp, err := http.Get(ts.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || string(pb) != `{"code":4,"message":"too many connections"}` {
		t.Errorf("a polling handshake to a full server: %d %s", resp.StatusCode, pb)
	}
	for _, c := range a {
		_ = c.Close()
	}
	waitConns(t, srv, len(b))
	if n := srv.OpenConnections(); n != len(b) {
		t.Errorf("OpenConnections %d after closing, want %d", n, len(b))
	}
}

// TestHandshakeRatePerAddr: one address sending handshakes in a loop gets
// burst of them through, then the rate; another address is not affected.
func TestHandshakeRatePerAddr(t *testing.T) {
	t.Parallel()
	var lim limitCounts
	_, ts := newTestServerWith(t, func(o *Options) {
		o.HandshakeRate = 10
		o.HandshakeBurst = 20
		o.OnLimited = lim.on
	}, nil)
	// Handshakes as fast as they go until three are refused (bounded at
	// 10 s): the burst of 20 passes, then the rate. Ending on refusals, not
	// on a time, keeps a loaded machine, whose client is slow, from ending
	// the loop before it outran the bucket (the fast loop once saw 11
	// handshakes in 300 ms and no refusal).
	start := time.Now()
	passed, refused := 0, 0
	for refused < 3 && time.Since(start) < 10*time.Second {
		c, status, body := wsFrom(t, ts, "127.0.0.1")
		if c != nil {
			passed++
			_ = c.Close()
			continue
		}
		if status != http.StatusForbidden || body != "too many handshakes from this address, retry later" {
			t.Fatalf("refusal %d %s", status, body)
		}
		refused++
	}
	el := time.Since(start).Seconds()
	if max := 20 + int(10*el) + 1; passed < 20 || passed > max {
		t.Errorf("%d handshakes passed in %.2fs, want 20..%d", passed, el, max)
	}
	if refused == 0 || lim.get(LimitHandshakeRate) != refused {
		t.Errorf("%d refused, OnLimited %d", refused, lim.get(LimitHandshakeRate))
	}
	if c, status, body := wsFrom(t, ts, "127.0.0.2"); c == nil {
		t.Errorf("another address refused: %d %s", status, body)
	} else {
		_ = c.Close()
	}
}

// TestNamespacesPerConn: the fourth namespace of a connection bounded to 3
// is refused with CONNECT_ERROR "too many namespaces"; leaving one lets
// it in; another connection is not affected.
func TestNamespacesPerConn(t *testing.T) {
	_, ts := newTestServerWith(t, func(o *Options) { o.MaxNamespacesPerConn = 3 }, func(srv *Server) {
		srv.OfFunc(func(string) bool { return true }, func(*Namespace) {})
	})
	c := dialRaw(t, ts, "")
	for _, ns := range []string{"/", "/a", "/b"} {
		if ns == "/" {
			c.Send("40")
			c.ExpectPrefix(`40{"sid":`)
			continue
		}
		c.Send("40" + ns + ",")
		c.ExpectPrefix("40" + ns + `,{"sid":`)
	}
	c.Send("40/c,")
	c.Expect(`44/c,{"message":"too many namespaces"}`)
	c.Send("41/a,")
	c.Send("40/c,")
	c.ExpectPrefix(`40/c,{"sid":`)
	other := dialRaw(t, ts, "")
	other.Send("40/d,")
	other.ExpectPrefix(`40/d,{"sid":`)
}

// TestPendingAcksPerSocket: a client that never answers makes the server
// hold at most MaxPendingAcks callbacks; an answer frees one; broadcasts
// with acks skip the full socket.
func TestPendingAcksPerSocket(t *testing.T) {
	var lim limitCounts
	sockets := make(chan *Socket, 2)
	srv, ts := newTestServerWith(t, func(o *Options) {
		o.MaxPendingAcks = 5
		o.OnLimited = lim.on
	}, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) { sockets <- s })
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix(`40{"sid":`)
	s := <-sockets
	var firstID string
	for i := range 5 {
		if err := s.EmitWithAckFunc(0, "ping", nil, func([]any, error) {}); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
		f := c.ExpectPrefix("42") // 42<id>["ping"]
		if i == 0 {
			firstID = strings.TrimSuffix(strings.TrimPrefix(f, "42"), `["ping"]`)
		}
	}
	if err := s.EmitWithAckFunc(0, "ping", nil, func([]any, error) {}); !errors.Is(err, ErrTooManyPendingAcks) {
		t.Fatalf("6th emit: %v, want ErrTooManyPendingAcks", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "ping"); !errors.Is(err, ErrTooManyPendingAcks) {
		t.Fatalf("EmitWithAck: %v", err)
	}
	other := dialRaw(t, ts, "")
	other.Send("40")
	other.ExpectPrefix(`40{"sid":`)
	<-sockets
	type result struct {
		replies [][]any
		err     error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r, err := srv.Of("/").operator().EmitWithAck(ctx, "all")
		done <- result{r, err}
	}()
	f := other.ExpectPrefix("42")
	id := strings.TrimSuffix(strings.TrimPrefix(f, "42"), `["all"]`)
	other.Send("43" + id + "[]")
	if r := <-done; r.err != nil || len(r.replies) != 1 {
		t.Errorf("broadcast with ack: %d replies, %v; want 1 (the full socket skipped)", len(r.replies), r.err)
	}
	if n := lim.get(LimitPendingAcks); n != 3 {
		t.Errorf("OnLimited(pending_acks) %d times, want 3", n)
	}
	// An answer frees a slot.
	c.Send("43" + firstID + "[]")
	deadline := time.Now().Add(2 * time.Second)
	for s.EmitWithAckFunc(0, "ping", nil, func([]any, error) {}) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no emit fits after the client answered one")
		}
		time.Sleep(10 * time.Millisecond) // the answer is read on the connection's goroutine
	}
}

// TestKeyTableBoundedInBytes: a table bounded to a few keys refuses new
// keys while the ones it holds have holders, forgets idle keys, and its
// sweeper goroutine ends when it is empty or closed.
func TestKeyTableBoundedInBytes(t *testing.T) {
	leaks := testkit.TrackGoroutines("realtime.(*KeyTable)")
	per := int64(len("10.0.0.1")) + keyEntryOverhead
	tb := NewKeyTable(4 * per)
	var rels []func()
	for _, k := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		rel, err := tb.Acquire(k, 2)
		if err != nil {
			t.Fatalf("acquire %s: %v", k, err)
		}
		rels = append(rels, rel)
	}
	if _, err := tb.Acquire("10.0.0.5", 2); !errors.Is(err, errTableFull) {
		t.Fatalf("a fifth key: %v, want errTableFull", err)
	}
	if b := tb.Bytes(); b != 4*per {
		t.Errorf("bytes %d, want %d", b, 4*per)
	}
	if _, err := tb.Acquire("10.0.0.1", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Acquire("10.0.0.1", 2); !errors.Is(err, errKeyLimit) {
		t.Fatalf("third holder: %v", err)
	}
	rels[1]()
	rels[1]() // once only
	if n := tb.Held("10.0.0.2"); n != 0 {
		t.Fatalf("held %d after release", n)
	}
	tb.mu.Lock()
	tb.lastSweep = time.Time{} // the next full insert may sweep now
	tb.mu.Unlock()
	if _, err := tb.Acquire("10.0.0.5", 2); err != nil {
		t.Fatalf("a new key once one is idle: %v", err)
	}
	if n := tb.Len(); n != 4 {
		t.Errorf("%d keys, want 4", n)
	}
	tb.Close()
	if _, err := tb.Acquire("10.0.0.9", 2); !errors.Is(err, errTableFull) {
		t.Errorf("after Close: %v", err)
	}
	leaks.Check(t, 2*time.Second)
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":             "127.0.0.1",
		"[::ffff:10.1.2.3]:1":        "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"192.0.2.7":                  "192.0.2.7",
		"not an address":             "not an address",
	} {
		if got := AddrKey(in); got != want {
			t.Errorf("AddrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
