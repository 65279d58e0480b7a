package engineio

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// goroutinesIn counts goroutines whose stack has fn (a function of this
// package, e.g. "(*Session).readLoop").
func goroutinesIn(fn string) int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "engineio."+fn) {
			n++
		}
	}
	return n
}

// waitParked waits until no reader or writer goroutine runs: idle
// websockets are parked (the writer ends after writerLinger, real time).
func waitParked(t *testing.T) {
	t.Helper()
	waitFor(t, "idle websockets to hold no goroutine", func() bool {
		return goroutinesIn("(*Session).readLoop") == 0 && goroutinesIn("(*Session).writeLoop") == 0
	})
}

// openEcho opens n echoing websocket sessions and checks each once.
func openEcho(t *testing.T, ts *tserver, n int) ([]*websocket.Conn, []*recorder) {
	t.Helper()
	var cs []*websocket.Conn
	var rs []*recorder
	for range n {
		c := ts.mustDial("EIO=4&transport=websocket")
		read(t, c) // open packet
		rs = append(rs, ts.session())
		send(t, c, "4hello")
		expectText(t, c, "4hello")
		cs = append(cs, c)
	}
	return cs, rs
}

func TestParkedWebSocketHoldsNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readers park on Linux only")
	}
	ts := newTServer(t, Options{})
	cs, rs := openEcho(t, ts, 20)
	waitParked(t)
	if n := goroutinesIn("(*poller).run"); n != 1 {
		t.Errorf("%d poller goroutines, want 1", n)
	}
	// A parked reader wakes for the next frame, again and again.
	for round := range 3 {
		for i, c := range cs {
			msg := "4round" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
			send(t, c, msg)
			expectText(t, c, msg)
		}
	}
	waitParked(t)
	// The peer hanging up wakes the reader, which closes the session.
	for _, c := range cs {
		_ = c.NetConn().Close()
	}
	for _, r := range rs {
		if got := r.waitClose(t); got != ReasonTransportClose {
			t.Errorf("close reason %q, want %q", got, ReasonTransportClose)
		}
		<-r.s.Done()
	}
	// Without sessions the poller retires: no goroutine is left.
	waitNoEngineGoroutines(t)
}

