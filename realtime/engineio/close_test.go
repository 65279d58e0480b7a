package engineio

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestServerClose(t *testing.T) {
	srv := NewServer(Options{PingInterval: time.Minute})
	recs := make(chan *recorder, 8)
	srv.SetOptions(Options{PingInterval: time.Minute, OnSession: func(s *Session) {
		r := newRecorder(s, true)
		s.SetHandler(r)
		recs <- r
	}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ts := &tserver{t: t, srv: srv, hs: hs, url: hs.URL + "/engine.io/", sessions: recs}

	// A polling session with a pending GET, an idle polling session, a
	// websocket session with a queued message and an upgraded one.
	sid := ts.handshake()
	polling := ts.session()
	pending := ts.asyncGet(sid)
	waitFor(t, "pending GET", func() bool { return polling.s.Writable() })
	ts.handshake()
	idle := ts.session()

	ws := ts.mustDial("EIO=4&transport=websocket")
	read(t, ws)
	wsRec := ts.session()

	ts.handshake()
	lingering := ts.session()
	lingering.s.Close(ReasonForcedClose) // waits for a GET that never comes

	sid2 := ts.handshake()
	upRec := ts.session()
	up := upgrade(t, ts, sid2, upRec)
	send(t, up, "5")
	send(t, up, "4x")
	expectText(t, up, "4x")

	if err := wsRec.s.Send(TextMessageString("last")); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	if code, body := waitResult(t, pending); code != "200" || body != "1" {
		t.Errorf("pending GET: %s %q", code, body)
	}
	expectText(t, ws, "4last")
	expectText(t, ws, "1")
	if err := expectClosed(t, ws); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("websocket close: %v", err)
	}
	expectText(t, up, "1")
	expectClosed(t, up)
	for _, r := range []*recorder{polling, idle, wsRec, upRec, lingering} {
		want := ReasonServerShutdown
		if r == lingering {
			want = ReasonForcedClose
		}
		if reason := r.waitClose(t); reason != want {
			t.Errorf("OnClose(%q), want %q", reason, want)
		}
		select {
		case <-r.s.Done():
		default:
			t.Errorf("session %s not done after Close", r.s.ID())
		}
	}
	if n := srv.SessionCount(); n != 0 {
		t.Errorf("SessionCount %d after Close", n)
	}
	code, _, _ := ts.do("GET", "EIO=4&transport=polling", "", nil)
	if code != http.StatusServiceUnavailable {
		t.Errorf("request after Close: %d", code)
	}
	waitNoEngineGoroutines(t)
	srv.Close() // idempotent
}

// Close is bounded even when a client never reads: the writer is stuck in
// a write until the connection is force-closed.
func TestServerCloseStuckClient(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 100 * time.Millisecond
	srv := NewServer(Options{PingInterval: time.Minute, WriteTimeout: time.Minute, MaxBufferedBytesHard: 1 << 30, SlowClientGrace: time.Minute})
	recs := make(chan *recorder, 1)
	srv.SetOptions(Options{PingInterval: time.Minute, WriteTimeout: time.Minute, MaxBufferedBytesHard: 1 << 30, SlowClientGrace: time.Minute,
		OnSession: func(s *Session) { r := newRecorder(s, false); s.SetHandler(r); recs <- r }})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ts := &tserver{t: t, srv: srv, hs: hs, url: hs.URL + "/engine.io/", sessions: recs}
	c := ts.mustDial("EIO=4&transport=websocket")
	read(t, c)
	r := ts.session()
	big := BinaryMessage(make([]byte, 1<<20))
	for i := 0; i < 64; i++ {
		if err := r.s.Send(big); err != nil {
			t.Fatal(err)
		}
	}
	// Close's shutdown bounds are real timers (not the session's clock):
	// this waits out shutdownGrace on purpose.
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > shutdownGrace+forceCloseGrace+time.Second {
		t.Errorf("Close took %v", d)
	}
	waitNoEngineGoroutines(t)
}

func TestNoGoroutinesAfterSessionsEnd(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc})
	ws := ts.mustDial("EIO=4&transport=websocket")
	read(t, ws)
	r1 := ts.session()
	ts.handshake()
	r2 := ts.session()
	// Nobody answers pings: both sessions time out.
	fc.advance(interval + timeout)
	closedNow(t, r1)
	closedNow(t, r2)
	<-r1.s.Done()
	<-r2.s.Done()
	waitNoEngineGoroutines(t)
}

