package socketio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Tests of metrics.go: the values a scrape of Caddy's registry shows
// during traffic, and after a reload.

// metricValue finds one series in gathered families: the metric named name
// whose labels include want. ok is false when there is no such series.
func metricValue(mfs []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// series is one expected value of expectMetrics: the series named name
// with the label pairs labels (name, value, name, value...) is want.
type series struct {
	want   float64
	name   string
	labels []string
}

func (w series) labelMap() map[string]string {
	l := map[string]string{}
	for i := 0; i+1 < len(w.labels); i += 2 {
		l[w.labels[i]] = w.labels[i+1]
	}
	return l
}

// expectMetrics fails unless every series has exactly its value, within a
// second (the engine counts some things on its own goroutines). One scrape
// checks them all: a scrape of a test process, which holds the series of
// every hub its tests made, is not cheap.
func expectMetrics(t *testing.T, reg prometheus.Gatherer, want ...series) {
	t.Helper()
	var mfs []*dto.MetricFamily
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if mfs, err = reg.Gather(); err != nil {
			t.Fatalf("gathering metrics: %v", err)
		}
		done := true
		for _, w := range want {
			if got, ok := metricValue(mfs, w.name, w.labelMap()); !ok || got != w.want {
				done = false
				break
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range want {
		got, ok := metricValue(mfs, w.name, w.labelMap())
		if !ok {
			t.Errorf("%s%v: no such series", w.name, w.labelMap())
		} else if got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labelMap(), got, w.want)
		}
	}
}

// provisionIn provisions h in a context of its own (its own registry, as
// each config load has) and serves it; the base URLs are returned.
func provisionIn(t *testing.T, h *Handler) (reg *prometheus.Registry, httpBase, wsBase string) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return ctx.GetMetricsRegistry(), srv.URL + "/socket.io/", "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/"
}

func metricsHandler(name string) *Handler {
	return &Handler{
		Name:       name,
		Auth:       &AuthConfig{Secret: testSecret},
		Join:       []string{"room-{socketio.query.room}"},
		MaxPayload: 1000,
		// A client that does not read is dropped after about 4 KB.
		Limits: &Limits{SendBuffer: 2000, SendBufferMax: 4000},
	}
}

var metricsRuns atomic.Int32

