package realtime

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// fakeSession stands in for an *engineio.Session: it keeps what the conn
// sends and how it was closed, so a conn can be driven without a network.
type fakeSession struct {
	req *http.Request

	mu     sync.Mutex
	sent   []*engineio.Message
	closed string
}

func newFakeSession() *fakeSession {
	return &fakeSession{req: httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket", nil)}
}

func (f *fakeSession) ID() string             { return "fakesessionfakesessi" }
func (f *fakeSession) Request() *http.Request { return f.req }
func (f *fakeSession) Transport() string      { return engineio.TransportWebSocket }
func (f *fakeSession) Writable() bool         { return true }

func (f *fakeSession) Send(msgs ...*engineio.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed != "" {
		return engineio.ErrSessionClosed
	}
	f.sent = append(f.sent, msgs...)
	return nil
}

func (f *fakeSession) Close(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed == "" {
		f.closed = reason
	}
}

// take returns the text of the messages sent since the last take, and
// whether the session was closed.
func (f *fakeSession) take() ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.sent {
		out = append(out, string(m.Data()))
	}
	f.sent = nil
	return out, f.closed != ""
}

// fuzzServer is shared by the iterations of one fuzzing process: "/" and
// "/static" exist; names under "/dyn" are dynamic, refused when they
// contain "refuse". Every socket records the events it handles and acks
// with the name's length.
var fuzzServer = sync.OnceValue(func() *Server {
	srv := NewServer(Options{})
	handle := func(n *Namespace) {
		n.OnConnection(func(s *Socket) {
			s.OnAny(func(s *Socket, event string, _ []any, ack AckFunc) {
				s.Set("event", event)
				if ack != nil {
					_ = ack(len(event))
				}
			})
		})
	}
	handle(srv.Of("/"))
	handle(srv.Of("/static"))
	srv.OfFunc(func(name string) bool { return strings.HasPrefix(name, "/dyn") }, func(n *Namespace) {
		n.Use(func(s *Socket) error {
			if strings.Contains(s.Namespace().Name(), "refuse") {
				return &ConnectError{Message: "refused"}
			}
			return nil
		})
		handle(n)
	})
	return srv
})

// FuzzNames sends a CONNECT for the namespace nsp (the raw bytes between
// the type and the comma), then an event named event (a JSON string, or a
// number made of event's digits), with or without an ack, through a conn's
// decoder and packet path. Names over the limits never connect or reach a
// handler, replies stay small, and no namespace outlives its sockets.
func FuzzNames(f *testing.F) {
	f.Add([]byte("/"), "hello", false, true)
	f.Add([]byte(""), "hello", false, false)
	f.Add([]byte("/static"), "12345", true, true)
	f.Add([]byte("/dyn-room"), "message", false, true)
	f.Add([]byte("/dyn-refuse"), "message", false, true)
	f.Add([]byte("/unknown"), "x", false, false)
	f.Add([]byte("/dyn-"+strings.Repeat("n", 300)), "x", false, true)
	f.Add([]byte("/"+strings.Repeat("é", 200)), "x", false, true)
	f.Add([]byte("/dyn"), strings.Repeat("e", 257), false, true)
	f.Add([]byte("/dyn"), strings.Repeat("e", 256), false, true)
	f.Add([]byte("/dyn"), strings.Repeat("7", 400), true, true)
	f.Add([]byte("/dyn,{\"a\":1}"), "connect", false, true)
	f.Add([]byte("/dyn\u2028"), "\u0000\"\\", false, true)
	f.Fuzz(func(t *testing.T, nsp []byte, event string, numeric, withAck bool) {
		srv := fuzzServer()
		opts := srv.opts.Load()
		fs := newFakeSession()
		c := newConn(srv, fs, opts)
		defer func() {
			c.OnClose("transport close")
			for _, n := range srv.Namespaces() {
				if name := n.Name(); name != "/" && name != "/static" {
					t.Fatalf("namespace %.80q left after its connection closed", name)
				}
			}
			srv.mu.RLock()
			pending := len(srv.pending)
			srv.mu.RUnlock()
			if pending != 0 {
				t.Fatalf("%d pending namespaces left", pending)
			}
		}()
		checkSmall := func(frames []string) {
			for _, fr := range frames {
				if len(fr) > 2*opts.MaxNamespaceLength+128 {
					t.Fatalf("reply of %d bytes: %.80q", len(fr), fr)
				}
			}
		}

		text := []byte("0")
		if len(nsp) > 0 {
			text = append(append(text, nsp...), ',')
		}
		want, derr := parser.Decode(text)
		c.OnMessage(text, false)
		frames, closed := fs.take()
		checkSmall(frames)
		if derr != nil {
			if !closed || len(frames) != 0 {
				t.Fatalf("CONNECT %.80q does not decode (%v) but closed=%v, frames %d", text, derr, closed, len(frames))
			}
			return
		}
		name := want.Namespace
		head := "0"
		if name != "/" {
			head += name + ","
		}
		valid := !over(len(name), opts.MaxNamespaceLength) &&
			(name == "/" || name == "/static" || strings.HasPrefix(name, "/dyn") && !strings.Contains(name, "refuse"))
		if closed || len(frames) != 1 {
			t.Fatalf("CONNECT %.80q: closed=%v, %d frames", text, closed, len(frames))
		}
		if ok := strings.HasPrefix(frames[0], head+`{"sid":`); ok != valid {
			t.Fatalf("CONNECT %.80q (namespace of %d bytes): reply %.80q, want success %v", text, len(name), frames[0], valid)
		}
		if !valid {
			if !strings.HasPrefix(frames[0], "4") {
				t.Fatalf("refused CONNECT answered %.80q", frames[0])
			}
			if _, ok := srv.Namespace(name); ok && name != "/" && name != "/static" {
				t.Fatalf("refused CONNECT left namespace %.80q", name)
			}
			return
		}
		if n, ok := srv.Namespace(name); !ok || n.Len() != 1 {
			t.Fatalf("namespace %.80q not there after its CONNECT", name)
		}
		c.mu.Lock()
		s := c.socketIn(name)
		c.mu.Unlock()

		// The event.
		ev := head[1:]
		id := ""
		if withAck {
			id = "7"
		}
		var nameJSON []byte
		if numeric {
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, event)
			if digits == "" || (len(digits) > 1 && digits[0] == '0') {
				digits = "1" + digits
			}
			nameJSON = []byte(digits)
		} else {
			nameJSON, _ = json.Marshal(event)
		}
		evText := []byte("2" + ev + id + "[" + string(nameJSON) + "]")
		p, derr := parser.Decode(evText)
		c.OnMessage(evText, false)
		frames, closed = fs.take()
		checkSmall(frames)
		if derr != nil {
			if !closed {
				t.Fatalf("event %.80q does not decode (%v) but the connection stays", evText, derr)
			}
			return
		}
		got := eventName(p.Data.([]any)[0])
		seen, handled := s.Get("event")
		long := over(len(got), opts.MaxEventNameLength)
		if closed || handled == long || (handled && seen != got) {
			t.Fatalf("event name of %d bytes: closed=%v, handled=%v", len(got), closed, handled)
		}
		var wantFrames []string
		if withAck {
			reply := `[` + strconv.Itoa(len(got)) + `]`
			if long {
				reply = `[{"error":"event name too long"}]`
			}
			wantFrames = []string{"3" + ev + id + reply}
		}
		if strings.Join(frames, "\n") != strings.Join(wantFrames, "\n") {
			t.Fatalf("event name of %d bytes: replies %.200q, want %.200q", len(got), frames, wantFrames)
		}
	})
}
