package engineio

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestWebSocketHandshake(t *testing.T) {
	ts := newTServer(t, Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	c := ts.mustDial("EIO=4&transport=websocket")
	_, frame := read(t, c)
	if !strings.HasPrefix(frame, "0{") {
		t.Fatalf("first frame %q", frame)
	}
	var open map[string]any
	if err := json.Unmarshal([]byte(frame[1:]), &open); err != nil {
		t.Fatal(err)
	}
	ups, _ := json.Marshal(open["upgrades"])
	if len(open) != 5 || string(ups) != "[]" || open["pingInterval"] != 300.0 || open["pingTimeout"] != 200.0 {
		t.Errorf("open packet %v", open)
	}
	r := ts.session()
	if r.s.Transport() != TransportWebSocket || r.s.ID() != open["sid"] {
		t.Errorf("session %q %q", r.s.Transport(), r.s.ID())
	}
}

func TestWebSocketEcho(t *testing.T) {
	ts := newTServer(t, Options{})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	send(t, c, "4hello")
	expectText(t, c, "4hello")
	if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if mt, p := read(t, c); mt != websocket.BinaryMessage || p != "\x01\x02\x03\x04" {
		t.Errorf("binary echo (%d) %q", mt, p)
	}
	if got := r.waitMessages(t, 2); strings.Join(got, "|") != "t:hello|b:01020304" {
		t.Errorf("delivered %q", got)
	}
	send(t, c, "1") // client close
	expectClosed(t, c)
	if reason := r.waitClose(t); reason != ReasonTransportClose {
		t.Errorf("OnClose(%q)", reason)
	}
	<-r.s.Done()
	waitFor(t, "session removed", func() bool { return ts.srv.SessionCount() == 0 })
}

func TestWebSocketOversizeFrame(t *testing.T) {
	ts := newTServer(t, Options{MaxPayload: 100})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	send(t, c, "4"+strings.Repeat("x", 99)) // at the limit
	expectText(t, c, "4"+strings.Repeat("x", 99))
	send(t, c, "4"+strings.Repeat("x", 200))
	err := expectClosed(t, c)
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("close error %v, want 1009", err)
	}
	if reason := r.waitClose(t); reason != ReasonTransportError {
		t.Errorf("OnClose(%q)", reason)
	}
}

func TestWebSocketParseError(t *testing.T) {
	for _, frame := range []string{"abc", "", "2"} {
		t.Run(fmt.Sprintf("%q", frame), func(t *testing.T) {
			ts := newTServer(t, Options{})
			c := ts.mustDial("EIO=4&transport=websocket")
			read(t, c)
			r := ts.session()
			send(t, c, frame)
			expectClosed(t, c)
			if reason := r.waitClose(t); reason != ReasonParseError {
				t.Errorf("OnClose(%q)", reason)
			}
		})
	}
}

// The heartbeat on a fake clock: pings exactly every PingInterval while
// the client answers, and a close exactly PingTimeout after the ping it
// does not answer.
func TestWebSocketHeartbeat(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	for i := 0; i < 3; i++ {
		fc.advance(interval - time.Nanosecond)
		if awaitingPong(r.s) {
			t.Fatalf("round %d: pinged before the interval", i)
		}
		fc.advance(time.Nanosecond)
		expectText(t, c, "2")
		mark := fc.mark()
		send(t, c, "3")
		fc.waitArmed(t, interval, mark) // the pong restarted the interval
	}
	fc.advance(interval)
	expectText(t, c, "2")
	fc.advance(timeout - time.Nanosecond)
	if closedYet(r.s) {
		t.Fatal("closed before the pong deadline")
	}
	fc.advance(time.Nanosecond)
	if reason := closedNow(t, r); reason != ReasonPingTimeout {
		t.Errorf("OnClose(%q)", reason)
	}
	expectClosed(t, c)
}