// blockingHandler's OnClose signals that it started, then blocks until
// released.
type blockingHandler struct {
	started  chan string // the reason, buffered 1
	release  chan struct{}
	returned atomic.Bool
}

func (h *blockingHandler) OnMessage([]byte, bool) {}

func (h *blockingHandler) OnClose(reason string) {
	h.started <- reason
	<-h.release
	h.returned.Store(true)
}

// An OnClose that runs off any request counts in Close's wait, which
// returns only after it did: a slow client's, on a goroutine of its own
// (hard limit: Send's caller may hold locks; soft limit: the grace
// timer's), and a ping timeout's, also on a goroutine of its own (the
// heartbeat heap's pass goes on to the sessions due after it).
func TestServerCloseWaitsForOnCloseOffRequests(t *testing.T) {
	payload := strings.Repeat("x", 900)
	for _, tc := range []struct {
		name     string
		opts     Options
		reason   string
		overflow func(t *testing.T, s *Session, fc *fakeClock)
	}{
		{"hard limit", Options{MaxPayload: 1000, MaxBufferedBytes: 1000, MaxBufferedBytesHard: 2000}, ReasonQueueFull,
			func(t *testing.T, s *Session, _ *fakeClock) {
				for i := 0; ; i++ {
					err := s.Send(TextMessageString(payload))
					if err == ErrQueueFull {
						return
					}
					if err != nil || i == 10 {
						t.Fatalf("Send %d: %v, want ErrQueueFull by now", i, err)
					}
				}
			}},
		{"soft limit", Options{MaxPayload: 1000, MaxBufferedBytes: 1000, MaxBufferedBytesHard: 1 << 20, SlowClientGrace: time.Second}, ReasonQueueFull,
			func(t *testing.T, s *Session, fc *fakeClock) {
				for i := 0; i < 2; i++ {
					if err := s.Send(TextMessageString(payload)); err != nil {
						t.Fatalf("Send %d: %v", i, err)
					}
				}
				// The grace timer's OnClose blocks: advance on a goroutine.
				go fc.advance(time.Second)
			}},
		{"ping timeout", Options{PingInterval: time.Second, PingTimeout: time.Second}, ReasonPingTimeout,
			func(_ *testing.T, _ *Session, fc *fakeClock) { go fc.advance(2 * time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &blockingHandler{started: make(chan string, 1), release: make(chan struct{})}
			var release sync.Once
			defer release.Do(func() { close(h.release) }) // on failure, before the cleanup's Close
			sessions := make(chan *Session, 1)
			tc.opts.OnSession = func(s *Session) { s.SetHandler(h); sessions <- s }
			fc := newFakeClock()
			tc.opts.clock = fc
			ts := newTServer(t, tc.opts)
			ts.handshake()
			s := <-sessions

			tc.overflow(t, s, fc)
			select {
			case reason := <-h.started:
				if reason != tc.reason {
					t.Fatalf("OnClose(%q), want %q", reason, tc.reason)
				}
			case <-time.After(testTimeout):
				t.Fatal("OnClose not called")
			}

			closed := make(chan struct{})
			go func() {
				ts.srv.Close()
				close(closed)
			}()
			// Close either returns (wrongly: OnClose still runs) or waits
			// for the engine's goroutines to end (idle set).
			waitFor(t, "Close to return or wait", func() bool {
				select {
				case <-closed:
					return true
				default:
				}
				ts.srv.mu.Lock()
				defer ts.srv.mu.Unlock()
				return ts.srv.idle != nil
			})
			select {
			case <-closed:
				t.Fatal("Close returned while OnClose was still running")
			default:
			}
			release.Do(func() { close(h.release) })
			select {
			case <-closed:
			case <-time.After(testTimeout):
				t.Fatal("Close did not return after OnClose did")
			}
			if !h.returned.Load() {
				t.Fatal("Close returned before OnClose did")
			}
			<-s.Done()
			waitNoEngineGoroutines(t)
		})
	}
}
