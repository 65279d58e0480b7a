package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newBackend serves handler after checking every call's signature.
func newBackend(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, body []byte)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if err := VerifyRequest([]byte(testSecret), r, body, time.Minute); err != nil {
			t.Errorf("backend: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		handler(w, r, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = []byte(testSecret)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var we *Error
	if !errors.As(err, &we) || we.Reason != reason {
		t.Fatalf("error %v, want reason %q", err, reason)
	}
	if want := "webhook failed: " + reason; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

func TestClientCall(t *testing.T) {
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var b Body
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		if b.Type != "event" || b.Event != "chat" || len(b.Args) != 1 || !b.Ack {
			t.Errorf("body %+v", b)
		}
		_, _ = w.Write([]byte(`{"ack":[12345678901234567890],"actions":[{"join":["a"],"disconnect":true}]}`))
	})
	c := newTestClient(t, Config{})
	reply, err := c.Call(srv.URL+"/hooks/chat?x=1", &Body{Type: "event", Event: "chat", Args: []any{"hi"}, Ack: true, Rooms: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Ack) != "[12345678901234567890]" {
		t.Fatalf("ack %s", reply.Ack)
	}
	if len(reply.Actions) != 1 || reply.Actions[0].Join[0] != "a" || !*reply.Actions[0].Disconnect {
		t.Fatalf("actions %+v", reply.Actions)
	}
}

func TestClientFailures(t *testing.T) {
	var calls atomic.Int32
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		calls.Add(1)
		switch r.URL.Path {
		case "/refuse":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"no"}`))
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`oops`))
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/garbage":
			_, _ = w.Write([]byte(`{"ack":`))
		case "/huge":
			_, _ = w.Write([]byte(`{"ack":["` + strings.Repeat("x", MaxReply) + `"]}`))
		case "/empty":
		}
	})
	c := newTestClient(t, Config{MaxBody: 200})
	body := func() *Body { return &Body{Type: "event", Event: "e", Rooms: []string{}} }

	reply, err := c.Call(srv.URL+"/refuse", body())
	if err != nil || string(reply.Error) != `"no"` {
		t.Fatalf("a refusal with an error status: %+v, %v", reply, err)
	}
	reply, err = c.Call(srv.URL+"/empty", body())
	if err != nil || reply == nil || len(reply.Ack) != 0 {
		t.Fatalf("an empty 200: %+v, %v", reply, err)
	}
	_, err = c.Call(srv.URL+"/500", body())
	wantReason(t, err, "status 500")
	_, err = c.Call(srv.URL+"/redirect", body())
	wantReason(t, err, "status 302")
	_, err = c.Call(srv.URL+"/garbage", body())
	wantReason(t, err, "bad reply")
	_, err = c.Call(srv.URL+"/huge", body())
	wantReason(t, err, "reply too large")

	n := calls.Load()
	big := body()
	big.Args = []any{strings.Repeat("x", 200)}
	_, err = c.Call(srv.URL+"/empty", big)
	wantReason(t, err, "body too large")
	bad := body()
	bad.Args = []any{func() {}}
	_, err = c.Call(srv.URL+"/empty", bad)
	wantReason(t, err, "bad arguments")
	if calls.Load() != n {
		t.Fatal("a body that cannot be sent reached the backend")
	}
	_, err = c.Call("http://127.0.0.1:1/closed", body())
	wantReason(t, err, "backend unreachable")

	if _, err := NewClient(Config{}); err == nil {
		t.Fatal("a client without a secret")
	}
	if _, err := NewClient(Config{Secret: []byte("s"), Timeout: -1}); err == nil {
		t.Fatal("a client with a negative timeout")
	}
}

func TestClientTimeoutAndPools(t *testing.T) {
	t.Parallel() // waits on real timers: overlaps with the others
	free := make(chan struct{})
	entered := make(chan string, 10)
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		entered <- r.URL.Path
		if r.URL.Path == "/slow" {
			select {
			case <-free:
			case <-r.Context().Done():
			}
		}
	})

	// A call the backend does not answer times out.
	c := newTestClient(t, Config{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := c.Call(srv.URL+"/slow", &Body{Type: "event"})
	wantReason(t, err, "timeout")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the timeout took %v", d)
	}
	<-entered

	// One slow event call holds the only event slot: another event waits
	// for it, a connect call has its own pool and goes through.
	c = newTestClient(t, Config{Timeout: 10 * time.Second, MaxConcurrency: 1, ConnectConcurrency: 1})
	slow := make(chan error, 1)
	go func() {
		_, err := c.Call(srv.URL+"/slow", &Body{Type: "event"})
		slow <- err
	}()
	if p := <-entered; p != "/slow" {
		t.Fatalf("entered %s", p)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Call(srv.URL+"/waiting", &Body{Type: "event"})
		waiting <- err
	}()
	if _, err := c.Call(srv.URL+"/connect", &Body{Type: "connect"}); err != nil {
		t.Fatalf("a connect call while the event pool is full: %v", err)
	}
	if p := <-entered; p != "/connect" {
		t.Fatalf("entered %s while the event pool is full", p)
	}
	select {
	case p := <-entered:
		t.Fatalf("entered %s while the event pool is full", p)
	case <-time.After(200 * time.Millisecond):
	}
	close(free)
	if err := <-slow; err != nil {
		t.Fatalf("the slow call: %v", err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the waiting call: %v", err)
	}
	if p := <-entered; p != "/waiting" {
		t.Fatalf("entered %s", p)
	}
}

func TestClientClose(t *testing.T) {
	t.Parallel() // waits on real timers: overlaps with the others
	entered := make(chan struct{})
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		close(entered)
		<-r.Context().Done()
	})
	c := newTestClient(t, Config{Timeout: 30 * time.Second, CloseGrace: 200 * time.Millisecond})
	done := make(chan error, 1)
	if !c.Go(func() {
		_, err := c.Call(srv.URL+"/e", &Body{Type: "disconnect"})
		done <- err
	}) {
		t.Fatal("Go refused before Close")
	}
	<-entered
	start := time.Now()
	c.Close()
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Close took %v, want about the grace", d)
	}
	select {
	case err := <-done:
		wantReason(t, err, "server stopping")
	default:
		t.Fatal("Close returned before the goroutine it waits for")
	}
	if !c.Stopping() {
		t.Fatal("not stopping after Close")
	}
	if c.Go(func() {}) {
		t.Fatal("a closed client still starts goroutines")
	}
	_, err := c.Call(srv.URL+"/e", &Body{Type: "event"})
	wantReason(t, err, "server stopping")
	c.Close()
	(*Client)(nil).Close()
}
