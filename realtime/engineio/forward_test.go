package engineio

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// stubForwarder records what the engine offers it. It stands in for
// realtime/cluster, whose own tests run the real forwarding.
type stubForwarder struct {
	id    string
	serve func(w http.ResponseWriter, r *http.Request, sid string) bool

	mu      sync.Mutex
	offered []string
	cors    []string // Access-Control-Allow-Origin already set when offered
}

func (f *stubForwarder) NodeID() string { return f.id }

func (f *stubForwarder) ServeForeign(w http.ResponseWriter, r *http.Request, sid string) bool {
	f.mu.Lock()
	f.offered = append(f.offered, sid)
	f.cors = append(f.cors, w.Header().Get("Access-Control-Allow-Origin"))
	f.mu.Unlock()
	if f.serve == nil {
		return false
	}
	return f.serve(w, r, sid)
}

func (f *stubForwarder) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.offered...)
}

func TestSessionIDCarriesNodeID(t *testing.T) {
	for _, tc := range []struct {
		name, id, prefix string
	}{
		{"four characters", "Ab-_", "Ab-_"},
		{"none", "", ""},
		{"too long is ignored", "ABCDEFG", ""},
		{"not base64url is ignored", "a+b/", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTServer(t, Options{Forwarder: &stubForwarder{id: tc.id}})
			seen := map[string]bool{}
			for range 20 {
				sid := ts.handshake()
				if len(sid) != 20 || !strings.HasPrefix(sid, tc.prefix) {
					t.Fatalf("sid %q: want 20 characters starting with %q", sid, tc.prefix)
				}
				for i := 0; i < len(sid); i++ {
					if !isBase64URL(sid[i]) {
						t.Fatalf("sid %q: not base64url", sid)
					}
				}
				if seen[sid] {
					t.Fatalf("sid %q made twice", sid)
				}
				seen[sid] = true
			}
		})
	}
}

func TestUnknownSidOfferedToForwarder(t *testing.T) {
	f := &stubForwarder{id: "node"}
	ts := newTServer(t, Options{Forwarder: f, AllowedOrigins: []string{"*"}})

	// Declined: Node's 400, the CORS headers already set when offered.
	code, _, body := ts.do("GET", "EIO=4&transport=polling&sid=otherAAAAAAAAAAAAAAA", "", http.Header{"Origin": {"https://a.example"}})
	if code != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("declined: %d %q", code, body)
	}
	if got := f.seen(); len(got) != 1 || got[0] != "otherAAAAAAAAAAAAAAA" || f.cors[0] != "*" {
		t.Fatalf("offered %v with CORS %v", got, f.cors)
	}

	// A local session is never offered, nor one this server closed.
	sid := ts.handshake()
	ts.session()
	if code, _ := ts.post(sid, "4hi"); code != 200 {
		t.Fatalf("post to a local session: %d", code)
	}
	if code, _ := ts.post(sid, "1"); code != 200 {
		t.Fatalf("close packet: %d", code)
	}
	// The client's close packet leaves the session lingering (closed, still
	// known) for clientCloseLinger: a request then is answered here (a
	// noop, or 400 once it is gone), never forwarded.
	before := len(f.seen())
	if ts.srv.lookup(sid) == nil {
		t.Fatal("closed session already forgotten")
	}
	if code, body := ts.get(sid); code != 400 && body != "6" {
		t.Fatalf("GET after close: %d %q", code, body)
	}
	if len(f.seen()) != before {
		t.Fatal("a closed local session was offered to the forwarder")
	}

	// Bad requests are refused before the forwarder sees them.
	before = len(f.seen())
	if code, _, _ := ts.do("GET", "EIO=4&transport=bogus&sid=otherAAAAAAAAAAAAAAA", "", nil); code != 400 {
		t.Fatalf("bad transport: %d", code)
	}
	if len(f.seen()) != before {
		t.Fatal("a request with a bad transport was offered")
	}

	// Served: the forwarder's answer is the response.
	f.serve = func(w http.ResponseWriter, r *http.Request, sid string) bool {
		w.WriteHeader(http.StatusTeapot)
		return true
	}
	if code, _, _ := ts.do("POST", "EIO=4&transport=polling&sid=otherBBBBBBBBBBBBBBB", "4x", nil); code != http.StatusTeapot {
		t.Fatalf("served: %d", code)
	}
}

// TestCloseEndsForwardedRequests: Server.Close cancels what the forwarder
// is serving (a forwarded websocket lasts as long as its session on the
// other node) and refuses to forward after.
func TestCloseEndsForwardedRequests(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan struct{})
	f := &stubForwarder{id: "node", serve: func(w http.ResponseWriter, r *http.Request, sid string) bool {
		close(started)
		<-r.Context().Done()
		close(ended)
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}}
	ts := newTServer(t, Options{Forwarder: f})
	res := ts.asyncGet("otherAAAAAAAAAAAAAAA")
	select {
	case <-started:
	case <-time.After(testTimeout):
		t.Fatal("request not offered")
	}
	closed := make(chan struct{})
	go func() {
		ts.srv.Close()
		close(closed)
	}()
	select {
	case <-ended:
	case <-time.After(testTimeout):
		t.Fatal("Close did not end the forwarded request")
	}
	if status, _ := waitResult(t, res); status != "503" {
		t.Fatalf("forwarded request: %s", status)
	}
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
	if !f.forwardRefusedAfterClose(ts) {
		t.Fatal("forwarded after Close")
	}
}

func (f *stubForwarder) forwardRefusedAfterClose(ts *tserver) bool {
	rec := &headerRecorder{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/engine.io/?EIO=4&transport=polling&sid=otherCCCCCCCCCCCCCCC", nil)
	return !ts.srv.forward(rec, req, ts.srv.cfg.Load(), "otherCCCCCCCCCCCCCCC")
}

type headerRecorder struct{ h http.Header }

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(int)             {}
