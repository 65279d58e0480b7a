package realtime

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// recoveryEnv is a server with recovery on, its store on a manual clock,
// and every socket of "/" put in room "r" when it connects.
type recoveryEnv struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	store *MemoryRecoveryStore
	clock *manualClock
	// handled gets the id of each socket of "/" once the env's connection
	// handler ran: it runs after the CONNECT reply is written, so a test
	// that read the reply may otherwise act before the join of "r".
	handled chan string
}

func newRecoveryEnv(t *testing.T, ro RecoveryOptions, setup func(*Server)) *recoveryEnv {
	t.Helper()
	e := &recoveryEnv{t: t, clock: newManualClock(), handled: make(chan string, 256)}
	ro.NewStore = func(o RecoveryOptions) RecoveryStore {
		e.store = NewMemoryRecoveryStore(o)
		e.store.clock, e.store.now = e.clock, e.clock.now
		return e.store
	}
	e.srv = NewServer(Options{
		Engine:         engineio.Options{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second, AllowedOrigins: []string{"*"}},
		ConnectTimeout: 2 * time.Second,
		Recovery:       &ro,
	})
	e.srv.Of("/").OnConnection(func(s *Socket) {
		if !s.Recovered() {
			_ = s.Join("r")
			s.Set("n", 1)
		}
		select {
		case e.handled <- s.ID():
		default: // a test that connects many sockets does not wait on them
		}
	})
	if setup != nil {
		setup(e.srv)
	}
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(func() {
		e.srv.Close()
		e.ts.Close()
	})
	return e
}

// connectReply is a parsed CONNECT reply.
type connectReply struct{ Sid, Pid string }

// connect opens a WebSocket, connects "/" with payload and waits until the
// env's connection handler ran for the socket.
func (e *recoveryEnv) connect(payload string) (*testkit.WS, connectReply) {
	e.t.Helper()
	c := dialRaw(e.t, e.ts, "")
	c.Send("40" + payload)
	r := readConnect(e.t, c)
	for deadline := time.After(10 * time.Second); ; {
		select {
		case id := <-e.handled:
			if id == r.Sid {
				return c, r
			}
		case <-deadline:
			e.t.Fatalf("the connection handler did not run for %s", r.Sid)
		}
	}
}

func readConnect(t *testing.T, c *testkit.WS) connectReply {
	t.Helper()
	got := c.ExpectPrefix("40{")
	var r connectReply
	if err := json.Unmarshal([]byte(got[2:]), &r); err != nil || len(r.Sid) != 20 || len(r.Pid) != 20 {
		t.Fatalf("CONNECT reply %q: want sid and pid of 20 characters (%v)", got, err)
	}
	return r
}

// event reads an EVENT frame and returns its arguments.
func event(t *testing.T, c *testkit.WS) []any {
	t.Helper()
	got := c.ExpectPrefix("42[")
	var args []any
	if err := json.Unmarshal([]byte(got[2:]), &args); err != nil {
		t.Fatalf("event %q: %v", got, err)
	}
	return args
}

// offsetOf is an event's offset: its last argument, a string.
func offsetOf(t *testing.T, args []any) string {
	t.Helper()
	off, ok := args[len(args)-1].(string)
	if !ok || off == "" {
		t.Fatalf("event %v: last argument is not an offset", args)
	}
	return off
}

// drop cuts the client's TCP connection and waits until the server has
// processed the close (the session, if any, is then kept).
func (e *recoveryEnv) drop(c *testkit.WS) {
	e.t.Helper()
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); e.srv.Of("/").Len() > 0 || e.srv.ConnCount() > 0; {
		if time.Now().After(deadline) {
			e.t.Fatal("the server did not see the connection go within 5s")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's state, bounded
	}
}

func recoverPayload(pid, offset string) string {
	return fmt.Sprintf(`{"pid":%q,"offset":%q,"token":"t"}`, pid, offset)
}

