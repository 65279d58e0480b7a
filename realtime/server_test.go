package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// newTestServer starts a Server behind httptest with short timings; both are
// closed at the end of the test.
func newTestServer(t testing.TB, setup func(*Server)) (*Server, *httptest.Server) {
	t.Helper()
	srv := NewServer(Options{
		Engine: engineio.Options{
			PingInterval:   200 * time.Millisecond,
			PingTimeout:    1 * time.Second,
			AllowedOrigins: []string{"*"},
		},
		ConnectTimeout: 2 * time.Second,
	})
	if setup != nil {
		setup(srv)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return srv, ts
}

func sidOf(t testing.TB, connectFrame, prefix string) string {
	t.Helper()
	var p struct{ Sid string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(connectFrame, prefix)), &p); err != nil || len(p.Sid) != 20 {
		t.Fatalf("connect reply %q: want {\"sid\": <20 chars>} (%v)", connectFrame, err)
	}
	return p.Sid
}

func TestConnectNamespaces(t *testing.T) {
	_, ts := newTestServer(t, func(s *Server) {
		for _, name := range []string{"/", "/custom"} {
			s.Of(name).OnConnection(func(s *Socket) {
				auth := s.Handshake().Auth
				if auth == nil {
					auth = map[string]any{}
				}
				_ = s.Emit("auth", auth)
			})
		}
	})
	tests := []struct {
		name, send, replyPrefix, auth string
	}{
		{"main", "40", "40", `42["auth",{}]`},
		{"main with payload", `40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`},
		{"custom", "40/custom,", "40/custom,", `42/custom,["auth",{}]`},
		{"custom without comma", "40/custom", "40/custom,", `42/custom,["auth",{}]`},
		{"custom with payload", `40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts, "")
			c.Send(tt.send)
			sidOf(t, c.ExpectPrefix(tt.replyPrefix+"{"), tt.replyPrefix)
			c.Expect(tt.auth)
		})
	}
	t.Run("unknown namespace", func(t *testing.T) {
		c := dialRaw(t, ts, "")
		c.Send("40/random")
		c.Expect(`44/random,{"message":"Invalid namespace"}`)
		// The connection stays open: "/" still connects.
		c.Send("40")
		c.ExpectPrefix(`40{"sid":`)
	})
	t.Run("two namespaces on one connection", func(t *testing.T) {
		c := dialRaw(t, ts, "")
		c.Send("40")
		c.ExpectPrefix("40{")
		c.Expect(`42["auth",{}]`)
		c.Send("40/custom,")
		c.ExpectPrefix("40/custom,{")
		c.Expect(`42/custom,["auth",{}]`)
	})
}

func TestBadInputClosesConnection(t *testing.T) {
	_, ts := newTestServer(t, nil)
	tests := []struct{ name, before, bad string }{
		{"unknown type", "", "4abc"},
		{"event before connect", "", `42["hello"]`},
		{"payload not an array", "40", "42{}"},
		{"bad ack id", "40", `42abc["message"]`},
		{"reserved event name", "40", `42["disconnect"]`},
		{"second connect", "40", "40"},
		{"event for a namespace not joined", "40", `42/custom,["x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, ts, "")
			if tt.before != "" {
				c.Send(tt.before)
				c.ExpectPrefix("40{")
			}
			c.Send(tt.bad)
			c.ExpectClosed(2 * time.Second)
		})
	}
}

func TestMiddlewareRefusal(t *testing.T) {
	t.Parallel()
	var handled sync.WaitGroup
	_, ts := newTestServer(t, func(s *Server) {
		s.Of("/").Use(func(s *Socket) error {
			if s.Handshake().Auth["token"] != "good" {
				return &ConnectError{Message: "not authorized", Data: map[string]any{"reason": "bad token"}}
			}
			return nil
		})
		s.Of("/").OnConnection(func(s *Socket) {
			handled.Add(1)
			_ = s.Emit("welcome")
		})
	})
	c := dialRaw(t, ts, "")
	c.Send(`40{"token":"bad"}`)
	c.Expect(`44{"message":"not authorized","data":{"reason":"bad token"}}`)
	c.Quiet(200 * time.Millisecond)
	c.Send(`40{"token":"good"}`)
	c.ExpectPrefix(`40{"sid":`)
	c.Expect(`42["welcome"]`)
}

func TestEventsAndAcks(t *testing.T) {
	t.Parallel()
	got := make(chan []any, 4)
	var srvSock *Socket
	ready := make(chan struct{})
	_, ts := newTestServer(t, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			srvSock = s
			s.On("message", func(s *Socket, args []any, ack AckFunc) {
				_ = s.Emit("message-back", args...)
			})
			s.On("message-with-ack", func(_ *Socket, args []any, ack AckFunc) {
				if ack == nil {
					t.Error("ack requested but nil")
					return
				}
				_ = ack(args...)
				if err := ack(); !errors.Is(err, ErrAckUsed) {
					t.Errorf("second ack = %v, want ErrAckUsed", err)
				}
			})
			s.OnAny(func(_ *Socket, event string, args []any, _ AckFunc) {
				got <- append([]any{event}, args...)
			})
			close(ready)
		})
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	<-ready

	c.Send(`42["message",1,"2",{"3":[true]}]`)
	c.Expect(`42["message-back",1,"2",{"3":[true]}]`)
	if a := <-got; a[0] != "message" || a[1] != json.Number("1") {
		t.Fatalf("catch-all got %v", a)
	}

	c.Send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
	c.Expect(`43456[1,"2",{"3":[false]}]`)

	// Binary both ways: two attachments, echoed as a binary event.
	c.Send(`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.SendBinary([]byte{1, 2, 3})
	c.SendBinary([]byte{4, 5, 6})
	c.Expect(`452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	if f := c.Next(time.Second); !f.Binary || f.Data != "\x01\x02\x03" {
		t.Fatalf("first attachment = %q", f.Data)
	}
	if f := c.Next(time.Second); !f.Binary || f.Data != "\x04\x05\x06" {
		t.Fatalf("second attachment = %q", f.Data)
	}
	c.Send(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.SendBinary([]byte{1})
	c.SendBinary([]byte{2})
	c.Expect(`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.Next(time.Second)
	c.Next(time.Second)

	// Server to client ack: answered, then one that times out.
	type result struct {
		args []any
		err  error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a, err := srvSock.EmitWithAck(ctx, "question", "x")
		res <- result{a, err}
	}()
	f := c.ExpectPrefix(`42`)
	id := strings.TrimSuffix(strings.TrimPrefix(f, "42"), `["question","x"]`)
	c.Send("43" + id + `["answer"]`)
	if r := <-res; r.err != nil || len(r.args) != 1 || r.args[0] != "answer" {
		t.Fatalf("EmitWithAck = %v, %v", r.args, r.err)
	}
	errc := make(chan error, 1)
	if err := srvSock.EmitWithAckFunc(100*time.Millisecond, "question", nil, func(_ []any, err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	c.ExpectPrefix("42")
	select {
	case err := <-errc:
		if !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("unanswered ack: %v, want ErrAckTimeout", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ack timeout never fired")
	}
	if err := srvSock.Emit("connect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("emitting a reserved name: %v", err)
	}
}

func TestRoomsAndBroadcast(t *testing.T) {
	t.Parallel()
	joined := make(chan *Socket, 3)
	srv, ts := newTestServer(t, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			if r := s.Handshake().Query.Get("room"); r != "" {
				s.Join(r)
			}
			s.On("shout", func(s *Socket, args []any, _ AckFunc) {
				_ = s.To(s.Handshake().Query.Get("room")).Emit("heard", args...)
			})
			joined <- s
		})
	})
	a := dialRaw(t, ts, "&room=r1")
	b := dialRaw(t, ts, "&room=r1")
	c := dialRaw(t, ts, "&room=r2")
	for _, cl := range []*testkit.WS{a, b, c} {
		cl.Send("40")
		cl.ExpectPrefix("40{")
		<-joined
	}
	nsp := srv.Of("/")
	if got := nsp.Rooms()["r1"]; got != 2 {
		t.Fatalf("room r1 has %d sockets, want 2", got)
	}

	// A socket's broadcast reaches the others in its room, not itself.
	a.Send(`42["shout","hi"]`)
	b.Expect(`42["heard","hi"]`)
	a.Quiet(100 * time.Millisecond)
	c.Quiet(100 * time.Millisecond)

	// Namespace-wide broadcast with except.
	if err := nsp.Except("r2").Emit("news", 1); err != nil {
		t.Fatal(err)
	}
	a.Expect(`42["news",1]`)
	b.Expect(`42["news",1]`)
	c.Quiet(100 * time.Millisecond)

	// Acks from a room, collected.
	go func() {
		f := a.ExpectPrefix("42")
		a.Send("43" + f[2:strings.Index(f, "[")] + `["from-a"]`)
	}()
	go func() {
		f := b.ExpectPrefix("42")
		b.Send("43" + f[2:strings.Index(f, "[")] + `["from-b"]`)
	}()
	replies, err := nsp.To("r1").Timeout(2*time.Second).EmitWithAck(context.Background(), "poll")
	if err != nil || len(replies) != 2 {
		t.Fatalf("EmitWithAck = %v, %v; want 2 replies", replies, err)
	}

	// Fetch, make join, leave, disconnect by room.
	infos, _ := nsp.In("r2").FetchSockets(context.Background())
	if len(infos) != 1 {
		t.Fatalf("fetch r2: %d sockets", len(infos))
	}
	_ = nsp.In("r2").SocketsJoin(context.Background(), "r3")
	if nsp.Rooms()["r3"] != 1 {
		t.Fatalf("r3 after SocketsJoin: %v", nsp.Rooms())
	}
	_ = nsp.In("r3").SocketsLeave(context.Background(), "r2")
	if _, ok := nsp.Rooms()["r2"]; ok {
		t.Fatalf("r2 still there after SocketsLeave: %v", nsp.Rooms())
	}
	_ = nsp.In("r3").DisconnectSockets(context.Background(), false)
	c.Expect("41")
	if nsp.Len() != 2 {
		t.Fatalf("%d sockets after disconnecting r3, want 2", nsp.Len())
	}
	if _, ok := nsp.Rooms()["r3"]; ok {
		t.Fatal("a disconnected socket stayed in its room")
	}
}

func TestClientDisconnectKeepsConnection(t *testing.T) {
	reasons := make(chan string, 2)
	_, ts := newTestServer(t, func(s *Server) {
		for _, name := range []string{"/", "/custom"} {
			s.Of(name).OnConnection(func(s *Socket) {
				s.OnDisconnect(func(_ *Socket, reason string) { reasons <- reason })
				s.On("message", func(s *Socket, args []any, _ AckFunc) { _ = s.Emit("message-back", args...) })
			})
		}
	})
	c := dialRaw(t, ts, "")
	c.Send("40/custom")
	c.ExpectPrefix("40/custom,{")
	c.Send("41/custom")
	if r := <-reasons; r != "client namespace disconnect" {
		t.Fatalf("reason %q", r)
	}
	c.Send("40")
	c.ExpectPrefix("40{")
	c.Send(`42["message",1]`)
	c.Expect(`42["message-back",1]`)
}

// TestConnectTimeout: a client that never sends CONNECT is closed once the
// connect timeout passes, not before; one that joined stays, and the
// server's queue of waiting connections (connectwait.go) is left empty.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	srv := NewServer(Options{ConnectTimeout: 300 * time.Millisecond})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	joined := dialRaw(t, ts, "")
	joined.Send("40")
	joined.ExpectPrefix("40{")
	c := dialRaw(t, ts, "")
	start := time.Now()
	waitFor(t, "the joined connection to leave the queue", func() bool { return srv.connectWait.waiting() == 1 })
	c.ExpectClosed(3 * time.Second)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %v, before the connect timeout", d)
	}
	time.Sleep(100 * time.Millisecond)
	joined.Send(`42["still here"]`)
	if srv.ConnCount() != 1 {
		t.Fatalf("%d connections, want the joined one", srv.ConnCount())
	}
	if n := srv.connectWait.waiting(); n != 0 {
		t.Fatalf("%d waiting after the idle one was closed", n)
	}
}

// TestCloseLeavesNoGoroutine checks that closing the server sends the close
// packet and ends every goroutine the connections used.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	leaks := testkit.TrackGoroutines()
	srv := NewServer(Options{})
	srv.Of("/").OnConnection(func(s *Socket) { s.Join("room") })
	ts := httptest.NewServer(srv)
	var clients []*testkit.WS
	for range 5 {
		c := dialRaw(t, ts, "")
		c.Send("40")
		c.ExpectPrefix("40{")
		clients = append(clients, c)
	}
	srv.Close()
	for _, c := range clients {
		c.Expect("1")
		c.ExpectClosed(2 * time.Second)
		c.Close()
	}
	ts.Close()
	leaks.Check(t, 3*time.Second)
	if srv.Of("/").Len() != 0 || len(srv.Of("/").Rooms()) != 0 {
		t.Fatal("sockets or rooms left after close")
	}
}

// TestClosedSocketLeavesNoGoroutine checks that a client going away ends
// every goroutine of its connection while the server keeps running, and
// that its socket leaves its rooms.
func TestClosedSocketLeavesNoGoroutine(t *testing.T) {
	srv, ts := newTestServer(t, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			s.Join("room")
			_ = s.Emit("hello", []byte{1, 2, 3})
		})
	})
	// Warm up the HTTP server's own goroutines before the baseline (those
	// of the warm-up connection are in it: only newer ones must end).
	warm := dialRaw(t, ts, "")
	warm.Close()
	leaks := testkit.TrackGoroutines()

	var clients []*testkit.WS
	for range 10 {
		c := dialRaw(t, ts, "")
		c.Send("40")
		c.ExpectPrefix("40{")
		c.ExpectPrefix(`451-["hello"`)
		c.Next(time.Second)
		clients = append(clients, c)
	}
	if n := srv.Of("/").Rooms()["room"]; n != 10 {
		t.Fatalf("room has %d sockets, want 10", n)
	}
	for _, c := range clients {
		c.Close()
	}
	waitFor(t, "the connections to end", func() bool { return srv.ConnCount() == 0 })
	leaks.Check(t, 3*time.Second)
	if srv.ConnCount() != 0 || srv.Of("/").Len() != 0 || srv.Of("/").Rooms()["room"] != 0 {
		t.Fatalf("connections %d, sockets %d, room %d after the clients left",
			srv.ConnCount(), srv.Of("/").Len(), srv.Of("/").Rooms()["room"])
	}
}

// TestSocketLocalIsNotData: the application's own value stays out of the
// socket's data and of its Info.
func TestSocketLocalIsNotData(t *testing.T) {
	s := &Socket{}
	if s.Local() != nil {
		t.Fatal("a new socket has a local value")
	}
	type state struct{ secret string }
	st := &state{secret: "token"}
	s.SetLocal(st)
	s.Set("visible", 1)
	if got, _ := s.Local().(*state); got != st {
		t.Fatalf("Local() = %v, want the stored value", s.Local())
	}
	if d := s.Data(); len(d) != 1 || d["visible"] != 1 {
		t.Fatalf("Data() = %v, want only the data set with Set", d)
	}
}
