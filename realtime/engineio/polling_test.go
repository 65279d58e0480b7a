package engineio

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestPollingRoundTrip(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()

	code, body := ts.post(sid, "4hello\x1e4\x1ebAQIDBA==\x1e4wörld")
	if code != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", code, body)
	}
	got := r.waitMessages(t, 4)
	want := []string{"t:hello", "t:", "b:01020304", "t:wörld"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("delivered %q, want %q", got, want)
	}
	code, body = ts.get(sid)
	if code != 200 || body != "4hello\x1e4\x1ebAQIDBA==\x1e4wörld" {
		t.Errorf("GET: %d %q", code, body)
	}
}

func TestPollingGetWaitsForSend(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	res := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	if err := r.s.Send(TextMessageString("a"), BinaryMessage([]byte{0xff}), TextMessageString("b")); err != nil {
		t.Fatal(err)
	}
	if code, body := waitResult(t, res); code != "200" || body != "4a\x1eb/w==\x1e4b" {
		t.Errorf("GET: %s %q", code, body)
	}
}

func TestPollingConcurrentGet(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	first := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	code, body := ts.get(sid)
	if code != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Errorf("second GET: %d %q", code, body)
	}
	if code, body := waitResult(t, first); code != "200" || body != "1" {
		t.Errorf("first GET: %s %q", code, body)
	}
	if reason := r.waitClose(t); reason != ReasonTransportError {
		t.Errorf("OnClose(%q)", reason)
	}
	if code, _ := ts.get(sid); code != 400 {
		t.Errorf("GET after close: %d", code)
	}
}

func TestPollingOversizePost(t *testing.T) {
	ts := newTServer(t, Options{MaxPayload: 10})
	sid := ts.handshake()
	r := ts.session()
	if code, _ := ts.post(sid, "4"+strings.Repeat("x", 10)); code != 413 {
		t.Errorf("oversize POST: %d, want 413", code)
	}
	// A chunked body (no Content-Length) is cut at MaxPayload+1 bytes.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	pr := strings.NewReader("4" + strings.Repeat("y", 1000))
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"?EIO=4&transport=polling&sid="+sid, struct{ *strings.Reader }{pr})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength != 0 {
		t.Errorf("chunked oversize POST: %d (content length %d)", resp.StatusCode, req.ContentLength)
	}
	// The session stays open.
	if code, body := ts.post(sid, "4123456789"); code != 200 || body != "ok" {
		t.Errorf("POST at limit: %d %q", code, body)
	}
	if got := r.waitMessages(t, 1); len(got) != 1 || got[0] != "t:123456789" {
		t.Errorf("delivered %q", got)
	}
}

func TestPollingBadPayload(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		delivered []string
	}{
		{"unknown type", "abc", nil},
		{"empty body", "", nil},
		{"empty record", "4a\x1e\x1e4b", []string{"t:a"}},
		{"bad base64", "b!!!", nil},
		{"unpadded base64", "bAQIDBA", nil},
		{"valid packets before the bad one are delivered", "4ok\x1e9x", []string{"t:ok"}},
		{"invalid UTF-8", "4\xff\xfe", nil},
		{"truncated UTF-8 sequence", "4caf\xc3", nil},
		{"UTF-16 surrogate in UTF-8", "4\xed\xa0\x80", nil},
		{"invalid UTF-8 after valid packets", "4ok\x1e4\xc3(", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTServer(t, Options{})
			sid := ts.handshake()
			r := ts.session()
			code, body := ts.post(sid, tt.payload)
			if code != 400 || body != `{"code":3,"message":"Bad request"}` {
				t.Errorf("POST %q: %d %q", tt.payload, code, body)
			}
			if reason := r.waitClose(t); reason != ReasonParseError {
				t.Errorf("OnClose(%q)", reason)
			}
			if got := r.messages(); strings.Join(got, "|") != strings.Join(tt.delivered, "|") {
				t.Errorf("delivered %q, want %q", got, tt.delivered)
			}
			if code, body := ts.get(sid); code != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
				t.Errorf("GET after parse error: %d %q", code, body)
			}
		})
	}
}