// TestRecoveryWire: with recovery on, the CONNECT reply carries a pid;
// broadcasts and private emits carry an offset as their last argument
// (binary ones too), volatile emits and emits with an ack do not.
func TestRecoveryWire(t *testing.T) {
	e := newRecoveryEnv(t, RecoveryOptions{}, nil)
	c, r := e.connect("")
	nsp := e.srv.Of("/")
	s, _ := nsp.Socket(r.Sid)

	if err := nsp.Emit("all", "a"); err != nil {
		t.Fatal(err)
	}
	if args := event(t, c); len(args) != 3 || args[0] != "all" || args[1] != "a" {
		t.Fatalf("broadcast = %v, want [all a <offset>]", args)
	}
	_ = s.Emit("private", 1)
	if args := event(t, c); len(args) != 3 || args[0] != "private" {
		t.Fatalf("private emit = %v, want [private 1 <offset>]", args)
	}
	_ = nsp.To("r").Emit("bin", []byte{1, 2})
	head := c.ExpectPrefix("451-[")
	if !strings.Contains(head, `{"_placeholder":true,"num":0},"`) {
		t.Fatalf("binary event %q: want the offset after the placeholder", head)
	}
	if f := c.Next(2 * time.Second); !f.Binary {
		t.Fatalf("attachment frame %q not binary", f.Data)
	}
	_ = nsp.Volatile().Emit("vol", "v")
	c.Expect(`42["vol","v"]`)
	_ = s.EmitWithAckFunc(time.Second, "ask", []any{"q"}, func([]any, error) {})
	if got := c.ExpectPrefix(`42`); !strings.HasSuffix(got, `["ask","q"]`) {
		t.Fatalf("emit with an ack = %q, want no offset", got)
	}
}

// TestRecoveryRestore: a client whose transport dropped comes back with
// pid and offset and gets its socket back: same id, same rooms and data,
// the events it missed exactly once and in order (volatile and ack'd
// ones not), before the CONNECT reply with the same sid and pid; events
// go on reaching it live.
func TestRecoveryRestore(t *testing.T) {
	t.Parallel()
	e := newRecoveryEnv(t, RecoveryOptions{}, nil)
	nsp := e.srv.Of("/")
	c, r := e.connect(`{"token":"t"}`)
	_ = nsp.Emit("m", 0) // to all: the join of "r" may still be under way
	last := offsetOf(t, event(t, c))
	e.drop(c)

	for i := 1; i <= 3; i++ {
		_ = nsp.To("r").Emit("m", i)
	}
	_ = nsp.Volatile().Emit("m", "volatile")
	_ = nsp.To("other").Emit("m", "not for it")
	_ = nsp.Except("r").Emit("m", "not for it either")
	_ = nsp.Emit("m", 4)

	c2 := dialRaw(t, e.ts, "")
	c2.Send("40" + recoverPayload(r.Pid, last))
	var got []any
	var offsets []string
	for range 4 {
		args := event(t, c2)
		got = append(got, args[1])
		offsets = append(offsets, offsetOf(t, args))
	}
	if want := []any{1.0, 2.0, 3.0, 4.0}; !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	prev, _ := parseOffset(last)
	for _, off := range offsets {
		v, ok := parseOffset(off)
		if !ok || v <= prev {
			t.Fatalf("offsets %q after %q: not increasing", offsets, last)
		}
		prev = v
	}
	if back := readConnect(t, c2); back != r {
		t.Fatalf("CONNECT reply %+v, want the same sid and pid %+v", back, r)
	}
	s, ok := nsp.Socket(r.Sid)
	if !ok || !s.Recovered() {
		t.Fatal("the socket is not back under its id, recovered")
	}
	if rooms := s.Rooms(); !slices.Contains(rooms, "r") || !slices.Contains(rooms, r.Sid) {
		t.Fatalf("rooms %v, want r and its own", rooms)
	}
	if v, _ := s.Get("n"); v != 1 {
		t.Fatalf("data n = %v, want 1", v)
	}
	_ = nsp.To("r").Emit("m", 5)
	if args := event(t, c2); args[1] != 5.0 {
		t.Fatalf("live event %v, want 5", args)
	}
	c2.Quiet(100 * time.Millisecond)
}

