package engineio

import (
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// debugServer is newTServer with the engine's debug log recorded.
func debugServer(t *testing.T, opts Options) (*tserver, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	opts.Logger = zap.New(core)
	return newTServer(t, opts), logs
}

// writes counts the "websocket frames written" entries of the log: those
// of direct writes and those of the writer goroutine.
func writes(logs *observer.ObservedLogs) (direct, writer int) {
	for _, e := range logs.FilterMessage("websocket frames written").All() {
		if e.ContextMap()["direct"] == true {
			direct++
		} else {
			writer++
		}
	}
	return direct, writer
}

// idleWriter waits until s has no writer running (the handshake holds the
// flag until it has written the open packet, which the client may read
// first).
func idleWriter(t *testing.T, s *Session) {
	t.Helper()
	waitFor(t, "no writer running", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.writing
	})
}

// shrink gives the session's socket a small send buffer and the client's
// a small receive buffer, so that a few frames fill them; the kernel then
// takes part of a write rather than none of it.
func shrink(t *testing.T, s *Session, c *websocket.Conn) {
	t.Helper()
	if err := s.ws.NetConn().(*batchConn).Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := c.NetConn().(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
}

// grow gives the client's socket a large receive buffer again before it
// reads: with a tiny one the kernel may keep the window shut for a second
// or more after the client has read.
func grow(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if err := c.NetConn().(*net.TCPConn).SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
}

// directSession opens a websocket session on a server whose debug log is
// recorded, and waits until its writer is idle, so that what is sent next
// may be written directly.
func directSession(t *testing.T) (*observer.ObservedLogs, *websocket.Conn, *recorder) {
	t.Helper()
	ts, logs := debugServer(t, Options{})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	idleWriter(t, r.s)
	return logs, c, r
}

// incompleteWrites counts the direct writes the socket took only part of.
func incompleteWrites(logs *observer.ObservedLogs) int {
	return logs.FilterMessage("direct write incomplete, the writer finishes it").Len()
}

// An open websocket session with no writer running gets what is sent
// written by the sender's own call: the frame is on the wire when Send
// returns, and no writer goroutine starts.
func TestDirectWrite(t *testing.T) {
	logs, c, r := directSession(t)
	for i := range 20 {
		msg := fmt.Sprintf("m%d", i)
		if err := r.s.Send(TextMessageString(msg)); err != nil {
			t.Fatal(err)
		}
		r.s.mu.Lock()
		writing, backlog := r.s.writing, r.s.backlogLocked()
		r.s.mu.Unlock()
		if writing || backlog != 0 {
			t.Fatalf("send %d: writer running %v, backlog %d: want the frame written by Send", i, writing, backlog)
		}
		expectText(t, c, "4"+msg)
	}
	// Several messages of one Send, and a shared one, go out the same way.
	shared := TextMessageString("s").Shared()
	if err := r.s.Send(TextMessageString("a"), TextMessageString("b")); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Send(shared); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4a", "4b", "4s"} {
		expectText(t, c, want)
	}
	if direct, writer := writes(logs); direct != 22 || writer != 0 {
		t.Fatalf("%d direct writes and %d by the writer, want 22 and 0", direct, writer)
	}
}