func TestMetricsScrapeAndReload(t *testing.T) {
	t.Parallel()
	// Counters live as long as the process: a name of its own per run
	// (go test -count=N) starts them at zero.
	hubName := "metrics-scrape-" + itoa(int(metricsRuns.Add(1)))
	const m = "caddy_socketio_"
	first := metricsHandler(hubName)
	reg, httpBase, wsBase := provisionIn(t, first)
	firstCleaned := false
	t.Cleanup(func() {
		if !firstCleaned {
			_ = first.Cleanup()
		}
	})
	auth := connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "u"})})

	// Two WebSocket sockets in two rooms, one polling socket in none.
	a := dial(t, wsBase, url.Values{"room": {"1"}})
	a.ConnectSocket(auth)
	b := dial(t, wsBase, url.Values{"room": {"2"}})
	b.ConnectSocket(auth)
	p := testkit.OpenPolling(t, httpBase, nil, nil)
	p.MustPost("40" + auth)

	// Refusals: no token, a bad token, an unknown transport.
	c := dial(t, wsBase, nil)
	c.Send("40")
	c.ExpectPrefix(`44{"message":"missing token"`)
	c.Close()
	d := dial(t, wsBase, nil)
	d.Send("40" + connectPayload(t, map[string]any{"token": "garbage"}))
	d.ExpectPrefix(`44{"message":"invalid token`)
	d.Close()
	if resp, err := http.Get(httpBase + "?EIO=4&transport=flash"); err == nil {
		resp.Body.Close()
	}

	expectMetrics(t, reg,
		series{2, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "websocket"}},
		series{1, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "polling"}},
		series{2, m + "rooms", []string{"hub", hubName, "namespace", "/"}},
		series{4, m + "connections_total", []string{"hub", hubName, "transport", "websocket"}},
		series{1, m + "connections_total", []string{"hub", hubName, "transport", "polling"}},
		series{1, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "missing_token"}},
		series{1, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "invalid_token"}},
		series{1, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "transport_unknown"}},
		series{0, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "invalid_namespace"}},
	)
	// The five CONNECTs the server read; the three CONNECT replies (two
	// refusals) went out over WebSocket, one is queued for polling.
	expectMetrics(t, reg,
		series{5, m + "packets_total", []string{"hub", hubName, "direction", "in"}},
		series{5, m + "packets_total", []string{"hub", hubName, "direction", "out"}},
	)

	// An event name over the limit is dropped, and counted.
	a.Send(`42["` + strings.Repeat("e", 300) + `"]`)
	expectMetrics(t, reg,
		series{1, m + "limited_total", []string{"hub", hubName, "limit", "event_name"}},
		series{0, m + "limited_total", []string{"hub", hubName, "limit", "rooms"}},
	)

	// The polling client never polls: its queue fills and it is dropped.
	ns := first.hub.server.Of("/")
	big := strings.Repeat("x", 900)
	for _, s := range ns.Sockets() {
		if s.Transport() == "polling" {
			for range 6 {
				_ = s.Emit("big", big)
			}
		}
	}
	expectMetrics(t, reg,
		series{1, m + "slow_clients_dropped_total", []string{"hub", hubName}},
		series{1, m + "disconnects_total", []string{"hub", hubName, "reason", "write_queue_full"}},
		series{0, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "polling"}},
	)

	// Nobody answers an emit with acks: one timeout, one broadcast.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ns.Timeout(50*time.Millisecond).EmitWithAck(ctx, "question"); err != realtime.ErrAckTimeout {
		t.Fatalf("EmitWithAck: %v, want a timeout", err)
	}
	expectMetrics(t, reg,
		series{1, m + "ack_timeouts_total", []string{"hub", hubName}},
		series{1, m + "broadcasts_total", []string{"hub", hubName}},
	)

	// A reload: a new config (its own registry) provisions the same hub,
	// then the old one is cleaned up. Gauges stay exact, counters go on.
	next := metricsHandler(hubName)
	reg2, _, wsBase2 := provisionIn(t, next)
	t.Cleanup(func() { _ = next.Cleanup() })
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	firstCleaned = true
	expectMetrics(t, reg2,
		series{2, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "websocket"}},
		series{0, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "polling"}},
		series{2, m + "rooms", []string{"hub", hubName, "namespace", "/"}},
		series{4, m + "connections_total", []string{"hub", hubName, "transport", "websocket"}},
		series{1, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "missing_token"}},
		series{1, m + "slow_clients_dropped_total", []string{"hub", hubName}},
		series{1, m + "ack_timeouts_total", []string{"hub", hubName}},
	)

	// Traffic after the reload counts on from there, in the new registry.
	e := dial(t, wsBase2, url.Values{"room": {"1"}})
	e.ConnectSocket(auth)
	expectMetrics(t, reg2,
		series{5, m + "connections_total", []string{"hub", hubName, "transport", "websocket"}},
		series{3, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "websocket"}},
		series{2, m + "rooms", []string{"hub", hubName, "namespace", "/"}},
	)
	a.Close()
	expectMetrics(t, reg2,
		series{1, m + "disconnects_total", []string{"hub", hubName, "reason", "transport_close"}},
		series{2, m + "sockets", []string{"hub", hubName, "namespace", "/", "transport", "websocket"}},
	)
}

// TestMetricsRegisterTwice: a second handler of one config registers the
// same collectors without an error; another collector under one of their
// names is refused.
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(reg); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "caddy_socketio_broadcasts_total", Help: "x"}, []string{"hub"}))
	if err := registerMetrics(other); err == nil {
		t.Fatal("a name taken by another collector was accepted")
	}
}