// Another packet while a pong is due extends the deadline once (Node):
// to PingTimeout after that packet; a second packet does not extend it
// again. On the fake clock, the session must close exactly at the deadline
// the first packet set.
func TestWebSocketHeartbeatExtendedOnce(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	fc.advance(interval)
	expectText(t, c, "2")
	fc.advance(timeout / 2)
	send(t, c, "4x")
	expectText(t, c, "4x") // echoed: the reader extended the deadline before delivering it
	fc.advance(timeout / 2)
	if closedYet(r.s) {
		t.Fatal("closed at the ping's own deadline: the message did not extend it")
	}
	send(t, c, "4y")
	r.waitMessages(t, 2) // delivered: past the point where it would have extended
	fc.advance(timeout/2 - time.Nanosecond)
	if closedYet(r.s) {
		t.Fatal("closed before the extended deadline")
	}
	fc.advance(time.Nanosecond) // PingTimeout after "4x"
	// The fake clock stands still from here, so a deadline that "4y" moved
	// can never fire: waiting in real time only lets an OnClose that runs
	// off the test's goroutine arrive (CI saw it late once under load).
	select {
	case reason := <-r.closeReason:
		if reason != ReasonPingTimeout {
			t.Errorf("OnClose(%q)", reason)
		}
	case <-time.After(2 * time.Second):
		r.s.mu.Lock()
		deadline, awaiting, extended := r.s.hbDeadline, r.s.awaitingPong, r.s.extended
		r.s.mu.Unlock()
		t.Fatalf("open at the deadline \"4x\" set: the second message extended it again (deadline %v, now %v, awaiting pong %v, extended %v)",
			deadline, stampOf(fc.Now()), awaiting, extended)
	}
	expectClosed(t, c)
}

// The websocket writer goroutine ends after writerLinger without anything
// to write, keeping the connection; the next packet starts a new one.
func TestWebSocketWriterLinger(t *testing.T) {
	fc := newFakeClock()
	// Direct writes would leave the writer out of it (direct_test.go).
	ts := newTServer(t, Options{clock: fc, DisableDirectWrites: true})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	writing := func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.writing
	}
	for i := 0; i < 2; i++ {
		mark := fc.mark()
		if err := r.s.Send(TextMessageString("m")); err != nil {
			t.Fatal(err)
		}
		expectText(t, c, "4m")
		fc.waitArmed(t, writerLinger, mark) // the writer waits for more
		fc.advance(writerLinger - time.Nanosecond)
		if !writing() {
			t.Fatalf("round %d: writer ended before its linger", i)
		}
		fc.advance(time.Nanosecond)
		waitFor(t, "writer to end", func() bool { return !writing() })
		r.s.mu.Lock()
		live := r.s.wsLive
		r.s.mu.Unlock()
		if live != 1 {
			t.Fatalf("round %d: wsLive %d after the writer ended, want the reader's 1", i, live)
		}
	}
	send(t, c, "4still")
	expectText(t, c, "4still")
	if n := r.closes.Load(); n != 0 {
		t.Error("session closed")
	}
}

// upgrade takes a polling session to websocket and returns the socket.
func upgrade(t *testing.T, ts *tserver, sid string, r *recorder) *websocket.Conn {
	t.Helper()
	pending := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	c := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	send(t, c, "2probe")
	expectText(t, c, "3probe")
	if code, body := waitResult(t, pending); code != "200" || body != "6" {
		t.Fatalf("GET pending during upgrade: %s %q", code, body)
	}
	return c
}

