package engineio

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// heapInuse returns HeapInuse after a full collection: the bytes that
// live objects occupy.
func heapInuse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// memoryBound is what the tests allow the heap to grow by while a client
// does not read: three times the default hard cap (8 MiB), to leave room
// for the collector's and the test's own noise.
const memoryBound = 3 * (8 << 20)

// A polling client that stops polling while 250 messages of ~990 KB are
// sent to it is closed once its backlog reaches the hard cap, and the heap
// never holds more than a few hard caps (with the old 1024-message bound
// all 250 messages, about 250 MB, were kept for it).
func TestPollingStalledPeerHardCap(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	ts := newTServer(t, Options{Logger: zap.New(core)})
	ts.handshake()
	r := ts.session()

	const size = 990_000
	const hard = 8 << 20 // the default MaxBufferedBytesHard
	payload := bytes.Repeat([]byte("x"), size)
	base := heapInuse()
	var peak int64
	accepted, full, closed := 0, 0, 0
	for i := 0; i < 250; i++ {
		// TextMessage copies: every message has its own 990 KB.
		err := r.s.Send(TextMessage(payload))
		switch err {
		case nil:
			accepted++
			if d := heapInuse() - base; d > peak {
				peak = d
			}
			if peak > memoryBound {
				t.Fatalf("heap grew by %d bytes after %d messages, bound %d", peak, accepted, memoryBound)
			}
		case ErrQueueFull:
			full++
		case ErrSessionClosed:
			closed++
		default:
			t.Fatalf("Send: %v", err)
		}
	}
	after := heapInuse() - base
	per := int64(size + 1 + QueueEntryOverhead)
	if want := int(hard / per); accepted != want || full != 1 || closed != 250-want-1 {
		t.Errorf("accepted %d, queue full %d, closed %d; want %d, 1, %d", accepted, full, closed, want, 250-want-1)
	}
	if reason := r.waitClose(t); reason != ReasonQueueFull {
		t.Errorf("OnClose(%q)", reason)
	}
	if after > memoryBound {
		t.Errorf("heap grew by %d bytes, bound %d", after, memoryBound)
	}
	t.Logf("heap growth: peak %d bytes (%.1f MiB) while queued, %d after the close; bound %d", peak, float64(peak)/(1<<20), after, memoryBound)

	entries := logs.FilterMessageSnippet("slow client").All()
	if len(entries) != 1 {
		t.Fatalf("%d slow-client log entries, want 1: %v", len(entries), logs.All())
	}
	f := entries[0].ContextMap()
	if entries[0].Level != zapcore.WarnLevel || f["reason"] != ReasonQueueFull ||
		f["queued_bytes"] != int64(accepted)*per || f["sid"] != r.s.ID() {
		t.Errorf("log entry %q %v", entries[0].Message, f)
	}
	for k, v := range f {
		if s, ok := v.(string); ok && len(s) > 100 {
			t.Errorf("log field %s holds %d bytes (payload?)", k, len(s))
		}
	}
	<-r.s.Done()
	ts.srv.Close()
	waitNoEngineGoroutines(t)
}

// One polling response carries at most MaxPayload bytes (or a single
// larger packet); the rest comes with the following polls, in order.
func TestPollingResponseBounded(t *testing.T) {
	const maxPayload = 10_000
	backlog := func(t *testing.T, s *Session) []string {
		t.Helper()
		var want []string
		for i := 0; i < 60; i++ {
			var m *Message
			switch {
			case i == 30: // larger than a whole response: goes alone
				m = TextMessageString(fmt.Sprintf("%03d", i) + strings.Repeat("L", 15_000))
			case i%10 == 7:
				m = BinaryMessage(bytes.Repeat([]byte{byte(i)}, 2000))
			default:
				m = TextMessageString(fmt.Sprintf("%03d", i) + strings.Repeat("x", 900+i))
			}
			if err := s.Send(m); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(appendPayload(nil, []outPacket{{typ: typeMessage, msg: m}})))
		}
		return want
	}
	// poll collects records until n have come, checking each response.
	poll := func(t *testing.T, ts *tserver, sid string, n int) (recs []string, polls int) {
		t.Helper()
		for len(recs) < n && polls < 100 {
			code, body := ts.get(sid)
			polls++
			if code != 200 {
				t.Fatalf("poll %d: %d %q", polls, code, body)
			}
			got := strings.Split(body, "\x1e")
			if len(body) > maxPayload && len(got) > 1 {
				t.Errorf("poll %d: %d bytes in %d packets, over MaxPayload %d", polls, len(body), len(got), maxPayload)
			}
			recs = append(recs, got...)
		}
		return recs, polls
	}
	t.Run("open session", func(t *testing.T) {
		ts := newTServer(t, Options{MaxPayload: maxPayload})
		sid := ts.handshake()
		r := ts.session()
		want := backlog(t, r.s)
		got, polls := poll(t, ts, sid, len(want))
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("got %d records in %d polls, want the %d sent in order", len(got), polls, len(want))
		}
		if polls < 8 {
			t.Errorf("%d polls for %d bytes", polls, len(strings.Join(want, "")))
		}
		if n := r.s.BufferedBytes(); n != 0 {
			t.Errorf("BufferedBytes %d after the last poll", n)
		}
	})
	t.Run("closing session", func(t *testing.T) {
		ts := newTServer(t, Options{MaxPayload: maxPayload})
		sid := ts.handshake()
		r := ts.session()
		want := backlog(t, r.s)
		r.s.Close(ReasonForcedClose)
		got, _ := poll(t, ts, sid, len(want)+1)
		if strings.Join(got, "|") != strings.Join(append(want, "1"), "|") {
			t.Errorf("got %d records, want the %d sent then the close packet", len(got), len(want))
		}
		if code, _ := ts.get(sid); code != 400 {
			t.Errorf("GET after the close packet: %d", code)
		}
		<-r.s.Done()
	})
}

