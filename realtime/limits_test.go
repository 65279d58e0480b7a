package realtime

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

const rateLimitedMsg = "socket rate limited: dropping its events"

// TestEventLimiter checks the token bucket and the disconnect rule on a
// fake clock: burst at once, then the rate; drops counted per refill
// window; disconnect when the drops of one window reach the burst.
func TestEventLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newEventLimiter(10, 5, t0) // window 500ms
	for i := range 5 {
		if v := l.take(t0); v != limitPass {
			t.Fatalf("event %d of the burst: %v", i, v)
		}
	}
	if v := l.take(t0); v != limitDropStart {
		t.Fatalf("first event over the burst: %v, want the start of a limited window", v)
	}
	if v := l.take(t0); v != limitDrop {
		t.Fatalf("second drop: %v", v)
	}
	// 100ms refill one token at 10/s.
	now := t0.Add(100 * time.Millisecond)
	if v := l.take(now); v != limitPass {
		t.Fatalf("after a refill: %v", v)
	}
	if v := l.take(now); v != limitDrop {
		t.Fatalf("drop in the same window: %v", v)
	}
	// A new window: its drops count from zero.
	now = t0.Add(600 * time.Millisecond)
	for range 6 {
		l.take(now) // 5 tokens back, then one drop
	}
	if l.dropped != 1 {
		t.Fatalf("%d drops counted in the new window, want 1", l.dropped)
	}
	for i := 2; i < 5; i++ {
		if v := l.take(now); v != limitDrop {
			t.Fatalf("drop %d: %v", i, v)
		}
	}
	if v := l.take(now); v != limitDisconnect {
		t.Fatalf("fifth drop of the window: %v, want disconnect", v)
	}
	// A client at exactly the rate never loses an event.
	l = newEventLimiter(10, 5, t0)
	for i := range 100 {
		if v := l.take(t0.Add(time.Duration(i) * 100 * time.Millisecond)); v != limitPass {
			t.Fatalf("event %d at the rate: %v", i, v)
		}
	}
}

func TestRateLimitRealClients(t *testing.T) {
	d := nodeclient.Start(t)
	t.Run("flood relayed to a room", func(t *testing.T) { testRateLimitFlood(t, d) })
	t.Run("interactive pace", func(t *testing.T) { testRateLimitInteractive(t, d) })
	t.Run("ack of a dropped event", func(t *testing.T) { testRateLimitAck(t, d) })
}

