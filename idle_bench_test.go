package socketio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// BenchmarkIdleSessionMemory reports what one idle WebSocket session costs
// the module's handler with the bench Caddyfile's rules
// (testdata/bench/caddy.Caddyfile: a room from the query, relay, room
// requests, no per-address limits): live heap and goroutine stacks per session, from
// runtime.MemStats over 2000 sessions whose clients run in a child process.
// Run it with -benchtime 1x; it is one measurement, not a timed loop.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 2000
	const idleSettle = 1500 * time.Millisecond // longer than the websocket writer's linger (250 ms)
	for range b.N {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		h := &Handler{
			Name:         "idle-bench",
			Origins:      []string{"*"},
			Join:         []string{"{socketio.query.room}"},
			Relay:        []string{"publish"},
			RoomRequests: &RoomRequests{Join: "join"},
			AllowRooms:   []string{"*"},
			// Every client is 127.0.0.1, as in the bench Caddyfile.
			Limits: &Limits{EventRate: -1, EventBurst: -1, MaxConnectionsPerIP: -1, HandshakeRate: -1},
		}
		ts := serveQuiet(b, ctx, h)
		base := testkit.TakeMemSnapshot()
		stop := testkit.IdleClients(b, "ws"+strings.TrimPrefix(ts.URL, "http")+
			"/socket.io/?EIO=4&transport=websocket&room=r1", n, true)
		// Waits out the websocket writer's linger on purpose: an idle
		// session holds no writer, and the measurement is of idle ones.
		time.Sleep(idleSettle)
		testkit.TakeMemSnapshot().PerSession(base, n).Report(b)
		testkit.HeapProfile(b)
		stop()
		if err := h.Cleanup(); err != nil {
			b.Errorf("Cleanup: %v", err)
		}
		ts.Close()
		cancel()
	}
}

// serveQuiet provisions h in ctx with every log off (a debug line per
// session would be most of a benchmark's run) and serves it.
func serveQuiet(b *testing.B, ctx caddy.Context, h *Handler) *httptest.Server {
	b.Helper()
	if err := h.Provision(ctx); err != nil {
		b.Fatalf("Provision: %v", err)
	}
	h.entry.pol.logger = zap.NewNop()
	opts := h.serverOptions()
	opts.Logger, opts.Engine.Logger = zap.NewNop(), zap.NewNop()
	h.hub.server.SetOptions(opts)
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
}

// TestIdleClientsChild is the client process of BenchmarkIdleSessionMemory.
func TestIdleClientsChild(t *testing.T) { testkit.IdleClientsChild(t) }

// BenchmarkMetricsScrape reports what the sockets and rooms gauges cost a
// scrape while the hub holds 2000 idle WebSocket sockets (each op collects
// them once): the gauges are kept as sockets come, upgrade and go, so a
// scrape should cost the same with 2 or 2 million sockets.
func BenchmarkMetricsScrape(b *testing.B) {
	const n = 2000
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{
		Name:    "scrape-bench",
		Origins: []string{"*"},
		Join:    []string{"{socketio.query.room}"},
		Limits:  &Limits{EventRate: -1, EventBurst: -1, MaxConnectionsPerIP: -1, HandshakeRate: -1},
	}
	ts := serveQuiet(b, ctx, h)
	defer ts.Close()
	stop := testkit.IdleClients(b, "ws"+strings.TrimPrefix(ts.URL, "http")+
		"/socket.io/?EIO=4&transport=websocket&room=r1", n, true)
	defer stop()
	defer func() { _ = h.Cleanup() }()
	ch := make(chan prometheus.Metric, 64)
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		mLive.Collect(ch)
	}
	b.StopTimer()
	close(ch)
	<-done
}