// TestWebSocketBurst: one publisher sends 20,000 messages of 1 KB within
// about half a second, in bursts of 4,000 (4.35 MB of backlog each), to
// two websocket sessions. The one whose client reads gets them all, in
// order, although every burst takes its backlog over the soft bound; the
// one whose client never reads is closed as slow. The old 1024-message
// bound dropped the reader too. Under the race detector the schedule is
// raceSlowdown times longer, and a burst waits until the reader is at
// most 1,000 messages behind: on a busy machine the test's own reader,
// not the server, lagged past the hard cap (seen in CI).
func TestWebSocketBurst(t *testing.T) {
	testkit.WaitsOnClock(t)        // five bursts 100 ms apart
	ts := newTServer(t, Options{}) // default bounds: 1 MiB soft, 8 MiB hard, 5s grace
	fast := ts.mustDial("EIO=4&transport=websocket")
	read(t, fast)
	fr := ts.session()
	slow := ts.mustDial("EIO=4&transport=websocket")
	read(t, slow)
	sr := ts.session()

	const total, burst, lag = 20_000, 4_000, 1_000
	const every = raceSlowdown * 100 * time.Millisecond
	const readTimeout = 20 * time.Second
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	var read atomic.Int64
	go func() {
		defer read.Store(total) // the publisher waits no more
		_ = fast.SetReadDeadline(time.Now().Add(readTimeout))
		var buf [2048]byte
		for i := 0; i < total; i++ {
			_, rd, err := fast.NextReader()
			var n int
			if err == nil {
				n, err = io.ReadFull(rd, buf[:])
				if err == io.ErrUnexpectedEOF {
					err = nil
				}
			}
			if err != nil {
				res <- result{i, err}
				return
			}
			if n != 1025 || string(buf[1:7]) != fmt.Sprintf("%06d", i) {
				res <- result{i, fmt.Errorf("message %d is %.10q (%d bytes)", i, buf[:n], n)}
				return
			}
			read.Store(int64(i + 1))
		}
		res <- result{total, nil}
	}()

	pad := strings.Repeat("x", 1024-6)
	base := heapInuse()
	var peak int64
	var slowErr error
	slowAccepted := 0
	start := time.Now()
	for b := 0; b < total/burst; b++ {
		// A reader that keeps up is never more than lag messages behind
		// when a burst starts (5.4 MB with the burst, under the hard cap),
		// however starved its goroutine is on a loaded machine. Bounded.
		for wait := time.Now().Add(readTimeout); int64(b*burst)-read.Load() > lag && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
		}
		for i := b * burst; i < (b+1)*burst; i++ {
			m := TextMessageString(strconv.FormatInt(int64(1_000_000+i), 10)[1:] + pad)
			if err := fr.s.Send(m); err != nil {
				t.Fatalf("send %d to the reading client: %v (backlog %d)", i, err, fr.s.BufferedBytes())
			}
			if slowErr == nil {
				if slowErr = sr.s.Send(m); slowErr == nil {
					slowAccepted++
				}
			}
		}
		if d := heapInuse() - base; d > peak {
			peak = d
		}
		// Pacing: the bursts come at a real rate, for the reading client
		// to keep up with in real time (and the wait above for a reader
		// that the machine starves).
		time.Sleep(time.Until(start.Add(time.Duration(b+1) * every)))
	}
	elapsed := time.Since(start)

	select {
	case r := <-res:
		if r.err != nil || r.n != total {
			t.Fatalf("reading client got %d of %d messages: %v", r.n, total, r.err)
		}
	case <-time.After(readTimeout + time.Second):
		t.Fatal("reading client did not finish")
	}
	select {
	case reason := <-sr.closeReason:
		if reason != ReasonQueueFull {
			t.Errorf("slow session OnClose(%q)", reason)
		}
	case <-time.After(DefaultSlowClientGrace + testTimeout):
		t.Fatal("slow session not closed")
	}
	if n := fr.closes.Load(); n != 0 {
		t.Errorf("reading session closed")
	}
	if peak > memoryBound {
		t.Errorf("heap grew by %d bytes, bound %d", peak, memoryBound)
	}
	t.Logf("published %d messages in %v; the slow session took %d before %v; heap growth peak %d bytes (%.1f MiB), bound %d",
		total, elapsed.Round(time.Millisecond), slowAccepted, slowErr, peak, float64(peak)/(1<<20), memoryBound)
	select {
	case <-sr.s.Done(): // its writer was stuck in a write: closing the socket ended it
	case <-time.After(testTimeout):
		t.Fatal("slow session not released")
	}
	ts.srv.Close()
	waitNoEngineGoroutines(t)
}