// TestRecoveryNotRecovered: each way a reconnect must get a new session:
// a deliberate disconnect, a return after the window, a bogus pid or
// offset, an offset that the buffer dropped. (A pid already
// connected is taken over: TestRecoveryTakeOver.)
func TestRecoveryNotRecovered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// leave ends the first connection; then come returns the payload
		// of the reconnect from the first reply and the last offset.
		leave func(e *recoveryEnv, c *testkit.WS)
		come  func(e *recoveryEnv, r connectReply, last string) string
	}{
		{"client namespace disconnect", func(e *recoveryEnv, c *testkit.WS) {
			c.Send("41")
			e.drop(c)
		}, func(_ *recoveryEnv, r connectReply, last string) string { return recoverPayload(r.Pid, last) }},
		{"server disconnect", func(e *recoveryEnv, c *testkit.WS) {
			for _, s := range e.srv.Of("/").Sockets() {
				s.Disconnect(false)
			}
			e.drop(c)
		}, func(_ *recoveryEnv, r connectReply, last string) string { return recoverPayload(r.Pid, last) }},
		{"after the window", func(e *recoveryEnv, c *testkit.WS) {
			e.drop(c)
			e.clock.advance(2*time.Minute + time.Millisecond)
		}, func(_ *recoveryEnv, r connectReply, last string) string { return recoverPayload(r.Pid, last) }},
		{"bogus pid", func(e *recoveryEnv, c *testkit.WS) { e.drop(c) },
			func(_ *recoveryEnv, _ connectReply, last string) string {
				return recoverPayload("AAAAAAAAAAAAAAAAAAAA", last)
			}},
		{"bogus offset", func(e *recoveryEnv, c *testkit.WS) { e.drop(c) },
			func(_ *recoveryEnv, r connectReply, _ string) string { return recoverPayload(r.Pid, "zz!") }},
		{"offset from the future", func(e *recoveryEnv, c *testkit.WS) { e.drop(c) },
			func(_ *recoveryEnv, r connectReply, last string) string { return recoverPayload(r.Pid, last+"0") }},
		{"no offset", func(e *recoveryEnv, c *testkit.WS) { e.drop(c) },
			func(_ *recoveryEnv, r connectReply, _ string) string { return fmt.Sprintf(`{"pid":%q}`, r.Pid) }},
		{"pid not a string", func(e *recoveryEnv, c *testkit.WS) { e.drop(c) },
			func(_ *recoveryEnv, _ connectReply, last string) string {
				return fmt.Sprintf(`{"pid":1,"offset":%q}`, last)
			}},
		{"offset dropped by the buffer", func(e *recoveryEnv, c *testkit.WS) {
			e.drop(c)
			for range 40 { // 40 events of ~100 bytes: over the 2 KiB buffer
				_ = e.srv.Of("/").Emit("fill", strings.Repeat("x", 64))
			}
		}, func(_ *recoveryEnv, r connectReply, last string) string { return recoverPayload(r.Pid, last) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRecoveryEnv(t, RecoveryOptions{BufferBytes: 2048}, nil)
			c, r := e.connect("")
			_ = e.srv.Of("/").Emit("m", 0)
			last := offsetOf(t, event(t, c))
			tt.leave(e, c)
			payload := tt.come(e, r, last)
			c2 := dialRaw(t, e.ts, "")
			c2.Send("40" + payload)
			back := readConnect(t, c2)
			if back.Sid == r.Sid || back.Pid == r.Pid {
				t.Fatalf("reconnect got %+v, the first session was %+v: want a new one", back, r)
			}
			s, ok := e.srv.Of("/").Socket(back.Sid)
			if !ok || s.Recovered() {
				t.Fatal("the new socket is missing or says recovered")
			}
		})
	}
}