func TestPollingOctetStreamRefused(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	code, _, _ := ts.do("POST", "EIO=4&transport=polling&sid="+sid, "4hi", http.Header{"Content-Type": {"application/octet-stream"}})
	if code != 400 {
		t.Errorf("octet-stream POST: %d", code)
	}
	r.waitClose(t)
	if len(r.messages()) != 0 {
		t.Errorf("delivered %q", r.messages())
	}
}

func TestPollingClientClose(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	pending := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	if code, body := ts.post(sid, "1"); code != 200 || body != "ok" {
		t.Errorf("POST 1: %d %q", code, body)
	}
	if code, body := waitResult(t, pending); code != "200" || body != "6" {
		t.Errorf("pending GET: %s %q", code, body)
	}
	if reason := r.waitClose(t); reason != ReasonTransportClose {
		t.Errorf("OnClose(%q)", reason)
	}
	if code, _ := ts.get(sid); code != 400 {
		t.Errorf("GET after close: %d", code)
	}
	select {
	case <-r.s.Done():
	case <-time.After(testTimeout):
		t.Fatal("Done not closed")
	}
}

// A GET sent together with the close POST but arriving second still ends
// with a noop; the request after it is refused.
func TestPollingClientCloseThenGet(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	ts.post(sid, "1")
	r.waitClose(t)
	if code, body := ts.get(sid); code != 200 || body != "6" {
		t.Errorf("GET right after close: %d %q", code, body)
	}
	if code, _ := ts.get(sid); code != 400 {
		t.Errorf("second GET after close: %d", code)
	}
}

func TestPollingServerClose(t *testing.T) {
	t.Run("pending GET gets queue and close packet", func(t *testing.T) {
		ts := newTServer(t, Options{})
		sid := ts.handshake()
		r := ts.session()
		pending := ts.asyncGet(sid)
		waitFor(t, "pending GET", func() bool { return r.s.Writable() })
		r.s.Close(ReasonForcedClose)
		if code, body := waitResult(t, pending); code != "200" || body != "1" {
			t.Errorf("pending GET: %s %q", code, body)
		}
		if reason := r.waitClose(t); reason != ReasonForcedClose {
			t.Errorf("OnClose(%q)", reason)
		}
	})
	t.Run("next GET collects the last packets", func(t *testing.T) {
		ts := newTServer(t, Options{})
		sid := ts.handshake()
		r := ts.session()
		if err := r.s.Send(TextMessageString("bye")); err != nil {
			t.Fatal(err)
		}
		r.s.Close(ReasonForcedClose)
		r.s.Close("again") // idempotent
		if err := r.s.Send(TextMessageString("late")); err != ErrSessionClosed {
			t.Errorf("Send after Close: %v", err)
		}
		if code, body := ts.get(sid); code != 200 || body != "4bye\x1e1" {
			t.Errorf("GET: %d %q", code, body)
		}
		if code, _ := ts.get(sid); code != 400 {
			t.Errorf("GET after last: %d", code)
		}
		if n := r.closes.Load(); n != 1 {
			t.Errorf("OnClose called %d times", n)
		}
		<-r.s.Done()
	})
}