// With DisableDirectWrites, and over TLS (a *tls.Conn has buffers of its
// own), every frame goes through the writer goroutine.
func TestDirectWriteOff(t *testing.T) {
	check := func(t *testing.T, c *websocket.Conn, s *Session, logs *observer.ObservedLogs) {
		t.Helper()
		for i := range 3 {
			if err := s.Send(TextMessageString(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			expectText(t, c, fmt.Sprint("4", i))
		}
		waitFor(t, "the writer's log entries", func() bool { _, w := writes(logs); return w >= 3 })
		if direct, _ := writes(logs); direct != 0 {
			t.Fatalf("%d direct writes, want none", direct)
		}
	}
	t.Run("option", func(t *testing.T) {
		ts, logs := debugServer(t, Options{DisableDirectWrites: true})
		c := ts.mustDial("EIO=4&transport=websocket")
		read(t, c)
		check(t, c, ts.session().s, logs)
	})
	t.Run("tls", func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		sessions := make(chan *Session, 1)
		srv := NewServer(Options{Logger: zap.New(core), PingInterval: time.Minute, OnSession: func(s *Session) { sessions <- s }})
		c := dialTLS(t, srv, nil)
		read(t, c)
		check(t, c, <-sessions, logs)
	})
}

// A write deadline the writer set long ago has passed by the time of a
// direct write, which does not look at it (it cannot block); the writer,
// when it next runs, sets its own and writes.
func TestDirectWriteAfterDeadline(t *testing.T) {
	logs, c, r := directSession(t)
	bc := r.s.ws.NetConn().(*batchConn)
	if err := bc.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"late", "late2"} {
		if err := r.s.Send(TextMessageString(msg)); err != nil {
			t.Fatal(err)
		}
		expectText(t, c, "4"+msg)
	}
	if direct, writer := writes(logs); direct != 2 || writer != 0 {
		t.Fatalf("%d direct writes and %d by the writer, want 2 and 0", direct, writer)
	}
	// Past its first gaugeExempt direct writes, a busy gauge sends the
	// session's frames to the writer, which must not meet the old
	// deadline.
	g := &r.s.srv.cpu
	g.next.Store(math.MaxInt64)
	g.busy.Store(true)
	if err := r.s.Send(TextMessageString("writer")); err != nil {
		t.Fatal(err)
	}
	expectText(t, c, "4writer")
	// The writer logs its write after the frame is out, so the client
	// may read the frame first.
	waitFor(t, "the writer's entry", func() bool { _, w := writes(logs); return w >= 1 })
	if direct, writer := writes(logs); direct != 2 || writer != 1 {
		t.Fatalf("%d direct writes and %d by the writer, want 2 and 1", direct, writer)
	}
}

// A client that stops reading fills its socket: a direct write then
// leaves part of a frame, which the writer must finish before any other
// byte, including the pongs the reader sends back to the client's pings
// meanwhile (the hostile case: frames interleaved mid-way would corrupt
// the stream). Once the client reads again it gets every message, whole
// and in order, and the backlog is back to zero. The kernel takes part of
// a write only now and then (often it takes all or nothing), so the test
// fills and drains the socket until that happened, at most 20 times.
func TestDirectWritePartial(t *testing.T) {
	logs, c, r := directSession(t)
	incomplete := func() int { return incompleteWrites(logs) }
	pad := strings.Repeat("x", 3000)
	next := 0 // the number of the next message sent
	for round := 0; incomplete() == 0; round++ {
		if round == 20 {
			t.Fatal("no direct write was left incomplete in 20 rounds")
		}
		shrink(t, r.s, c)
		first := next
		for ; next-first < 100 && incomplete() == 0; next++ {
			if err := r.s.Send(TextMessageString(fmt.Sprintf("%05d%s", next, pad))); err != nil {
				t.Fatal(err)
			}
			if next%10 == 0 {
				// Pings the reader answers while the socket is full.
				_ = c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(testTimeout))
			}
		}
		grow(t, c)
		for i := first; i < next; i++ {
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			_, p, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("round %d, message %d: %v", round, i, err)
			}
			if want := fmt.Sprintf("4%05d%s", i, pad); string(p) != want {
				t.Fatalf("round %d, message %d: got %.20q (%d bytes), want %.20q", round, i, p, len(p), want)
			}
		}
		waitFor(t, "the backlog to drain", func() bool { return r.s.BufferedBytes() == 0 })
		idleWriter(t, r.s)
	}
	// Direct writes resume once the writer is done.
	before, _ := writes(logs)
	if err := r.s.Send(TextMessageString("after")); err != nil {
		t.Fatal(err)
	}
	expectText(t, c, "4after")
	if after, _ := writes(logs); after != before+1 {
		t.Fatalf("direct writes %d then %d: the send after the drain was not direct", before, after)
	}
}

// A session closed gracefully while a direct write's rest is waiting
// still sends that rest first, then the close packet.
func TestDirectWritePartialThenClose(t *testing.T) {
	logs, c, r := directSession(t)
	shrink(t, r.s, c)
	pad := strings.Repeat("y", 3000)
	sent := 0
	for ; sent < 200 && incompleteWrites(logs) == 0; sent++ {
		if err := r.s.Send(TextMessageString(fmt.Sprintf("%04d%s", sent, pad))); err != nil {
			t.Fatal(err)
		}
	}
	if sent == 200 {
		t.Fatal("no direct write was left incomplete")
	}
	r.s.Close("bye")
	grow(t, c)
	for i := range sent {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, sent, err)
		}
		if want := fmt.Sprintf("4%04d%s", i, pad); string(p) != want {
			t.Fatalf("message %d: got %.20q, want %.20q", i, p, want)
		}
	}
	expectText(t, c, "1")
	expectClosed(t, c)
}