func TestUpgrade(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	c := upgrade(t, ts, sid, r)
	// GETs during the upgrade return at once.
	if code, body := ts.get(sid); code != 200 || body != "6" {
		t.Errorf("GET during upgrade: %d %q", code, body)
	}
	const n = 200
	for i := 0; i < n/2; i++ {
		if err := r.s.Send(TextMessageString(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if r.s.Transport() != TransportPolling {
		t.Error("switched before the upgrade packet")
	}
	send(t, c, "5")
	for i := n / 2; i < n; i++ {
		if err := r.s.Send(TextMessageString(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		expectText(t, c, fmt.Sprintf("4%d", i))
	}
	if tr := r.s.Transport(); tr != TransportWebSocket {
		t.Errorf("transport %q after upgrade", tr)
	}
	if code, body := ts.get(sid); code != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Errorf("polling after upgrade: %d %q", code, body)
	}
	send(t, c, "4hello")
	expectText(t, c, "4hello")
}

// Messages queued before the probe may leave by a polling GET during the
// upgrade; together with the websocket they arrive complete and in order.
func TestUpgradeQueuedBeforeProbe(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	c := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	for i := 0; i < 10; i++ {
		_ = r.s.Send(TextMessageString(fmt.Sprint(i)))
	}
	send(t, c, "2probe")
	expectText(t, c, "3probe")
	for i := 10; i < 20; i++ {
		_ = r.s.Send(TextMessageString(fmt.Sprint(i)))
	}
	code, body := ts.get(sid)
	if code != 200 {
		t.Fatalf("GET %d", code)
	}
	var got []string
	for _, rec := range strings.Split(body, "\x1e") {
		got = append(got, rec)
	}
	for i := 20; i < 30; i++ {
		_ = r.s.Send(TextMessageString(fmt.Sprint(i)))
	}
	send(t, c, "5")
	for len(got) < 30 {
		_, f := read(t, c)
		got = append(got, f)
	}
	for i, f := range got {
		if f != fmt.Sprintf("4%d", i) {
			t.Fatalf("packet %d = %q; all: %q", i, f, got)
		}
	}
}

func TestUpgradeSecondWebSocketRefused(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	c := upgrade(t, ts, sid, r)

	// While upgrading: completes the 101, then closes.
	c2 := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	expectClosed(t, c2)

	send(t, c, "5")
	c3 := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	expectClosed(t, c3)

	send(t, c, "4still")
	expectText(t, c, "4still")
	if n := r.closes.Load(); n != 0 {
		t.Errorf("session closed")
	}
}

func TestUpgradeTimeout(t *testing.T) {
	const upgradeTimeout = 10 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{UpgradeTimeout: upgradeTimeout, clock: fc})
	sid := ts.handshake()
	r := ts.session()
	mark := fc.mark()
	c := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	fc.waitArmed(t, upgradeTimeout, mark)
	fc.advance(upgradeTimeout - time.Nanosecond)
	r.s.mu.Lock()
	probing := r.s.probe != nil
	r.s.mu.Unlock()
	if !probing {
		t.Fatal("upgrade dropped before its timeout")
	}
	fc.advance(time.Nanosecond)
	expectClosed(t, c)
	// Still on polling, still working.
	if code, _ := ts.post(sid, "4ping"); code != 200 {
		t.Fatalf("POST %d", code)
	}
	if code, body := ts.get(sid); code != 200 || body != "4ping" {
		t.Errorf("GET %d %q", code, body)
	}
	if r.s.Transport() != TransportPolling || r.closes.Load() != 0 {
		t.Error("session affected by the failed upgrade")
	}
	// And a later upgrade works.
	c = upgrade(t, ts, sid, r)
	send(t, c, "5")
	send(t, c, "4ws")
	expectText(t, c, "4ws")
}

func TestUpgradeAbortedByOtherPacket(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	c := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	send(t, c, "4early")
	expectClosed(t, c)
	if code, _ := ts.post(sid, "4poll"); code != 200 {
		t.Errorf("POST %d", code)
	}
	if got := r.waitMessages(t, 1); got[0] != "t:poll" {
		t.Errorf("delivered %q", got)
	}
}

// Slow client: a websocket that never reads. Sends fail with ErrQueueFull
// once the backlog reaches the hard cap, and the session is closed.
func TestWebSocketSlowClient(t *testing.T) {
	ts := newTServer(t, Options{MaxBufferedBytes: 64 << 10, MaxBufferedBytesHard: 1 << 20, MaxPayload: 1000,
		SlowClientGrace: time.Minute, WriteTimeout: 30 * time.Second})
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	big := TextMessage(make([]byte, 64<<10))
	var err error
	sent := 0
	for ; sent < 100_000; sent++ {
		if err = r.s.Send(big); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("after %d sends: %v, want ErrQueueFull", sent, err)
	}
	if reason := r.waitClose(t); reason != ReasonQueueFull {
		t.Errorf("OnClose(%q)", reason)
	}
	select {
	case <-r.s.Done():
	case <-time.After(testTimeout):
		t.Fatal("slow session not released (writer stuck?)")
	}
	if err := r.s.Send(big); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Send after overflow: %v", err)
	}
}

func TestSharedMessage(t *testing.T) {
	ts := newTServer(t, Options{})
	var conns []*websocket.Conn
	var recs []*recorder
	for i := 0; i < 3; i++ {
		c := ts.mustDial("EIO=4&transport=websocket")
		read(t, c)
		conns = append(conns, c)
		recs = append(recs, ts.session())
	}
	sid := ts.handshake()
	recs = append(recs, ts.session())

	text := TextMessageString("all").Shared()
	bin := BinaryMessage([]byte{9, 8}).Shared()
	if text.Shared() != text {
		t.Error("Shared of a shared message copies it")
	}
	for _, r := range recs {
		if err := r.s.Send(text, bin); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		expectText(t, c, "4all")
		if mt, p := read(t, c); mt != websocket.BinaryMessage || p != "\x09\x08" {
			t.Errorf("binary (%d) %q", mt, p)
		}
	}
	if code, body := ts.get(sid); code != 200 || body != "4all\x1ebCQg=" {
		t.Errorf("polling: %d %q", code, body)
	}
}

// wrapWriter hides http.Hijacker as middleware does (Caddy wraps the
// ResponseWriter); it exposes the original through Unwrap only.
type wrapWriter struct{ w http.ResponseWriter }

func (w wrapWriter) Header() http.Header         { return w.w.Header() }
func (w wrapWriter) Write(b []byte) (int, error) { return w.w.Write(b) }
func (w wrapWriter) WriteHeader(code int)        { w.w.WriteHeader(code) }
func (w wrapWriter) Unwrap() http.ResponseWriter { return w.w }

func TestWebSocketThroughWrappedResponseWriter(t *testing.T) {
	srv := NewServer(Options{OnSession: func(s *Session) { s.SetHandler(newRecorder(s, true)) }})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := any(wrapWriter{w}).(http.Hijacker); ok {
			t.Error("wrapper implements Hijacker; the test proves nothing")
		}
		srv.ServeHTTP(wrapWriter{w}, r)
	}))
	defer hs.Close()
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read(t, c)
	send(t, c, "4wrapped")
	expectText(t, c, "4wrapped")
}