// The polling heartbeat on a fake clock: a ping queued exactly every
// PingInterval while pongs come, the session closed exactly PingTimeout
// after the ping that gets none.
func TestPollingHeartbeat(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc})
	sid := ts.handshake()
	r := ts.session()
	for i := 0; i < 3; i++ {
		fc.advance(interval - time.Nanosecond)
		if awaitingPong(r.s) {
			t.Fatalf("round %d: pinged before the interval", i)
		}
		fc.advance(time.Nanosecond)
		if code, body := ts.get(sid); code != 200 || body != "2" {
			t.Fatalf("round %d: GET %d %q", i, code, body)
		}
		if code, _ := ts.post(sid, "3"); code != 200 { // handled before the response
			t.Fatalf("round %d: POST pong %d", i, code)
		}
	}
	// No pong: closed at the timeout.
	fc.advance(interval)
	if code, body := ts.get(sid); code != 200 || body != "2" {
		t.Fatalf("GET %d %q", code, body)
	}
	fc.advance(timeout - time.Nanosecond)
	if closedYet(r.s) {
		t.Fatal("closed before the pong deadline")
	}
	fc.advance(time.Nanosecond)
	if reason := closedNow(t, r); reason != ReasonPingTimeout {
		t.Errorf("OnClose(%q)", reason)
	}
	if code, _ := ts.get(sid); code != 400 {
		t.Errorf("GET after ping timeout: %d", code)
	}
}

// A polling session closed by its client lingers clientCloseLinger for a
// GET that raced the close packet, then is gone.
func TestPollingClientCloseLinger(t *testing.T) {
	fc := newFakeClock()
	ts := newTServer(t, Options{clock: fc})
	sid := ts.handshake()
	r := ts.session()
	ts.post(sid, "1")
	if reason := closedNow(t, r); reason != ReasonTransportClose { // OnClose ran in the POST
		t.Errorf("OnClose(%q)", reason)
	}
	fc.advance(clientCloseLinger - time.Nanosecond)
	if r.s.gone() {
		t.Fatal("gone before the linger ended")
	}
	fc.advance(time.Nanosecond)
	select {
	case <-r.s.Done():
	default:
		t.Fatal("session not finalized when its linger ended")
	}
	if code, _ := ts.get(sid); code != 400 {
		t.Errorf("GET after the linger: %d", code)
	}
}

// A gracefully closed polling session without a pending GET keeps its
// last packets pollingCloseLinger for the GET that collects them.
func TestPollingCloseLinger(t *testing.T) {
	fc := newFakeClock()
	ts := newTServer(t, Options{clock: fc})
	for _, collected := range []bool{true, false} {
		sid := ts.handshake()
		r := ts.session()
		if err := r.s.Send(TextMessageString("bye")); err != nil {
			t.Fatal(err)
		}
		r.s.Close(ReasonForcedClose)
		fc.advance(pollingCloseLinger - time.Nanosecond)
		if collected {
			if code, body := ts.get(sid); code != 200 || body != "4bye\x1e1" {
				t.Errorf("GET at the end of the linger: %d %q", code, body)
			}
		} else {
			fc.advance(time.Nanosecond)
			if code, _ := ts.get(sid); code != 400 {
				t.Errorf("GET after the linger: %d", code)
			}
		}
		select {
		case <-r.s.Done():
		case <-time.After(testTimeout):
			t.Fatal("session not finalized")
		}
	}
}

func TestPollingClientPingIsAnError(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	ts.post(sid, "2")
	if reason := r.waitClose(t); reason != ReasonParseError {
		t.Errorf("OnClose(%q)", reason)
	}
}

// A GET whose client goes away does not close the session.
func TestPollingGetAbandoned(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"?EIO=4&transport=polling&sid="+sid, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	cancel()
	<-errc
	waitFor(t, "GET released", func() bool { return !r.s.Writable() })
	if err := r.s.Send(TextMessageString("still here")); err != nil {
		t.Fatal(err)
	}
	if code, body := ts.get(sid); code != 200 || body != "4still here" {
		t.Errorf("GET: %d %q", code, body)
	}
}

func TestCloseFromOnMessage(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	r.onMessage = func(r *recorder, data []byte, _ bool) {
		if string(data) == "close" {
			r.s.Close(ReasonForcedClose)
			// Close returned on the delivering goroutine: had it run
			// OnClose (the only goroutine that could), it would have by now.
			if r.closes.Load() != 0 {
				t.Error("OnClose ran inside Close, during OnMessage")
			}
		}
	}
	ts.post(sid, "4close\x1e4after")
	if reason := r.waitClose(t); reason != ReasonForcedClose {
		t.Errorf("OnClose(%q)", reason)
	}
	if r.overlapped.Load() {
		t.Error("OnClose ran during OnMessage")
	}
	if got := r.messages(); len(got) != 1 {
		t.Errorf("messages after close delivered: %q", got)
	}
}