// testRateLimitFlood: a raw websocket client sends 30,000 tiny events that
// an OnAny handler relays to the room it is in, with real clients in the
// room. The sender gets at most burst + rate*elapsed events through and is
// then disconnected; the room members get every relayed event and stay.
func testRateLimitFlood(t *testing.T, d *nodeclient.Driver) {
	const flood = 30000
	var (
		passed    atomic.Int64
		firstAt   atomic.Pointer[time.Time]
		reason    = make(chan string, 1)
		goneAt    atomic.Pointer[time.Time]
		limitedMu sync.Mutex
		limited   []string
	)
	zcore, obs := observer.New(zap.InfoLevel)
	e := startClientEnvWith(t, d, "4", func(o *Options) {
		o.Logger = zap.New(zcore)
		o.OnLimited = func(_ *Socket, limit string) {
			limitedMu.Lock()
			limited = append(limited, limit)
			limitedMu.Unlock()
		}
	}, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			if s.Handshake().Query.Get("sender") == "" {
				return
			}
			_ = s.Join("room")
			s.OnAny(func(s *Socket, event string, args []any, _ AckFunc) {
				if event != "m" {
					return
				}
				if passed.Add(1) == 1 {
					now := time.Now()
					firstAt.Store(&now)
				}
				_ = s.To("room").Emit("m", args...)
			})
			s.OnDisconnect(func(_ *Socket, r string) {
				now := time.Now()
				goneAt.Store(&now)
				reason <- r
			})
		})
	})
	members := []struct {
		name, version, transport string
	}{
		{"v4-polling", "4", "polling"},
		{"v4-websocket", "4", "websocket"},
		{"v3-polling", "3", "polling"},
	}
	var clients []*nodeclient.Client
	for _, m := range members {
		c := e.d.Connect(t.Name()+"/"+m.name, m.version, e.url, map[string]any{"transports": []string{m.transport}})
		e.mu.Lock()
		e.clients = append(e.clients, c)
		e.mu.Unlock()
		if _, err := c.WaitConnect(clientWait); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := c.EmitWithAck(clientWait, "join", "room"); err != nil {
			t.Fatalf("%s join: %v", m.name, err)
		}
		clients = append(clients, c)
	}

	ts := strings.TrimPrefix(e.url, "http://")
	sender := testkit.DialWSURL(t, "ws://"+ts+"/socket.io/?EIO=4&transport=websocket&sender=1", nil)
	sender.Wait = 2 * time.Second
	sender.ExpectPrefix("0{")
	sender.Send("40")
	sid := sidOf(t, sender.ExpectPrefix("40{"), "40")

	start := time.Now()
	sent := 0
	for ; sent < flood; sent++ {
		if sender.Write(websocket.TextMessage, fmt.Appendf(nil, `42["m",%d]`, sent)) != nil {
			break
		}
	}
	sendTime := time.Since(start)
	var r string
	select {
	case r = <-reason:
	case <-time.After(clientWait):
		t.Fatalf("sender not disconnected after %d events (%d passed)", sent, passed.Load())
	}
	if r != "rate limit exceeded" {
		t.Fatalf("sender disconnected with reason %q, want rate limit exceeded", r)
	}
	// The client is told with a DISCONNECT packet, then the connection closes.
	saw41 := false
	deadline := time.After(clientWait)
wait:
	for {
		select {
		case f, ok := <-sender.Frames():
			if !ok {
				break wait
			}
			if f.Data == "41" {
				saw41 = true
			}
		case <-deadline:
			t.Fatal("sender connection still open after the disconnect")
		}
	}
	if !saw41 {
		t.Error("sender got no DISCONNECT packet before the close")
	}

	got := passed.Load()
	elapsed := goneAt.Load().Sub(*firstAt.Load())
	bound := DefaultEventBurst + DefaultEventRate*elapsed.Seconds() + 1
	t.Logf("sent %d events in %v; %d got through in %v before the disconnect (bound %.0f)", sent, sendTime, got, elapsed, bound)
	if float64(got) > bound {
		t.Fatalf("%d events got through in %v, more than burst+rate*elapsed = %.0f", got, elapsed, bound)
	}
	if got < DefaultEventBurst {
		t.Fatalf("only %d events got through, less than the burst %d", got, DefaultEventBurst)
	}

	// Every member got every relayed event, and is still connected.
	for i, c := range clients {
		// Each arrival wakes the wait (the driver's notify), no polling.
		deadline := time.Now().Add(2 * clientWait)
		for range got {
			if _, err := c.WaitEvent("m", time.Until(deadline)); err != nil {
				break
			}
		}
		if n := int64(len(c.EventsNamed("m"))); n != got {
			t.Errorf("%s received %d relayed events, want %d", members[i].name, n, got)
		}
		roundTrip(t, c, "still here")
		for _, ev := range c.Events() {
			if ev.Type == "disconnect" {
				t.Errorf("%s disconnected: %s", members[i].name, ev.Reason)
			}
		}
	}
	if n := e.srv.Of("/").Len(); n != len(members) {
		t.Errorf("namespace has %d sockets, want the %d members", n, len(members))
	}

	// One warning for the sender, whatever the number of drops; no slow
	// client was closed.
	warns := obs.FilterMessage(rateLimitedMsg).All()
	if len(warns) != 1 {
		t.Fatalf("%d %q log lines, want 1", len(warns), rateLimitedMsg)
	}
	w := warns[0]
	fields := w.ContextMap()
	if w.Level != zapcore.WarnLevel || fields["socket"] != sid || fields["namespace"] != "/" || fields["limit"] != "500 events/s, burst 1000" {
		t.Errorf("warning %v %v, want warn level with socket %s, namespace /, the limit", w.Level, fields, sid)
	}
	if n := obs.FilterMessageSnippet("slow client").Len(); n != 0 {
		t.Errorf("%d slow clients closed", n)
	}
	if n := obs.FilterMessage("socket disconnected: rate limit exceeded").Len(); n != 1 {
		t.Errorf("%d disconnect log lines, want 1", n)
	}
	limitedMu.Lock()
	defer limitedMu.Unlock()
	if len(limited) < 2 || limited[0] != LimitEventRate || limited[len(limited)-1] != LimitEventRateDisconnect {
		t.Errorf("OnLimited calls %v, want event_rate ... event_rate_disconnect", limited)
	}
}

