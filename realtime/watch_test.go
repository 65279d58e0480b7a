package realtime

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// recorder is a Watcher that writes down what it is told, one line each.
type recorder struct {
	mu      sync.Mutex
	lines   []string
	in, out int // message packets
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) ConnOpened(transport string) { r.add("open %s", transport) }
func (r *recorder) ConnClosed(reason string)    { r.add("close %s", reason) }
func (r *recorder) PacketReceived(int)          { r.mu.Lock(); r.in++; r.mu.Unlock() }
func (r *recorder) PacketsSent(p, _ int)        { r.mu.Lock(); r.out += p; r.mu.Unlock() }
func (r *recorder) SocketConnected(s *Socket)   { r.add("connected %s", s.Namespace().Name()) }
func (r *recorder) SocketUpgraded(s *Socket) {
	r.add("upgraded %s %s", s.Namespace().Name(), s.Transport())
}
func (r *recorder) SocketDisconnected(s *Socket, reason string) {
	r.add("disconnected %s %s", s.Namespace().Name(), reason)
}
func (r *recorder) RoomJoined(n *Namespace, room, id string) {
	r.add("joined %s %s", n.Name(), r.name(room, id))
}
func (r *recorder) RoomLeft(n *Namespace, room, id string) {
	r.add("left %s %s", n.Name(), r.name(room, id))
}
func (r *recorder) EventReceived(s *Socket, data []any) { r.add("received %v", data) }
func (r *recorder) EventSent(s *Socket, data []any)     { r.add("sent %v", data) }

// name writes a socket's own id-room as "<id>".
func (r *recorder) name(room, id string) string {
	if room == id {
		return "<id>"
	}
	return room
}

// waitLine waits until a line equal to want was recorded and returns the
// lines up to it.
func (r *recorder) waitLine(t *testing.T, want string) []string {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		r.mu.Lock()
		i := slices.Index(r.lines, want)
		got := slices.Clone(r.lines)
		r.mu.Unlock()
		if i >= 0 {
			return got[:i+1]
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("no %q; got %q", want, got)
		}
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.lines = nil
	r.mu.Unlock()
}

// TestWatcher: a socket that connects over polling, upgrades, joins,
// leaves, sends and receives events, then disconnects is told to the
// Watcher in Node's order; a join of a room the socket is in already is
// not; and once the Watcher is removed, nothing more is told.
func TestWatcher(t *testing.T) {
	srv := NewServer(Options{Engine: engineio.Options{PingInterval: time.Minute}})
	rec := newRecorder()
	srv.Watch(rec)
	ns := srv.Of("/")
	ns.OnConnection(func(s *Socket) {
		s.On("join", func(s *Socket, args []any, _ AckFunc) {
			_ = s.Join("r1", "r2")
			_ = s.Join("r1") // already in: not told again
		})
		s.On("leave", func(s *Socket, args []any, _ AckFunc) {
			s.Leave("r2")
			s.Leave("never") // not in it: not told
		})
		s.On("shout", func(s *Socket, args []any, _ AckFunc) {
			_ = s.Emit("echo", args...)
			_ = ns.To("r1").Emit("room", "hi")
		})
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })

	p := testkit.OpenPolling(t, ts.URL+"/socket.io/", nil, nil)
	p.MustPost("40")
	if _, body := p.Get(); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("CONNECT answer %q", body)
	}
	got := rec.waitLine(t, "connected /")
	if want := []string{"open polling", "joined / <id>", "connected /"}; !slices.Equal(got, want) {
		t.Fatalf("connect: %q, want %q", got, want)
	}
	if n := srv.PollingConnCount(); n != 1 {
		t.Errorf("PollingConnCount %d, want 1", n)
	}

	// Upgrade to WebSocket; the pending poll ends with a noop.
	q := url.Values{"sid": {p.SID}}
	polled := make(chan struct{})
	go func() { defer close(polled); _, _, _ = p.TryGet() }()
	ws := testkit.DialWSURL(t, testkit.WSURL(ts.URL+"/socket.io/", q), nil)
	ws.Wait = 2 * time.Second
	ws.Send("2probe")
	ws.Expect("3probe")
	<-polled
	ws.Send("5")
	rec.waitLine(t, "upgraded / websocket")
	if n := srv.PollingConnCount(); n != 0 {
		t.Errorf("PollingConnCount after upgrade %d, want 0", n)
	}

	rec.reset()
	ws.Send(`42["join"]`)
	ws.Send(`42["shout","x"]`)
	ws.Expect(`42["echo","x"]`)
	ws.Expect(`42["room","hi"]`)
	ws.Send(`42["leave"]`)
	got = rec.waitLine(t, "left / r2")
	want := []string{"received [join]", "joined / r1", "joined / r2", "received [shout x]",
		"sent [echo x]", "sent [room hi]", "received [leave]", "left / r2"}
	// r1 and r2 are one Join, in the order given.
	if !slices.Equal(got, want) {
		t.Fatalf("events: %q, want %q", got, want)
	}

	rec.reset()
	ws.Send("41")
	got = rec.waitLine(t, "left / r1")
	if want := []string{"disconnected / client namespace disconnect", "left / <id>", "left / r1"}; !slices.Equal(got, want) {
		t.Fatalf("disconnect: %q, want %q", got, want)
	}
	rec.mu.Lock()
	in, out := rec.in, rec.out
	rec.mu.Unlock()
	if in < 5 || out < 3 {
		t.Errorf("packets in %d, out %d; want at least 5 and 3", in, out)
	}

	srv.Watch(nil)
	rec.reset()
	ws.Send("40")
	ws.ExpectPrefix(`40{"sid":"`)
	ws.Send(`42["join"]`)
	ws.Send(`42["shout","y"]`)
	ws.Expect(`42["echo","y"]`)
	rec.mu.Lock()
	after := slices.Clone(rec.lines)
	rec.mu.Unlock()
	if len(after) != 0 {
		t.Errorf("told after Watch(nil): %q", after)
	}
}