// TestRecoveryMiddlewares: with RunMiddlewares a recovered socket goes
// through them with its rooms and data back (a refusal loses it); by
// default they are skipped.
func TestRecoveryMiddlewares(t *testing.T) {
	for _, run := range []bool{false, true} {
		t.Run(fmt.Sprint("run=", run), func(t *testing.T) {
			seen := make(chan string, 4)
			e := newRecoveryEnv(t, RecoveryOptions{RunMiddlewares: run}, func(srv *Server) {
				srv.Of("/").Use(func(s *Socket) error {
					seen <- fmt.Sprintf("recovered=%v rooms=%d", s.Recovered(), len(s.Rooms()))
					if a := s.Handshake().Auth; a != nil && a["refuse"] == true {
						return &ConnectError{Message: "no"}
					}
					return nil
				})
			})
			c, r := e.connect("")
			<-seen
			_ = e.srv.Of("/").Emit("m", 0)
			last := offsetOf(t, event(t, c))
			e.drop(c)
			c2, back := e.connect(recoverPayload(r.Pid, last))
			if back != r {
				t.Fatalf("reconnect got %+v, want %+v", back, r)
			}
			select {
			case got := <-seen:
				if !run {
					t.Fatalf("middleware ran for a recovered socket: %s", got)
				}
				if got != "recovered=true rooms=2" {
					t.Fatalf("middleware saw %s, want its two rooms back", got)
				}
			default:
				if run {
					t.Fatal("middleware did not run for the recovered socket")
				}
			}
			if !run {
				return
			}
			// A refusal of the recovered socket: refused, and its rooms go.
			_ = e.srv.Of("/").Emit("m", 1)
			last = offsetOf(t, event(t, c2))
			e.drop(c2)
			c3 := dialRaw(t, e.ts, "")
			c3.Send(`40{"pid":"` + r.Pid + `","offset":"` + last + `","refuse":true}`)
			c3.ExpectPrefix(`44{"message":"no"`)
			if rooms := e.srv.Of("/").Adapter().SocketRooms(r.Sid); len(rooms) != 0 {
				t.Fatalf("refused recovered socket left in rooms %v", rooms)
			}
		})
	}
}

// TestRecoveryBounds: what clients can make the store hold is bounded in
// bytes, events and sessions alike, and the window's timer drops what
// aged out.
func TestRecoveryBounds(t *testing.T) {
	t.Parallel()
	const cap = 64 << 10
	e := newRecoveryEnv(t, RecoveryOptions{BufferBytes: cap, SessionBytes: cap}, nil)
	nsp := e.srv.Of("/")
	for i := range 5000 {
		_ = nsp.To(fmt.Sprint("room-", i)).Emit("m", strings.Repeat("x", 100))
	}
	if got := e.store.Bytes(); got > cap || got < cap/2 {
		t.Fatalf("events hold %d bytes, want at most (and near) %d", got, cap)
	}
	for i := range 5000 {
		e.store.Save(&RecoverySession{Namespace: "/", ID: fmt.Sprintf("%020d", i), PID: fmt.Sprintf("p%019d", i),
			Rooms: []string{strings.Repeat("r", 200)}, Data: map[string]any{"k": strings.Repeat("d", 100)}, DisconnectedAt: e.clock.now()})
	}
	if got := e.store.Bytes(); got > 2*cap {
		t.Fatalf("events and sessions hold %d bytes, want at most %d", got, 2*cap)
	}
	e.clock.advance(3 * time.Minute)
	if got := e.store.Bytes(); got != 0 {
		t.Fatalf("after the window the store holds %d bytes, want 0", got)
	}
	e.clock.advance(3 * time.Minute)
	if n := len(e.store.nsps); n != 0 {
		t.Fatalf("%d namespace buffers left after two idle windows", n)
	}
	if e.clock.pending() != 0 {
		t.Fatal("the sweep timer is still armed with nothing to sweep")
	}
	// A huge event empties the buffer: earlier offsets are not recovered.
	c, r := e.connect("")
	_ = nsp.Emit("m", 0)
	last := offsetOf(t, event(t, c))
	e.drop(c)
	_ = nsp.Emit("big", strings.Repeat("x", cap+1))
	c2, back := e.connect(recoverPayload(r.Pid, last))
	defer c2.Close()
	if back.Sid == r.Sid {
		t.Fatal("recovered across an event the buffer could not hold")
	}
}