// HTTP/2 cannot carry our websocket; a request claiming it is refused.
func TestWebSocketOverHTTP2Refused(t *testing.T) {
	srv := NewServer(Options{})
	defer srv.Close()
	req := httptest.NewRequest("GET", "/?EIO=4&transport=websocket", nil)
	req.ProtoMajor, req.ProtoMinor = 2, 0
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 400 || rec.Body.String() != "Bad request" {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
}

// A raw upgrade on a connection that keeps the server's deadlines would
// die; this checks the 101 and first frame arrive over a raw socket too.
func TestWebSocketRawHandshake(t *testing.T) {
	ts := newTServer(t, Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(conn, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("status line %q", status)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	hdr := make([]byte, 2)
	if _, err := br.Read(hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 { // FIN + text
		t.Errorf("first frame header %x", hdr)
	}
}

// countingListener hands out connections that count their Write calls.
type countingListener struct {
	net.Listener
	conns chan *countingConn
}

type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestWebSocketHandshakeOneWrite: the handshake's 101 answer and the open
// packet leave the server in one write call (the client reads both from
// one segment), while an upgrade's 101 is not held back: its client waits
// for it before it sends the probe.
func TestWebSocketHandshakeOneWrite(t *testing.T) {
	srv := NewServer(Options{PingInterval: time.Minute, OnSession: func(s *Session) { s.SetHandler(newRecorder(s, false)) }})
	hs := httptest.NewUnstartedServer(srv)
	conns := make(chan *countingConn, 4)
	hs.Listener = countingListener{hs.Listener, conns}
	hs.Start()
	t.Cleanup(func() { srv.Close(); hs.Close() })
	ts := &tserver{t: t, hs: hs, url: hs.URL + "/engine.io/"}
	c := ts.mustDial("EIO=4&transport=websocket")
	if _, frame := read(t, c); !strings.HasPrefix(frame, "0{") {
		t.Fatalf("open packet %q", frame)
	}
	sc := <-conns
	if n := sc.writes.Load(); n != 1 {
		t.Errorf("the server wrote the handshake and the open packet in %d calls, want 1", n)
	}

	// The upgrade of a polling session: the 101 comes at once.
	sid := ts.handshake()
	<-conns // the polling request's connection
	up := ts.mustDial("EIO=4&transport=websocket&sid=" + sid)
	send(t, up, "2probe")
	expectText(t, up, "3probe")
}

// TestWebSocketFirstFrameOnRequestGoroutine: the first frame of a
// websocket session is handled on the handshake request's goroutine
// (whose stack has grown already), the next ones on the reader's own, and
// the request's handler returns after the first frame while the session
// lives on.
//
// Over TLS (a connection that cannot park) the handler returns before any
// frame: its wait for one would have no bound.
func TestWebSocketFirstFrameOnRequestGoroutine(t *testing.T) {
	type delivery struct {
		text        string
		fromRequest bool
	}
	got := make(chan delivery, 4)
	srv := NewServer(Options{PingInterval: time.Minute, OnSession: func(s *Session) {
		r := newRecorder(s, true)
		r.onMessage = func(_ *recorder, data []byte, _ bool) {
			buf := make([]byte, 64<<10)
			stack := string(buf[:runtime.Stack(buf, false)])
			got <- delivery{string(data), strings.Contains(stack, "net/http.(*conn).serve")}
		}
		s.SetHandler(r)
	}})
	h, returned := returningHandler(srv)
	c := dialHandler(t, srv, h)
	if _, frame := read(t, c); !strings.HasPrefix(frame, "0{") {
		t.Fatalf("first frame %q", frame)
	}
	for i, text := range []string{"first", "second"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte("4"+text)); err != nil {
			t.Fatal(err)
		}
		expectText(t, c, "4"+text)
		var d delivery
		select {
		case d = <-got:
		case <-time.After(testTimeout):
			t.Fatalf("%q not delivered", text)
		}
		if want := i == 0; d.text != text || d.fromRequest != want {
			t.Errorf("delivery %d: %+v, want %q on the request's goroutine: %v", i, d, text, want)
		}
		if i == 0 {
			select {
			case <-returned:
			case <-time.After(testTimeout):
				t.Fatal("the handshake's handler did not return after the first frame")
			}
		}
	}
}

func TestWebSocketTLSHandshakeReturnsAtOnce(t *testing.T) {
	srv := echoServer()
	h, returned := returningHandler(srv)
	c := dialTLS(t, srv, h)
	read(t, c) // open packet
	select {
	case <-returned:
	case <-time.After(testTimeout):
		t.Fatal("over TLS the handshake's handler waited for the client's first frame")
	}
	send(t, c, "4late")
	expectText(t, c, "4late")
}