// testRateLimitInteractive: 100 events at 50/s over each transport, with
// the default limit: none is dropped, nothing is logged.
func testRateLimitInteractive(t *testing.T, d *nodeclient.Driver) {
	zcore, obs := observer.New(zap.InfoLevel)
	var (
		got     atomic.Int64
		limited atomic.Int64
	)
	e := startClientEnvWith(t, d, "4", func(o *Options) {
		o.Logger = zap.New(zcore)
		o.OnLimited = func(*Socket, string) { limited.Add(1) }
	}, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			s.On("tick", func(*Socket, []any, AckFunc) { got.Add(1) })
		})
	})
	for _, tr := range []string{"polling", "websocket"} {
		got.Store(0)
		c, _ := e.mustConnect(tr, "", map[string]any{"transports": []string{tr}})
		for i := range 100 {
			c.Emit("tick", i)
			time.Sleep(20 * time.Millisecond) // an interactive pace, under the rate limit on purpose
		}
		// Acks are answered in order, after every tick.
		if _, err := c.EmitWithAck(clientWait, "echo-ack"); err != nil {
			t.Fatal(err)
		}
		if n := got.Load(); n != 100 {
			t.Errorf("%s: server handled %d of 100 ticks", tr, n)
		}
	}
	if n := limited.Load(); n != 0 {
		t.Errorf("OnLimited called %d times", n)
	}
	if n := obs.Len(); n != 0 {
		t.Errorf("%d log lines: %v", n, obs.All())
	}
}