// TestOffsetText: offsets round-trip, and parseOffset refuses what
// formatOffset cannot write.
func TestOffsetText(t *testing.T) {
	for _, v := range []uint64{1, 63, 64, 1_700_000_000_000, 1<<60 - 1} {
		if got, ok := parseOffset(formatOffset(v)); !ok || got != v {
			t.Errorf("parseOffset(formatOffset(%d)) = %d, %v", v, got, ok)
		}
	}
	for _, bad := range []string{"", "a.b", "é", "12345678901", " 1"} {
		if _, ok := parseOffset(bad); ok {
			t.Errorf("parseOffset(%q) accepted", bad)
		}
	}
}

// FuzzRecoveryLookup feeds a client's pid and offset, as a CONNECT's auth
// payload carries them, to the store: no input panics, only the real pid
// takes the session, and an offset the store accepts names an event it
// gave (nothing outside its window).
func FuzzRecoveryLookup(f *testing.F) {
	m := NewMemoryRecoveryStore(RecoveryOptions{})
	m.clock = newManualClock()
	var offsets []string
	for i := range 3 {
		_, _ = m.Append("/", BroadcastOptions{Rooms: []string{"r"}}, func(off string) ([]*engineio.Message, error) {
			offsets = append(offsets, off)
			return []*engineio.Message{engineio.TextMessageString(fmt.Sprintf(`2["m",%d,%q]`, i, off))}, nil
		})
	}
	const pid = "PPPPPPPPPPPPPPPPPPPP"
	for _, seed := range []struct{ pid, offset string }{
		{pid, offsets[0]}, {pid, offsets[2]}, {pid, "zz"}, {"", ""}, {pid, "0"}, {"x", offsets[1]},
		{pid, "__________"}, {pid, "\xff"}, {pid, offsets[2] + "0"},
	} {
		f.Add(seed.pid, seed.offset)
	}
	f.Fuzz(func(t *testing.T, p, offset string) {
		m.Save(&RecoverySession{Namespace: "/", ID: "IIIIIIIIIIIIIIIIIIII", PID: pid, Rooms: []string{"r"}})
		missed, ok := m.Missed("/", offset, []string{"r"})
		if ok && !slices.Contains(offsets, offset) {
			v, _ := parseOffset(offset)
			if v <= m.base || v-m.base > m.seq {
				t.Fatalf("offset %q accepted outside the store's", offset)
			}
		}
		if len(missed) > len(offsets) {
			t.Fatalf("%d events missed of %d", len(missed), len(offsets))
		}
		sess, took := m.Take("/", p, offset)
		if took && (p != pid || sess.ID != "IIIIIIIIIIIIIIIIIIII") {
			t.Fatalf("pid %q took session %+v", p, sess)
		}
		if took != (p == pid && ok) {
			t.Fatalf("Take(%q, %q) = %v, Missed ok = %v", p, offset, took, ok)
		}
	})
}

// TestRecoveryDynamicNamespace: a namespace made from a pattern is dropped
// when its last socket goes; the session outlives it, and the client
// recovers into the namespace made again for it.
func TestRecoveryDynamicNamespace(t *testing.T) {
	e := newRecoveryEnv(t, RecoveryOptions{}, func(srv *Server) {
		srv.OfFunc(func(name string) bool { return strings.HasPrefix(name, "/team-") }, func(n *Namespace) {
			n.OnConnection(func(s *Socket) {
				if !s.Recovered() {
					_ = s.Join("crew")
					_ = s.Emit("hello")
				}
			})
		})
	})
	c := dialRaw(t, e.ts, "")
	c.Send("40/team-a,")
	got := c.ExpectPrefix(`40/team-a,{"sid":"`)
	var r connectReply
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got, "40/team-a,")), &r); err != nil {
		t.Fatal(err)
	}
	hello := c.ExpectPrefix(`42/team-a,["hello","`)
	last := strings.TrimSuffix(strings.TrimPrefix(hello, `42/team-a,["hello","`), `"]`)
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); e.srv.ConnCount() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not go")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's state, bounded
	}
	if _, ok := e.srv.Namespace("/team-a"); ok {
		t.Fatal("the empty dynamic namespace was not dropped")
	}
	c2 := dialRaw(t, e.ts, "")
	c2.Send(`40/team-a,` + recoverPayload(r.Pid, last))
	back := c2.ExpectPrefix(`40/team-a,{"sid":"` + r.Sid + `","pid":"` + r.Pid + `"}`)
	_ = back
	n, _ := e.srv.Namespace("/team-a")
	s, ok := n.Socket(r.Sid)
	if !ok || !s.Recovered() || !slices.Contains(s.Rooms(), "crew") {
		t.Fatalf("not recovered into the new namespace with its room (%v)", ok)
	}
}