// TestPollingReleasePolls: a waiting GET is answered with a noop at once,
// and the session stays open for the next GET.
func TestPollingReleasePolls(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	r := ts.session()
	res := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return r.s.Writable() })
	ts.srv.ReleasePolls()
	if code, body := waitResult(t, res); code != "200" || body != "6" {
		t.Errorf("released GET: %s %q", code, body)
	}
	if err := r.s.Send(TextMessageString("still here")); err != nil {
		t.Fatal(err)
	}
	if code, body := ts.get(sid); code != 200 || body != "4still here" {
		t.Errorf("GET after release: %d %q", code, body)
	}
}

// payloadOf joins n text packets "4<i>" into one polling payload.
func payloadOf(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(recordSeparator)
		}
		b.WriteByte('4')
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// TestPollingPacketLimit: a POST with more than MaxPayloadPackets packets
// is refused as a bad request, none of its packets delivered, and the
// session is closed; one under the limit is delivered whole.
func TestPollingPacketLimit(t *testing.T) {
	t.Run("30000 packets refused", func(t *testing.T) {
		core, logs := observer.New(zapcore.WarnLevel)
		ts := newTServer(t, Options{Logger: zap.New(core)})
		sid := ts.handshake()
		r := ts.session()
		code, body := ts.post(sid, payloadOf(30_000))
		if code != 400 || body != `{"code":3,"message":"Bad request"}` {
			t.Errorf("POST: %d %q", code, body)
		}
		if reason := r.waitClose(t); reason != ReasonParseError {
			t.Errorf("OnClose(%q)", reason)
		}
		if n := len(r.messages()); n != 0 {
			t.Errorf("%d packets of the refused payload delivered", n)
		}
		if code, _ := ts.get(sid); code != 400 {
			t.Errorf("GET after the refusal: %d", code)
		}
		entries := logs.FilterField(zap.Int("limit_packets", DefaultMaxPayloadPackets)).All()
		if len(entries) != 1 || entries[0].ContextMap()["sid"] != sid {
			t.Errorf("log entries naming the limit: %v (all: %v)", entries, logs.All())
		}
	})
	t.Run("5000 packets accepted", func(t *testing.T) {
		recs := make(chan *recorder, 1)
		ts := newTServer(t, Options{OnSession: func(s *Session) {
			r := newRecorder(s, false)
			r.got = make(chan struct{}, 10_000) // all 5000 before the POST returns
			s.SetHandler(r)
			recs <- r
		}})
		ts.sessions = recs
		sid := ts.handshake()
		r := ts.session()
		if code, body := ts.post(sid, payloadOf(5_000)); code != 200 || body != "ok" {
			t.Fatalf("POST: %d %q", code, body)
		}
		got := r.waitMessages(t, 5_000)
		for i, m := range got {
			if m != "t:"+strconv.Itoa(i) {
				t.Fatalf("message %d is %q", i, m)
			}
		}
		if n := r.closes.Load(); n != 0 {
			t.Error("session closed")
		}
	})
	t.Run("custom limit", func(t *testing.T) {
		ts := newTServer(t, Options{MaxPayloadPackets: 3})
		sid := ts.handshake()
		r := ts.session()
		if code, _ := ts.post(sid, payloadOf(3)); code != 200 {
			t.Errorf("POST of 3 packets: %d", code)
		}
		if code, _ := ts.post(sid, payloadOf(4)); code != 400 {
			t.Errorf("POST of 4 packets: %d", code)
		}
		if reason := r.waitClose(t); reason != ReasonParseError {
			t.Errorf("OnClose(%q)", reason)
		}
		if got := r.messages(); len(got) != 3 {
			t.Errorf("delivered %q", got)
		}
	})
}