// TestSlowClientGrace: a backlog over the soft bound closes the session
// only if it stays there for SlowClientGrace; each time it falls back
// under the bound the grace starts again. The grace runs on a fake clock.
func TestSlowClientGrace(t *testing.T) {
	const grace = 5 * time.Second
	const soft = 5000
	opts := func(fc *fakeClock) Options {
		return Options{MaxPayload: 2000, MaxBufferedBytes: soft, MaxBufferedBytesHard: 1 << 20, SlowClientGrace: grace, clock: fc}
	}
	msg := TextMessage(bytes.Repeat([]byte("x"), 1000)) // one per poll at MaxPayload 2000
	msgs := make([]*Message, 10)
	for i := range msgs {
		msgs[i] = msg
	}

	t.Run("draining client survives", func(t *testing.T) {
		fc := newFakeClock()
		ts := newTServer(t, opts(fc))
		sid := ts.handshake()
		r := ts.session()
		// Three times 3/4 of the grace over the bound: more than twice
		// the grace in all, never the grace at once.
		for cycle := 0; cycle < 3; cycle++ {
			if err := r.s.Send(msgs...); err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
			if n := r.s.BufferedBytes(); n <= soft {
				t.Fatalf("backlog %d not over the soft bound", n)
			}
			fc.advance(grace * 3 / 4)
			for r.s.BufferedBytes() > soft {
				if code, body := ts.get(sid); code != 200 || len(body) != 1001 {
					t.Fatalf("cycle %d: poll %d %.20q", cycle, code, body)
				}
			}
			fc.advance(grace) // under the bound: no grace runs
			for r.s.BufferedBytes() > 0 {
				ts.get(sid)
			}
		}
		if n := r.closes.Load(); n != 0 {
			t.Fatal("draining session closed")
		}
		if err := r.s.Send(msg); err != nil {
			t.Errorf("Send after the bursts: %v", err)
		}
	})

	t.Run("stuck client is closed after the grace", func(t *testing.T) {
		fc := newFakeClock()
		ts := newTServer(t, opts(fc))
		sid := ts.handshake()
		r := ts.session()
		if err := r.s.Send(msgs...); err != nil {
			t.Fatal(err)
		}
		fc.advance(grace - time.Nanosecond)
		if n := r.closes.Load(); n != 0 {
			t.Fatal("closed before the grace")
		}
		fc.advance(time.Nanosecond)
		if reason := closedNow(t, r); reason != ReasonQueueFull {
			t.Errorf("OnClose(%q)", reason)
		}
		if code, _ := ts.get(sid); code != 400 {
			t.Errorf("GET after the close: %d", code)
		}
		<-r.s.Done()
		ts.srv.Close()
		waitNoEngineGoroutines(t)
	})

	// The websocket writer, once a burst is written, takes the backlog
	// back under the bound: the grace restarts with each burst. Were it
	// not stopped, the first burst's grace would end in the second cycle.
	t.Run("reading websocket survives", func(t *testing.T) {
		fc := newFakeClock()
		ts := newTServer(t, Options{MaxPayload: 1000, MaxBufferedBytes: 64 << 10, MaxBufferedBytesHard: 8 << 20, SlowClientGrace: grace, clock: fc})
		c := ts.mustDial("EIO=4&transport=websocket")
		read(t, c)
		r := ts.session()
		big := make([]*Message, 200) // 200 KB: over the soft bound once queued
		for i := range big {
			big[i] = TextMessage(bytes.Repeat([]byte("y"), 1000))
		}
		const bursts = 6 // 3/4 of the grace apart: 4.5 graces in all
		got := make(chan error, 1)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			for i := 0; i < bursts*len(big); i++ {
				if _, _, err := c.ReadMessage(); err != nil {
					got <- fmt.Errorf("after %d messages: %w", i, err)
					return
				}
			}
			got <- nil
		}()
		for b := 0; b < bursts; b++ {
			if err := r.s.Send(big...); err != nil {
				t.Fatalf("burst %d: %v", b, err)
			}
			fc.advance(grace * 3 / 4)
			waitFor(t, "burst written", func() bool { return r.s.BufferedBytes() == 0 })
		}
		if err := <-got; err != nil {
			t.Fatalf("reading client: %v", err)
		}
		if n := r.closes.Load(); n != 0 {
			t.Fatal("reading session closed")
		}
		ts.srv.Close()
		waitNoEngineGoroutines(t)
	})
}