// rawFrame is a masked client text frame (payload < 126 bytes).
func rawFrame(payload string) []byte {
	mask := [4]byte{0x11, 0x22, 0x33, 0x44}
	b := []byte{0x81, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i := range len(payload) {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}

// TestParkedReaderBufferedFrames: frames that reach gorilla's buffer
// together are all delivered without more traffic (bytes already buffered
// would never wake the poller), and a frame split across writes, its
// reader woken by the first half, is delivered when the rest arrives.
func TestParkedReaderBufferedFrames(t *testing.T) {
	ts := newTServer(t, Options{})
	cs, rs := openEcho(t, ts, 1)
	c, r := cs[0], rs[0]
	waitParked(t)
	nc := c.NetConn()
	// Three frames in one write.
	batch := append(append(rawFrame("4a"), rawFrame("4b")...), rawFrame("4c")...)
	if _, err := nc.Write(batch); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4a", "4b", "4c"} {
		expectText(t, c, want)
	}
	// One frame in two writes, apart: the woken reader waits for the rest.
	f := rawFrame("4split")
	if _, err := nc.Write(f[:4]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // paces the two halves on purpose
	if _, err := nc.Write(f[4:]); err != nil {
		t.Fatal(err)
	}
	expectText(t, c, "4split")
	got := r.waitMessages(t, 5)
	want := []string{"t:hello", "t:a", "t:b", "t:c", "t:split"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// TestParkedSessionClose: a session closed by the server while its reader
// is parked flushes, sends "1" and a close frame, and is finalized; so are
// parked sessions at Server.Close, after which no goroutine is left.
func TestParkedSessionClose(t *testing.T) {
	ts := newTServer(t, Options{})
	cs, rs := openEcho(t, ts, 3)
	waitParked(t)
	if err := rs[0].s.Send(TextMessageString("bye")); err != nil {
		t.Fatal(err)
	}
	rs[0].s.Close("forced close")
	expectText(t, cs[0], "4bye")
	expectText(t, cs[0], "1")
	if err := expectClosed(t, cs[0]); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("closed with %v, want a normal close frame", err)
	}
	<-rs[0].s.Done()

	ts.srv.Close()
	for i := 1; i < 3; i++ {
		if got := rs[i].waitClose(t); got != ReasonServerShutdown {
			t.Errorf("session %d: close reason %q", i, got)
		}
		<-rs[i].s.Done()
		expectText(t, cs[i], "1")
	}
	waitNoEngineGoroutines(t)
}

// TestParkedReaderReadLimit: a hostile frame larger than MaxPayload that
// wakes a parked reader closes that session only.
func TestParkedReaderReadLimit(t *testing.T) {
	ts := newTServer(t, Options{MaxPayload: 64})
	cs, rs := openEcho(t, ts, 2)
	waitParked(t)
	send(t, cs[0], "4"+strings.Repeat("x", 200))
	if got := rs[0].waitClose(t); got != ReasonTransportError {
		t.Errorf("close reason %q, want %q", got, ReasonTransportError)
	}
	send(t, cs[1], "4still")
	expectText(t, cs[1], "4still")
}

// TestReadersNotParked: with DisableParking, and over TLS (whose own
// buffer the poller cannot see), a reader stays a goroutine blocked in
// its read, and sessions work as usual.
func TestReadersNotParked(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		ts := newTServer(t, Options{DisableParking: true})
		openEcho(t, ts, 3)
		waitFor(t, "the writers to end", func() bool { return goroutinesIn("(*Session).writeLoop") == 0 })
		if n := goroutinesIn("(*Session).readLoop"); n != 3 {
			t.Errorf("%d reader goroutines, want 3", n)
		}
	})
	t.Run("tls", func(t *testing.T) {
		c := dialTLS(t, echoServer(), nil)
		read(t, c)
		for i := range 3 {
			send(t, c, "4tls"+strconv.Itoa(i))
			expectText(t, c, "4tls"+strconv.Itoa(i))
		}
		waitFor(t, "the writer to end", func() bool { return goroutinesIn("(*Session).writeLoop") == 0 })
		if n := goroutinesIn("(*Session).readLoop"); n != 1 {
			t.Errorf("%d reader goroutines over TLS, want 1", n)
		}
	})
}

// TestParkedWebSocketLendsItsReadBuffer: a parked connection holds no read
// buffer (gorilla's reader is empty until a frame wakes it), and the
// reader that wakes gets one back before it reads: small frames, frames
// larger than the buffer, and a close by the server all work after a park.
func TestParkedWebSocketLendsItsReadBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readers park on Linux only")
	}
	ts := newTServer(t, Options{})
	cs, rs := openEcho(t, ts, 5)
	bufSize := func(r *recorder) int {
		r.s.mu.Lock()
		ws := r.s.ws
		r.s.mu.Unlock()
		bc := ws.NetConn().(*batchConn)
		bc.pk.mu.Lock()
		defer bc.pk.mu.Unlock()
		return bc.pk.br.Size()
	}
	for round := range 2 {
		waitParked(t)
		for i, r := range rs {
			if n := bufSize(r); n != 0 {
				t.Fatalf("round %d: parked connection %d holds a %d-byte read buffer", round, i, n)
			}
		}
		big := "4" + strings.Repeat("x", 3*readBufferSize)
		for i, c := range cs {
			send(t, c, "4small")
			expectText(t, c, "4small")
			send(t, c, big)
			expectText(t, c, big)
			if n := bufSize(rs[i]); n != readBufferSize {
				t.Fatalf("round %d: awake connection %d has a %d-byte read buffer, want %d", round, i, n, readBufferSize)
			}
		}
	}
	waitParked(t)
	rs[0].s.Close(ReasonForcedClose)
	if got := rs[0].waitClose(t); got != ReasonForcedClose {
		t.Errorf("close reason %q, want %q", got, ReasonForcedClose)
	}
}