// TestMetricsRefusalReasons pins the reason of each refusal the module's
// middlewares make.
func TestMetricsRefusalReasons(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{realtime.ErrInvalidNamespace, "invalid_namespace"},
		{&realtime.ConnectError{Message: realtime.ErrInvalidNamespace.Error(), Cause: realtime.ErrInvalidNamespace}, "invalid_namespace"},
		{&realtime.ConnectError{Message: auth.ErrMissingToken.Error(), Cause: auth.ErrMissingToken}, "missing_token"},
		{&realtime.ConnectError{Message: "invalid token: token expired", Cause: &auth.Error{Reason: "token expired"}}, "invalid_token"},
		{&realtime.ConnectError{Message: errRetryLater, Cause: errBackoff}, "webhook_backoff"},
		{refusal([]byte(`{"message":"go away"}`)), "webhook"},
		{&realtime.ConnectError{Message: "webhook failed: timeout", Cause: &webhook.Error{Reason: "timeout"}}, "webhook"},
		// The reason comes from the cause, never from the client-facing
		// text: a middleware of another kind is not counted as a webhook.
		{&realtime.ConnectError{Message: "missing token"}, "other"},
		{&realtime.ConnectError{Message: "too many connections"}, "other"},
	}
	for _, tc := range cases {
		if got := refusalReason(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

// The hot path: counting a packet allocates nothing.
func TestMetricsPacketAllocs(t *testing.T) {
	hm := metricsFor("metrics-allocs")
	obs := hm.engineObserver()
	if n := testing.AllocsPerRun(1000, func() { obs.OnSent(1, 100); obs.OnReceived(100) }); n != 0 {
		t.Fatalf("%v allocations per packet counted", n)
	}
}

func BenchmarkMetricsPacket(b *testing.B) {
	obs := metricsFor("metrics-bench").engineObserver()
	b.ReportAllocs()
	for b.Loop() {
		obs.OnSent(1, 100)
		obs.OnReceived(100)
	}
}

// TestMetricsWebhook: the webhook calls by kind and outcome, their
// durations, and a refusal of the connect hook.
func TestMetricsWebhook(t *testing.T) {
	hubName := "metrics-webhook-" + itoa(int(metricsRuns.Add(1)))
	b := newHookBackend(t, func(c hookCall, _ *http.Request) (int, any) {
		switch c.Path {
		case "/connect":
			if q, _ := c.Body["query"].(map[string]any); q["ok"] == "1" {
				return 200, map[string]any{}
			}
			return 200, map[string]any{"error": "nope"}
		case "/event":
			return 500, nil
		}
		return 204, nil
	})
	base, _, _ := serveWebhook(t, hubName, &Webhook{
		Events:  []WebhookRoute{{URL: b.url("/event"), Match: []string{"ask"}}},
		Connect: b.url("/connect"),
	})
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	const m = "caddy_socketio_"
	c := dial(t, base, url.Values{"ok": {"1"}})
	c.ConnectSocket("")
	c.Send(`421["ask"]`)
	c.Expect(`431[{"error":"webhook failed: status 500"}]`)
	r := dial(t, base, nil)
	r.Send("40")
	r.Expect(`44{"message":"nope"}`)

	expectMetrics(t, reg,
		series{1, m + "webhook_requests_total", []string{"hub", hubName, "kind", "connect", "outcome", "ok"}},
		series{1, m + "webhook_requests_total", []string{"hub", hubName, "kind", "connect", "outcome", "refused"}},
		series{1, m + "webhook_requests_total", []string{"hub", hubName, "kind", "event", "outcome", "status"}},
		series{2, m + "webhook_duration_seconds", []string{"hub", hubName, "kind", "connect"}},
		series{1, m + "handshakes_refused_total", []string{"hub", hubName, "reason", "webhook"}},
	)
}