// TestRecoveryTakeOver: a client back on a new connection while the server
// still holds its old one (not seen to go yet) gets its socket back: the
// old socket is closed as a transport close, with its session kept and
// taken, and the events queued on the dead connection are replayed. A
// bogus offset closes nothing.
func TestRecoveryTakeOver(t *testing.T) {
	t.Parallel()
	e := newRecoveryEnv(t, RecoveryOptions{}, nil)
	nsp := e.srv.Of("/")
	reasons := make(chan string, 4)
	handled := make(chan struct{}, 4)
	nsp.OnConnection(func(s *Socket) {
		s.OnDisconnect(func(_ *Socket, reason string) { reasons <- reason })
		handled <- struct{}{}
	})
	old, r := e.connect("")
	// Connection handlers run after the CONNECT reply is written, so the
	// client may read it first: wait until the disconnect handler is on.
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection handler did not run")
	}
	_ = nsp.Emit("m", 0)
	last := offsetOf(t, event(t, old))
	_ = nsp.Emit("m", 1) // the old connection gets it; say it never reached the client
	event(t, old)

	bogus := dialRaw(t, e.ts, "")
	bogus.Send("40" + recoverPayload(r.Pid, "zz"))
	if back := readConnect(t, bogus); back.Sid == r.Sid {
		t.Fatal("a bogus offset took the live socket over")
	}
	if s, ok := nsp.Socket(r.Sid); !ok || !s.Connected() {
		t.Fatal("a bogus offset closed the live socket")
	}

	c2 := dialRaw(t, e.ts, "")
	c2.Send("40" + recoverPayload(r.Pid, last))
	if args := event(t, c2); args[1] != 1.0 {
		t.Fatalf("replayed %v, want the event after the offset", args)
	}
	if back := readConnect(t, c2); back != r {
		t.Fatalf("took over as %+v, want %+v", back, r)
	}
	select {
	case reason := <-reasons:
		if reason != "transport close" {
			t.Fatalf("old socket closed with %q", reason)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the old socket was not closed")
	}
	s, _ := nsp.Socket(r.Sid)
	if s == nil || !s.Recovered() || s.conn.sess.ID() == "" {
		t.Fatal("the socket is not the recovered one")
	}
	_ = nsp.Emit("m", 2)
	if args := event(t, c2); args[1] != 2.0 {
		t.Fatalf("live event %v", args)
	}
	old.Quiet(100 * time.Millisecond) // the old connection gets nothing more
}

// TestRecoveryReload: new recovery options reach the store of a running
// server (a reload), and turning recovery off stops the offsets and pids.
func TestRecoveryReload(t *testing.T) {
	e := newRecoveryEnv(t, RecoveryOptions{}, nil)
	o := *e.srv.opts.Load()
	r := *o.Recovery
	r.MaxDisconnectionDuration = 5 * time.Second
	o.Recovery = &r
	e.srv.SetOptions(o)
	e.store.mu.Lock()
	got := e.store.opts.MaxDisconnectionDuration
	e.store.mu.Unlock()
	if got != 5*time.Second {
		t.Fatalf("store window %v after the reload, want 5s", got)
	}
	o.Recovery = nil
	e.srv.SetOptions(o)
	c := dialRaw(t, e.ts, "")
	c.Send("40")
	if got := c.ExpectPrefix(`40{"sid":"`); strings.Contains(got, "pid") {
		t.Fatalf("recovery off, CONNECT reply %q carries a pid", got)
	}
	_ = e.srv.Of("/").Emit("m", 1)
	c.Expect(`42["m",1]`)
}
