package realtime

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// Socket.IO protocol v4 over Engine.IO v3 (socket.io-client 2.x), the
// expectations of Node 4.x with allowEIO3.

// dialV3 opens a raw v3 WebSocket and returns it with the engine sid.
func dialV3(t *testing.T, ts *httptest.Server, query string) (*testkit.WS, string) {
	t.Helper()
	c := testkit.DialWSURL(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=3&transport=websocket"+query, nil)
	c.Wait = 2 * time.Second
	open := c.Next(2 * time.Second)
	var o struct{ Sid string }
	if !strings.HasPrefix(open.Data, "0{") || json.Unmarshal([]byte(open.Data[1:]), &o) != nil {
		t.Fatalf("first frame = %q, want an open packet", open.Data)
	}
	return c, o.Sid
}

func eio3Server(t *testing.T, setup func(*Server)) (*Server, *httptest.Server) {
	return newTestServerWith(t, func(o *Options) { o.Engine.AllowEIO3 = true }, setup)
}

// Implicit "/": the server connects a v3 client to "/" on open, with an
// empty auth and the engine sid as socket id, and replies a bare 40; the
// "/" middlewares and connection handlers run.
func TestEIO3ImplicitMainNamespace(t *testing.T) {
	var mu sync.Mutex
	var auth map[string]any
	ids := make(chan string, 1)
	_, ts := eio3Server(t, func(s *Server) {
		s.Of("/").Use(func(sock *Socket) error {
			mu.Lock()
			auth = sock.Handshake().Auth
			mu.Unlock()
			return nil
		})
		s.Of("/").OnConnection(func(sock *Socket) { ids <- sock.ID() })
	})
	c, sid := dialV3(t, ts, "")
	c.Expect("40")
	select {
	case id := <-ids:
		if id != sid {
			t.Errorf("socket id %q, want the engine sid %q", id, sid)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no connection handler on /")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 0 {
		t.Errorf("auth %v, want none", auth)
	}
	// A CONNECT for "/" again is a second CONNECT: closed, as Node does.
	c.Send("40")
	c.ExpectClosed(2 * time.Second)
}

// A namespace CONNECT carries its auth in a query; the reply has no
// payload; the socket id is "<nsp>#<sid>" and is the socket's own room;
// events, acks and binary attachments are as in v5.
func TestEIO3Namespace(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth map[string]any
	var sock *Socket
	connected := make(chan struct{}, 1)
	srv, ts := eio3Server(t, func(s *Server) {
		chat := s.Of("/chat")
		chat.Use(func(so *Socket) error {
			mu.Lock()
			auth = so.Handshake().Auth
			mu.Unlock()
			return nil
		})
		chat.OnConnection(func(so *Socket) {
			mu.Lock()
			sock = so
			mu.Unlock()
			so.On("echo", func(so *Socket, args []any, ack AckFunc) {
				if ack != nil {
					_ = ack(args...)
				}
			})
			connected <- struct{}{}
		})
	})
	c, sid := dialV3(t, ts, "")
	c.Expect("40")
	c.Send("40/chat?token=abc&x=1&x=2,")
	c.Expect("40/chat,")
	<-connected
	mu.Lock()
	if sock.ID() != "/chat#"+sid {
		t.Errorf("socket id %q, want /chat#%s", sock.ID(), sid)
	}
	if auth["token"] != "abc" || auth["x"] != "2" || len(auth) != 2 {
		t.Errorf("auth %v, want token abc and x 2 (the last)", auth)
	}
	id := sock.ID()
	mu.Unlock()

	c.Send(`42/chat,7["echo",1,"a"]`)
	c.Expect(`43/chat,7[1,"a"]`)
	// Binary in: a v3 binary frame starts with the type byte 4.
	c.Send(`452-/chat,8["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.SendBinary([]byte{4, 1, 2})
	c.SendBinary([]byte{4, 3})
	c.Expect(`462-/chat,8[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	for _, want := range []string{"\x04\x01\x02", "\x04\x03"} {
		if f := c.Next(2 * time.Second); !f.Binary || f.Data != want {
			t.Errorf("attachment %q (binary %v), want %q", f.Data, f.Binary, want)
		}
	}
	// The socket's id is its room.
	if err := srv.Of("/chat").To(id).Emit("news", "x"); err != nil {
		t.Fatal(err)
	}
	c.Expect(`42/chat,["news","x"]`)
	c.Send("41/chat,")
	c.Quiet(200 * time.Millisecond)
}

// Refusals: a middleware error is 44 with the JSON of its data, or of its
// message as a string; an unknown namespace keeps the object.
func TestEIO3ConnectErrors(t *testing.T) {
	_, ts := eio3Server(t, func(s *Server) {
		s.Of("/plain").Use(func(*Socket) error { return &ConnectError{Message: "not allowed"} })
		s.Of("/data").Use(func(*Socket) error {
			return &ConnectError{Message: "not allowed", Data: map[string]any{"code": 7}}
		})
		s.Of("/number").Use(func(*Socket) error { return &ConnectError{Message: "as text", Data: 42} })
	})
	c, _ := dialV3(t, ts, "")
	c.Expect("40")
	c.Send("40/plain,")
	c.Expect(`44/plain,"not allowed"`)
	c.Send("40/data,")
	c.Expect(`44/data,{"code":7}`)
	c.Send("40/number,")
	c.Expect(`44/number,"as text"`)
	c.Send("40/nope,")
	c.Expect(`44/nope,{"message":"Invalid namespace"}`)
}

// A "/" middleware refuses the implicit connect: 44 with the message
// string, and the connection stays open for other namespaces.
func TestEIO3ImplicitRefused(t *testing.T) {
	_, ts := eio3Server(t, func(s *Server) {
		s.Of("/").Use(func(*Socket) error { return &ConnectError{Message: "who are you"} })
		s.Of("/open")
	})
	c, _ := dialV3(t, ts, "")
	c.Expect(`44"who are you"`)
	c.Send("40/open,")
	c.Expect("40/open,")
}

// A v4 client on the same server is unchanged: 40{"sid":...} with a
// 20-character id.
func TestEIO3LeavesV4Alone(t *testing.T) {
	t.Parallel()
	_, ts := eio3Server(t, nil)
	c := dialRaw(t, ts, "")
	c.Quiet(100 * time.Millisecond) // no implicit connect for v4
	c.Send("40")
	reply := c.ExpectPrefix(`40{"sid":"`)
	var r struct{ Sid string }
	if err := json.Unmarshal([]byte(reply[2:]), &r); err != nil || len(r.Sid) != 20 {
		t.Errorf("v4 CONNECT reply %q", reply)
	}
}
