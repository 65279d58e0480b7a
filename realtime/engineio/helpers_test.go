package engineio

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 5 * time.Second

// recorder is a Handler that records what it receives and can echo.
type recorder struct {
	s    *Session
	echo bool

	mu   sync.Mutex
	msgs []string // "t:<text>" or "b:<hex>"

	got         chan struct{} // one token per message (buffered)
	closeReason chan string   // buffered 1
	closes      atomic.Int32
	inMessage   atomic.Bool
	overlapped  atomic.Bool // OnClose or OnMessage ran during OnMessage
	onMessage   func(r *recorder, data []byte, binary bool)
}

func newRecorder(s *Session, echo bool) *recorder {
	return &recorder{s: s, echo: echo, got: make(chan struct{}, 4096), closeReason: make(chan string, 1)}
}

func (r *recorder) OnMessage(data []byte, binary bool) {
	if r.inMessage.Swap(true) {
		r.overlapped.Store(true)
	}
	defer r.inMessage.Store(false)
	r.mu.Lock()
	if binary {
		r.msgs = append(r.msgs, "b:"+hex.EncodeToString(data))
	} else {
		r.msgs = append(r.msgs, "t:"+string(data))
	}
	r.mu.Unlock()
	if r.echo {
		m := TextMessage(data)
		if binary {
			m = BinaryMessage(data)
		}
		_ = r.s.Send(m)
	}
	if r.onMessage != nil {
		r.onMessage(r, data, binary)
	}
	r.got <- struct{}{}
}

func (r *recorder) OnClose(reason string) {
	if r.inMessage.Load() {
		r.overlapped.Store(true)
	}
	if r.closes.Add(1) == 1 {
		r.closeReason <- reason
	}
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *recorder) waitMessages(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(testTimeout)
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("got %d of %d messages: %q", i, n, r.messages())
		}
	}
	return r.messages()
}

func (r *recorder) waitClose(t *testing.T) string {
	t.Helper()
	select {
	case reason := <-r.closeReason:
		return reason
	case <-time.After(testTimeout):
		t.Fatal("OnClose not called")
		return ""
	}
}

// tserver is a Server behind httptest with a recorder per session.
type tserver struct {
	t        *testing.T
	srv      *Server
	hs       *httptest.Server
	url      string // http://127.0.0.1:port/engine.io/
	sessions chan *recorder
}

// newTServer starts a server; sessions echo unless opts.OnSession is set.
// Heartbeats are slow unless the options say otherwise, so pings do not
// interleave with what a test expects.
func newTServer(t *testing.T, opts Options) *tserver {
	t.Helper()
	ts := &tserver{t: t, sessions: make(chan *recorder, 64)}
	if opts.PingInterval == 0 {
		opts.PingInterval = time.Minute
	}
	if opts.OnSession == nil {
		opts.OnSession = func(s *Session) {
			r := newRecorder(s, true)
			s.SetHandler(r)
			ts.sessions <- r
		}
	}
	ts.srv = NewServer(opts)
	ts.hs = httptest.NewServer(ts.srv)
	ts.url = ts.hs.URL + "/engine.io/"
	t.Cleanup(func() {
		ts.srv.Close()
		ts.hs.Close()
	})
	return ts
}

func (ts *tserver) session() *recorder {
	ts.t.Helper()
	select {
	case r := <-ts.sessions:
		return r
	case <-time.After(testTimeout):
		ts.t.Fatal("no session opened")
		return nil
	}
}