// SendVolatile drops what would take the backlog over the soft bound,
// and leaves the session open.
func TestSendVolatile(t *testing.T) {
	ts := newTServer(t, Options{MaxBufferedBytes: 3000, MaxPayload: 100_000})
	sid := ts.handshake()
	r := ts.session()
	m := TextMessage(bytes.Repeat([]byte("v"), 935)) // costs 1000
	for i := 0; i < 3; i++ {
		if !r.s.SendVolatile(m) {
			t.Fatalf("volatile message %d dropped with a backlog of %d", i, r.s.BufferedBytes())
		}
	}
	if r.s.SendVolatile(m) {
		t.Errorf("volatile message queued over the soft bound (backlog %d)", r.s.BufferedBytes())
	}
	if r.s.SendVolatile(TextMessageString("a"), TextMessageString("b")) {
		t.Error("volatile pair queued over the soft bound")
	}
	if r.s.BufferedBytes() != 3000 {
		t.Errorf("BufferedBytes %d, want 3000", r.s.BufferedBytes())
	}
	if code, body := ts.get(sid); code != 200 || strings.Count(body, "\x1e") != 2 {
		t.Errorf("GET: %d, %d bytes", code, len(body))
	}
	if !r.s.SendVolatile(m) {
		t.Error("volatile message dropped once drained")
	}
	r.s.Close(ReasonForcedClose)
	if r.s.SendVolatile(m) {
		t.Error("volatile message queued on a closed session")
	}
	if n := r.closes.Load(); n != 1 {
		t.Errorf("OnClose called %d times", n)
	}
}

// The per-entry overhead bounds floods of tiny messages too.
func TestTinyMessagesCountOverhead(t *testing.T) {
	ts := newTServer(t, Options{MaxBufferedBytes: 1000, MaxBufferedBytesHard: 10_000, MaxPayload: 100, SlowClientGrace: time.Minute})
	ts.handshake()
	r := ts.session()
	empty := TextMessage(nil) // "4": one byte
	var err error
	n := 0
	for ; n < 1000 && err == nil; n++ {
		err = r.s.Send(empty)
	}
	if err != ErrQueueFull || n-1 != 10_000/(1+QueueEntryOverhead) {
		t.Errorf("after %d sends: %v, want ErrQueueFull after %d", n-1, err, 10_000/(1+QueueEntryOverhead))
	}
	if reason := r.waitClose(t); reason != ReasonQueueFull {
		t.Errorf("OnClose(%q)", reason)
	}
}

func TestBufferedBytesDefaults(t *testing.T) {
	c := newConfig(Options{})
	if c.MaxBufferedBytes != 1<<20 || c.MaxBufferedBytesHard != 8<<20 || c.SlowClientGrace != 5*time.Second ||
		c.MaxPayloadPackets != 10_000 {
		t.Errorf("defaults %d %d %v %d", c.MaxBufferedBytes, c.MaxBufferedBytesHard, c.SlowClientGrace, c.MaxPayloadPackets)
	}
	// The hard cap is at least the soft bound and one largest message.
	c = newConfig(Options{MaxPayload: 2 << 20, MaxBufferedBytes: 100, MaxBufferedBytesHard: 10})
	if c.MaxBufferedBytesHard != 2<<20+QueueEntryOverhead {
		t.Errorf("hard cap %d with MaxPayload 2 MiB", c.MaxBufferedBytesHard)
	}
	c = newConfig(Options{MaxPayload: 100, MaxBufferedBytes: 5000, MaxBufferedBytesHard: 10})
	if c.MaxBufferedBytesHard != 5000 {
		t.Errorf("hard cap %d under a soft bound of 5000", c.MaxBufferedBytesHard)
	}
}