// TestFirstFrameParksAtOnce: after a session's first frame the reader
// parks at once instead of lingering readLinger in a read (most clients
// connect and then wait: a connect storm leaves no reader goroutine behind
// each connection), and a second frame wakes it as usual.
func TestFirstFrameParksAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readers park on Linux only")
	}
	testkit.WaitsOnClock(t) // bounds a real-time wait by readLinger (20 ms under -short)
	ts := newTServer(t, Options{})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c) // open packet
	r := ts.session()
	r.s.mu.Lock()
	bc := r.s.ws.NetConn().(*batchConn)
	r.s.mu.Unlock()
	parked := func() bool {
		bc.pk.mu.Lock()
		defer bc.pk.mu.Unlock()
		return bc.pk.state == parkParked
	}
	start := time.Now()
	send(t, c, "4first")
	expectText(t, c, "4first")
	for !parked() {
		if time.Since(start) >= readLinger {
			t.Fatalf("the reader had not parked %v after the first frame (readLinger %v)", time.Since(start), readLinger)
		}
		time.Sleep(time.Millisecond)
	}
	send(t, c, "4second")
	expectText(t, c, "4second")
	if got := r.messages(); len(got) != 2 || got[1] != "t:second" {
		t.Fatalf("delivered %q", got)
	}
}

// TestWholeFrame: the check readFirst makes before it reads a first frame
// on the request's goroutine accepts a final data frame whose every byte
// has arrived, and nothing else.
func TestWholeFrame(t *testing.T) {
	long := make([]byte, 4+4+300) // 16-bit length, masked
	long[0], long[1], long[2], long[3] = 0x81, 0x80|126, 300>>8, 300&0xff
	huge := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0} // 65,536 bytes announced
	cases := []struct {
		name string
		b    []byte
		want bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{0x81}, false},
		{"a whole text frame", rawFrame("40"), true},
		{"a whole frame and more", append(rawFrame("40"), rawFrame("42")...), true},
		{"its payload one byte short", rawFrame("40")[:len(rawFrame("40"))-1], false},
		{"its mask key short", rawFrame("40")[:4], false},
		{"a whole binary frame", append([]byte{0x82}, rawFrame("ab")[1:]...), true},
		{"a fragment (no FIN)", append([]byte{0x01}, rawFrame("40")[1:]...), false},
		{"a ping", append([]byte{0x89}, rawFrame("")[1:]...), false},
		{"a close", append([]byte{0x88}, rawFrame("")[1:]...), false},
		{"a 16-bit length, whole", long, true},
		{"a 16-bit length, short", long[:len(long)-1], false},
		{"a 16-bit length, header cut", long[:3], false},
		{"a 64-bit length, header only", huge, false},
		{"a 64-bit length, header cut", huge[:9], false},
		{"unmasked", []byte{0x81, 2, '4', '0'}, true},
	}
	for _, c := range cases {
		if got := wholeFrame(c.b); got != c.want {
			t.Errorf("%s (% x): %v, want %v", c.name, c.b, got, c.want)
		}
	}
}

// FuzzWholeFrame: wholeFrame never panics, and what it accepts stays
// accepted with more bytes after it, while every shorter prefix of a
// frame it accepts is refused unless it is itself a whole frame.
func FuzzWholeFrame(f *testing.F) {
	f.Add(rawFrame("40"))
	f.Add([]byte{0x81, 0x80 | 126, 0, 200})
	f.Add([]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !wholeFrame(b) {
			return
		}
		if !wholeFrame(append(slices.Clone(b), 0x81, 0)) {
			t.Fatalf("% x accepted, refused with more bytes", b)
		}
	})
}

// TestStalledFirstFrameFreesTheRequest: a client that sends part of its
// first frame and stalls does not hold the handshake request's goroutine
// (with Caddy's request and its stack) while it stalls; the frame is
// delivered once the rest arrives, by a reader goroutine.
func TestStalledFirstFrameFreesTheRequest(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("readers park on Linux only")
	}
	got := make(chan string, 2)
	srv := NewServer(Options{PingInterval: time.Minute, OnSession: func(s *Session) {
		r := newRecorder(s, false)
		r.onMessage = func(_ *recorder, data []byte, _ bool) { got <- string(data) }
		s.SetHandler(r)
	}})
	h, returned := returningHandler(srv)
	c := dialHandler(t, srv, h)
	read(t, c) // open packet
	frame := rawFrame("4stalled")
	if _, err := c.NetConn().Write(frame[:5]); err != nil { // header and part of the mask key
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(testTimeout):
		t.Fatal("the handshake's handler waited for the rest of a stalled first frame")
	}
	select {
	case m := <-got:
		t.Fatalf("%q delivered from part of a frame", m)
	default:
	}
	if _, err := c.NetConn().Write(frame[5:]); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "stalled" {
			t.Fatalf("delivered %q, want stalled", m)
		}
	case <-time.After(testTimeout):
		t.Fatal("the first frame was not delivered once whole")
	}
}