func (ts *tserver) do(method, query, body string, hdr http.Header) (int, http.Header, string) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.url+"?"+query, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("reading body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// handshake opens a polling session and returns its sid.
func (ts *tserver) handshake() string {
	ts.t.Helper()
	code, _, body := ts.do("GET", "EIO=4&transport=polling", "", nil)
	if code != 200 || !strings.HasPrefix(body, "0{") {
		ts.t.Fatalf("handshake: %d %q", code, body)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		ts.t.Fatal(err)
	}
	return open.Sid
}

func (ts *tserver) get(sid string) (int, string) {
	ts.t.Helper()
	code, _, body := ts.do("GET", "EIO=4&transport=polling&sid="+sid, "", nil)
	return code, body
}

func (ts *tserver) post(sid, payload string) (int, string) {
	ts.t.Helper()
	code, _, body := ts.do("POST", "EIO=4&transport=polling&sid="+sid, payload, http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
	return code, body
}

// asyncGet starts a polling GET; its result arrives on the channel.
func (ts *tserver) asyncGet(sid string) <-chan [2]string {
	c := make(chan [2]string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"?EIO=4&transport=polling&sid="+sid, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c <- [2]string{"error", err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		c <- [2]string{resp.Status[:3], string(b)}
	}()
	return c
}

func waitResult(t *testing.T, c <-chan [2]string) (string, string) {
	t.Helper()
	select {
	case r := <-c:
		return r[0], r[1]
	case <-time.After(testTimeout):
		t.Fatal("request did not complete")
		return "", ""
	}
}

func (ts *tserver) dial(query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: testTimeout}
	u := "ws" + strings.TrimPrefix(ts.url, "http") + "?" + query
	return d.Dial(u, hdr)
}

func (ts *tserver) mustDial(query string) *websocket.Conn {
	ts.t.Helper()
	c, _, err := ts.dial(query, nil)
	if err != nil {
		ts.t.Fatalf("dial %s: %v", query, err)
	}
	ts.t.Cleanup(func() { c.Close() })
	return c
}

// read reads one frame with a deadline.
func read(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	mt, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	return mt, string(p)
}

func expectText(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	mt, got := read(t, c)
	if mt != websocket.TextMessage || got != want {
		t.Fatalf("frame = (%d) %q, want text %q", mt, got, want)
	}
}

func send(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("writing %q: %v", s, err)
	}
}

// expectClosed reads until the connection ends and returns the error.
func expectClosed(t *testing.T, c *websocket.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	for i := 0; i < 10000; i++ {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection not closed: %v", err)
			}
			return err
		}
	}
	t.Fatal("connection not closed after many frames")
	return nil
}

// engineGoroutines lists goroutines running code of this package (test
// files excluded): after Server.Close there must be none.
func engineGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "\t") && strings.Contains(line, "/realtime/engineio/") &&
				!strings.Contains(line, "_test.go") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func waitNoEngineGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		left := engineGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the package still running:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond: for engine states that no channel signals (a GET
// parked, a writer goroutine ended). Timers are not waited for this way:
// tests that need one run it out on a fakeClock.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoServer is a server whose sessions echo what they receive.
func echoServer() *Server {
	return NewServer(Options{PingInterval: time.Minute, OnSession: func(s *Session) { s.SetHandler(newRecorder(s, true)) }})
}

// dialTLS serves h (srv itself when h is nil) over TLS with httptest's
// certificate and dials a websocket session on it; the connection, srv
// and the HTTP server are closed at the end of the test.
func dialTLS(t *testing.T, srv *Server, h http.Handler) *websocket.Conn {
	t.Helper()
	if h == nil {
		h = srv
	}
	hs := httptest.NewTLSServer(h)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	d := websocket.Dialer{HandshakeTimeout: testTimeout, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test server
	c, _, err := d.Dial("wss"+strings.TrimPrefix(hs.URL, "https")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// returningHandler is srv behind a handler that signals on the channel
// each time srv.ServeHTTP has returned (a handshake's handler, say).
func returningHandler(srv *Server) (http.Handler, <-chan struct{}) {
	returned := make(chan struct{}, 8)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		select {
		case returned <- struct{}{}:
		default:
		}
	}), returned
}

// dialHandler serves h over plain HTTP and dials a websocket session on
// it; srv and the HTTP server are closed at the end of the test.
func dialHandler(t *testing.T, srv *Server, h http.Handler) *websocket.Conn {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return (&tserver{t: t, hs: hs, url: hs.URL + "/engine.io/"}).mustDial("EIO=4&transport=websocket")
}
