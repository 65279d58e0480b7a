package socketio

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// serveDrain provisions h and serves its hub's engine directly: Cleanup,
// which the tests call while requests are served, then does not race with
// ServeHTTP reading the handler (in Caddy, Cleanup follows the server's
// shutdown).
func serveDrain(t *testing.T, h *Handler) string {
	t.Helper()
	provision(t, h)
	engine := h.hub.server
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/"
}

// drainClients connects n WebSocket sockets to base and returns a function
// that waits for every connection to be closed by the server and returns
// when each saw its close packet, from start, sorted.
func drainClients(t *testing.T, base string, n int) func(start time.Time, within time.Duration) []time.Duration {
	t.Helper()
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dial(t, base, nil)
		clients[i].ConnectSocket("")
	}
	return func(start time.Time, within time.Duration) []time.Duration {
		t.Helper()
		var mu sync.Mutex
		var at []time.Duration
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() {
				deadline := time.After(within)
				sawClose := false
				for {
					select {
					case f, ok := <-c.Frames():
						if !ok {
							if !sawClose {
								t.Errorf("connection ended without a close packet")
							}
							return
						}
						if f.Data == "1" && !sawClose {
							sawClose = true
							mu.Lock()
							at = append(at, time.Since(start))
							mu.Unlock()
						}
					case <-deadline:
						t.Errorf("connection still open after %v", within)
						return
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(at)
		return at
	}
}

// TestDrainOnDestructSpreadsCloses: a hub dropped by a reload closes its
// sockets over the drain period, in the background, and all of them by its
// end.
func TestDrainOnDestructSpreadsCloses(t *testing.T) {
	testkit.WaitsOnClock(t) // a drain of 1 s
	t.Parallel()            // waits on real timers: overlaps with the others
	const n, drain = 60, time.Second
	h := &Handler{Name: "drain-destruct", Drain: caddy.Duration(drain)}
	base := serveDrain(t, h)
	wait := drainClients(t, base, n)
	httpBase := "http" + strings.TrimPrefix(base, "ws")
	p := testkit.OpenPolling(t, httpBase, nil, nil)
	p.MustPost("40")
	if _, body := p.Get(); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("polling connect: %q", body)
	}
	pollDone := make(chan string, 1)
	go func() {
		_, body, _ := p.TryGet() // held until its close
		pollDone <- body
	}()
	time.Sleep(50 * time.Millisecond) // the GET is waiting

	srv := h.hub.server
	start := time.Now()
	if err := h.Cleanup(); err != nil { // the last handler: the pool destructs the hub
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("Cleanup waited %v for the drain", d)
	}
	at := wait(start, drain+2*time.Second)
	if len(at) != n {
		t.Fatalf("%d of %d sockets saw a close", len(at), n)
	}
	select {
	case body := <-pollDone:
		if body != "1" {
			t.Fatalf("the waiting poll got %q, want the close packet", body)
		}
	case <-time.After(drain + 2*time.Second):
		t.Fatal("the waiting poll was not answered")
	}
	srv.Close() // returns once the background drain has ended
	total := time.Since(start)
	first, last := at[0], at[n-1]
	early := 0
	for _, d := range at {
		if d < drain/4 {
			early++
		}
	}
	t.Logf("%d closes over %v: first %v, median %v, last %v, %d in the first quarter; closed after %v",
		n, drain, first, at[n/2], last, early, total)
	if last < drain/2 || early > n/2 || early == 0 {
		t.Fatalf("closes not spread over the drain: first %v, last %v, %d of %d in the first quarter", first, last, early, n)
	}
	if total > drain+2*time.Second {
		t.Fatalf("drain took %v", total)
	}
}

// TestDrainBlocksForItsPeriod: on exit (onServerShutdown, Destruct) the
// drain is waited for: it ends within the period plus Close's bound, with
// every socket closed.
func TestDrainBlocksForItsPeriod(t *testing.T) {
	t.Parallel() // waits on real timers: overlaps with the others
	const n, drain = 20, 300 * time.Millisecond
	h := &Handler{Name: "drain-blocking", Drain: caddy.Duration(drain)}
	base := serveDrain(t, h)
	wait := drainClients(t, base, n)
	start := time.Now()
	h.hub.server.Drain(h.hub.policy.Load().drain)
	took := time.Since(start)
	at := wait(start, 2*time.Second)
	t.Logf("Drain(%v) of %d sockets returned after %v; last close at %v", drain, n, took, at[len(at)-1])
	if took < drain*(n-1)/n-50*time.Millisecond || took > drain+2*time.Second {
		t.Fatalf("Drain returned after %v", took)
	}
	if len(at) != n {
		t.Fatalf("%d of %d sockets saw a close", len(at), n)
	}
}

func TestDrainZeroClosesAtOnce(t *testing.T) {
	const n = 20
	h := &Handler{Name: "drain-zero"}
	base := serveDrain(t, h)
	wait := drainClients(t, base, n)
	start := time.Now()
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	at := wait(start, 2*time.Second)
	if len(at) != n || at[n-1] > 500*time.Millisecond {
		t.Fatalf("closes %v", at)
	}
}

// TestDrainInBackgroundKeepsWebhook: the webhook of a hub that drains in
// the background is closed after the drain, so every disconnect notice is
// sent.
func TestDrainInBackgroundKeepsWebhook(t *testing.T) {
	t.Parallel()
	const n = 10
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) { return 204, nil })
	h := &Handler{Name: "drain-webhook", Drain: caddy.Duration(300 * time.Millisecond),
		Webhook: &Webhook{Secret: testWebhookSecret, Disconnect: b.url("/disconnect")}}
	base := serveDrain(t, h)
	wait := drainClients(t, base, n)
	srv := h.hub.server
	start := time.Now()
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	wait(start, 3*time.Second)
	srv.Close()
	calls := b.waitCalls(n)
	for _, c := range calls {
		if c.Path != "/disconnect" || c.Body["reason"] != "server shutting down" {
			t.Fatalf("call %s %v", c.Path, c.Body["reason"])
		}
	}
}