// testRateLimitAck: with a small bucket the event over it is answered with
// the ack error; the drops of one window reaching the burst disconnect the
// client, which sees "io server disconnect" and stays away.
func testRateLimitAck(t *testing.T, d *nodeclient.Driver) {
	reasons := make(chan string, 1)
	e := startClientEnvWith(t, d, "4", func(o *Options) {
		o.EventBurst = 5
		o.EventRate = 0.1 // refill window 50s: nothing comes back during the test
	}, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			s.OnDisconnect(func(_ *Socket, r string) { reasons <- r })
		})
	})
	c, _ := e.mustConnect("a", "", reconnectFast)
	for i := range 5 {
		got, err := c.EmitWithAck(clientWait, "echo-ack", i)
		if err != nil || !reflect.DeepEqual(got, []any{float64(i)}) {
			t.Fatalf("event %d within the burst: %v, %v", i, got, err)
		}
	}
	got, err := c.EmitWithAck(clientWait, "echo-ack", 5)
	if want := []any{map[string]any{"error": "rate limit exceeded"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ack of a dropped event: %v, %v; want %v", got, err, want)
	}
	// Four more drops: the fifth of the window disconnects.
	for i := range 3 {
		if got, err := c.EmitWithAck(clientWait, "echo-ack", i); err != nil || len(got) != 1 {
			t.Fatalf("drop %d: %v, %v", i+2, got, err)
		}
	}
	c.Emit("echo", "last")
	if r, err := c.WaitDisconnect(clientWait); err != nil || r != "io server disconnect" {
		t.Fatalf("client disconnect = %q, %v; want io server disconnect", r, err)
	}
	select {
	case r := <-reasons:
		if r != "rate limit exceeded" {
			t.Fatalf("server disconnect reason %q", r)
		}
	case <-time.After(clientWait):
		t.Fatal("server socket not disconnected")
	}
	time.Sleep(500 * time.Millisecond) // several reconnection delays
	for _, ev := range c.Events() {
		if strings.HasPrefix(ev.Type, "reconnect") {
			t.Fatalf("client tried to come back: %s", ev.Type)
		}
	}
	if n := e.srv.ConnCount(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	assertNoEvent(t, c, "echo")
}

// TestEventRateLimitOff: a negative rate turns the limit off.
func TestEventRateLimitOff(t *testing.T) {
	var got atomic.Int64
	_, ts := newTestServerWith(t, func(o *Options) { o.EventRate = -1; o.EventBurst = 2 }, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			s.On("x", func(_ *Socket, _ []any, ack AckFunc) {
				got.Add(1)
				if ack != nil {
					_ = ack()
				}
			})
		})
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	for range 50 {
		c.Send(`42["x"]`)
	}
	c.Send(`421["x"]`)
	c.Expect("431[]") // handled, not an ack error
	if n := got.Load(); n != 51 {
		t.Fatalf("%d of 51 events handled", n)
	}
}

// newTestServerWith is newTestServer with options changed by opts, and a
// check that no realtime goroutine is left once both are closed.
func newTestServerWith(t *testing.T, opts func(*Options), setup func(*Server)) (*Server, *httptest.Server) {
	t.Helper()
	leaks := testkit.TrackGoroutines(realtimeCode)
	o := Options{
		Engine: engineio.Options{
			PingInterval:   200 * time.Millisecond,
			PingTimeout:    1 * time.Second,
			AllowedOrigins: []string{"*"},
		},
		ConnectTimeout: 2 * time.Second,
	}
	if opts != nil {
		opts(&o)
	}
	srv := NewServer(o)
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		leaks.Check(t, 5*time.Second)
	})
	return srv, ts
}

// TestUnsolicitedAcksLimited: answers to the server's own ack requests
// never count against the event rate, however many; acks that nothing
// waits for do, so a client flooding them is disconnected as an event
// flood would be.
func TestUnsolicitedAcksLimited(t *testing.T) {
	sockets := make(chan *Socket, 1)
	_, ts := newTestServerWith(t, func(o *Options) { o.EventRate = 0.1; o.EventBurst = 5 }, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) { sockets <- s })
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	s := <-sockets
	const asked = 20 // four times the burst
	answered := make(chan []any, asked)
	for i := range asked {
		if err := s.EmitWithAckFunc(10*time.Second, "q", []any{i}, func(args []any, err error) {
			if err != nil {
				t.Errorf("ack %d: %v", i, err)
			}
			answered <- args
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range asked {
		c.ExpectPrefix(fmt.Sprintf(`42%d["q",%d]`, i, i))
		c.Send(fmt.Sprintf("43%d[%d]", i, i))
	}
	for range asked {
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
			t.Fatal("an answer to the server's request was not delivered")
		}
	}
	if !s.Connected() {
		t.Fatal("answering the server's requests disconnected the client")
	}
	sent := 0
	for i := range 50 { // nothing waits for these; the server closes before the last
		if c.Write(websocket.TextMessage, fmt.Appendf(nil, "43%d[]", 1000+i)) != nil {
			break
		}
		sent++
	}
	if sent < 10 {
		t.Fatalf("closed after %d unsolicited acks, before burst and drops", sent)
	}
	c.Expect("41")
	c.ExpectClosed(5 * time.Second)
	if s.Connected() {
		t.Fatal("a flood of unsolicited acks left the socket connected")
	}
}
