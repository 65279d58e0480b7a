package socketio

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/redisadapter"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Metrics, in Caddy's registry (ctx.GetMetricsRegistry, served by the admin
// endpoint's /metrics). Hubs outlive config reloads, and so do their
// metrics: the collectors are made once, here, and every Provision
// registers the same ones in the new config's registry (as caddy-ratelimit
// and reverse_proxy do), so counters keep counting across reloads. The
// gauges are not counted up and down: they read the live hubs of the pool
// when scraped, so a reload can neither reset nor skew them.
//
// Labels are bounded: the hub name (from the config), the namespace (only
// on the gauges: namespaces come from the config's list or patterns), and
// fixed sets of transport, reason, direction, kind, outcome and limit
// values. Never a room or a socket id.
const metricsNamespace, metricsSubsystem = "caddy", "socketio"

func newCounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help,
	}, labels)
}

var (
	mConnections = newCounterVec("connections_total",
		"Engine.IO connections opened, by the transport they opened with.", "hub", "transport")
	mRefused = newCounterVec("handshakes_refused_total",
		"Handshakes refused: Engine.IO handshake requests and Socket.IO CONNECTs, by reason.", "hub", "reason")
	mDisconnects = newCounterVec("disconnects_total",
		"Sockets disconnected, by reason.", "hub", "reason")
	mPackets = newCounterVec("packets_total",
		"Engine.IO message packets received (in) and queued for clients (out).", "hub", "direction")
	mBytes = newCounterVec("bytes_total",
		"Data bytes of the message packets received (in) and queued for clients (out).", "hub", "direction")
	mBroadcasts = newCounterVec("broadcasts_total",
		"Broadcasts: emits to a namespace or to rooms, by the rules, the emit API or the webhooks.", "hub")
	mAckTimeouts = newCounterVec("ack_timeouts_total",
		"Emits whose acknowledgements did not all come in time.", "hub")
	mSlowDropped = newCounterVec("slow_clients_dropped_total",
		"Connections closed because the client did not read its send queue (write queue full).", "hub")
	mLimited = newCounterVec("limited_total",
		"Times a limit acted on a socket, by limit.", "hub", "limit")
	mWebhookRequests = newCounterVec("webhook_requests_total",
		"Webhook calls, by hook and outcome.", "hub", "kind", "outcome")
	mWebhookDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "webhook_duration_seconds",
		Help:    "How long webhook calls took, waiting for a free slot included, by hook.",
		Buckets: prometheus.DefBuckets,
	}, []string{"hub", "kind"})

	mRedisMessages = newCounterVec("redis_messages_total",
		"Redis adapter messages published (out) and applied from other nodes and emitters (in), by kind (broadcast, request, response).", "hub", "direction", "kind")
	mRedisDropped = newCounterVec("redis_dropped_total",
		"Redis adapter messages not applied or not sent, by reason (malformed, too_large, unknown_type, queue_full, unavailable).", "hub", "reason")
	mRedisRequestFailures = newCounterVec("redis_request_failures_total",
		"Requests to the other nodes that ended without every answer (timeout or Redis down), by request.", "hub", "request")
	mRedisUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "redis_up",
		Help: "1 while the Redis adapter's subscriber connection is up, 0 while it is down.",
	}, []string{"hub"})

	mLive = &liveCollector{
		sockets: prometheus.NewDesc(metricsNamespace+"_"+metricsSubsystem+"_sockets",
			"Sockets connected now, by namespace and transport.", []string{"hub", "namespace", "transport"}, nil),
		rooms: prometheus.NewDesc(metricsNamespace+"_"+metricsSubsystem+"_rooms",
			"Rooms now, by namespace (the sockets' own id-rooms not counted).", []string{"hub", "namespace"}, nil),
	}

	allCollectors = []prometheus.Collector{
		mLive, mConnections, mRefused, mDisconnects, mPackets, mBytes, mBroadcasts, mAckTimeouts,
		mSlowDropped, mLimited, mWebhookRequests, mWebhookDuration,
		mRedisMessages, mRedisDropped, mRedisRequestFailures, mRedisUp,
	}
)

// registerMetrics registers the collectors in a config's registry. Another
// handler of the same config has registered them already: that is not an
// error. A name taken by a different collector is.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range allCollectors {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if err != nil && (!errors.As(err, &are) || are.ExistingCollector != c) {
			return err
		}
	}
	return nil
}

// The fixed label values, and the strings of the engine they stand for.
var (
	// Engine.IO error codes (index) of a refused handshake request.
	engineRefusals = [...]string{
		0: "transport_unknown", 1: "session_unknown", 2: "bad_handshake_method",
		3: "bad_request", 4: "forbidden", 5: "unsupported_protocol",
	}
	// Socket.IO CONNECT refusals (see refusalReason).
	connectRefusals = []string{
		"invalid_namespace", "missing_token", "invalid_token", "webhook", "webhook_backoff", "server_error",
		"too_many_namespaces", "sockets_per_subject", "other",
	}
	// Disconnect reasons, as the socket's disconnect handlers get them.
	disconnectReasons = map[string]string{
		"client namespace disconnect": "client_namespace_disconnect",
		"server namespace disconnect": "server_namespace_disconnect",
		engineio.ReasonTransportClose: "transport_close",
		engineio.ReasonTransportError: "transport_error",
		engineio.ReasonPingTimeout:    "ping_timeout",
		engineio.ReasonForcedClose:    "forced_close",
		engineio.ReasonServerShutdown: "server_shutting_down",
		engineio.ReasonParseError:     "parse_error",
		engineio.ReasonQueueFull:      "write_queue_full",
		"forced server close":         "forced_server_close",
		"rate limit exceeded":         "rate_limit_exceeded",
		"server error":                "server_error",
	}
	limitNames = []string{
		realtime.LimitEventRate, realtime.LimitEventRateDisconnect, realtime.LimitEventName, realtime.LimitRooms,
		realtime.LimitConnections, realtime.LimitConnectionsPerAddr, realtime.LimitHandshakeRate,
		realtime.LimitNamespaces, realtime.LimitPendingAcks, limitSubjectName,
	}
	webhookKinds   = []string{"connect", "disconnect", "event"}
	webhookResults = []string{"ok", "refused", "timeout", "unreachable", "status", "bad_reply", "error", "stopping"}
)

// hubMetrics are one hub's metrics, resolved once: an increment on the hot
// path is an atomic add, never a label lookup in a vector. The maps are
// filled at creation and only read after, so they need no lock.
type hubMetrics struct {
	connPolling, connWebSocket prometheus.Counter
	packetsIn, packetsOut      prometheus.Counter
	bytesIn, bytesOut          prometheus.Counter
	broadcasts, ackTimeouts    prometheus.Counter
	slowDropped                prometheus.Counter
	engineRefused              [len(engineRefusals)]prometheus.Counter
	refused                    map[string]prometheus.Counter
	disconnects                map[string]prometheus.Counter // by the engine's reason string
	disconnectOther            prometheus.Counter
	limited                    map[string]prometheus.Counter
	webhookCalls               map[[2]string]prometheus.Counter // kind, outcome
	webhookTimes               map[string]prometheus.Observer
}

// hubMetricsByName keeps each hub name's metrics for the life of the
// process: a hub that goes and comes back under its name counts on.
var hubMetricsByName sync.Map // string -> *hubMetrics

// metricsFor returns the metrics of the hub with that name.
func metricsFor(name string) *hubMetrics {
	if m, ok := hubMetricsByName.Load(name); ok {
		return m.(*hubMetrics)
	}
	m, _ := hubMetricsByName.LoadOrStore(name, newHubMetrics(name))
	return m.(*hubMetrics)
}

func newHubMetrics(name string) *hubMetrics {
	l := prometheus.Labels{"hub": name}
	conns := mConnections.MustCurryWith(l)
	packets, bytes := mPackets.MustCurryWith(l), mBytes.MustCurryWith(l)
	refused, disc, limited := mRefused.MustCurryWith(l), mDisconnects.MustCurryWith(l), mLimited.MustCurryWith(l)
	calls, times := mWebhookRequests.MustCurryWith(l), mWebhookDuration.MustCurryWith(l)
	m := &hubMetrics{
		connPolling:     conns.WithLabelValues(engineio.TransportPolling),
		connWebSocket:   conns.WithLabelValues(engineio.TransportWebSocket),
		packetsIn:       packets.WithLabelValues("in"),
		packetsOut:      packets.WithLabelValues("out"),
		bytesIn:         bytes.WithLabelValues("in"),
		bytesOut:        bytes.WithLabelValues("out"),
		broadcasts:      mBroadcasts.WithLabelValues(name),
		ackTimeouts:     mAckTimeouts.WithLabelValues(name),
		slowDropped:     mSlowDropped.WithLabelValues(name),
		refused:         make(map[string]prometheus.Counter),
		disconnects:     make(map[string]prometheus.Counter),
		disconnectOther: disc.WithLabelValues("other"),
		limited:         make(map[string]prometheus.Counter),
		webhookCalls:    make(map[[2]string]prometheus.Counter),
		webhookTimes:    make(map[string]prometheus.Observer),
	}
	for code, reason := range engineRefusals {
		m.engineRefused[code] = refused.WithLabelValues(reason)
	}
	for _, reason := range connectRefusals {
		m.refused[reason] = refused.WithLabelValues(reason)
	}
	for reason, label := range disconnectReasons {
		m.disconnects[reason] = disc.WithLabelValues(label)
	}
	for _, limit := range limitNames {
		m.limited[limit] = limited.WithLabelValues(limit)
	}
	for _, kind := range webhookKinds {
		for _, outcome := range webhookResults {
			m.webhookCalls[[2]string{kind, outcome}] = calls.WithLabelValues(kind, outcome)
		}
		m.webhookTimes[kind] = times.WithLabelValues(kind)
	}
	return m
}

// engineObserver counts what the Engine.IO layer does.
func (m *hubMetrics) engineObserver() engineio.Observer {
	return engineio.Observer{
		OnOpen: func(transport string) {
			if transport == engineio.TransportWebSocket {
				m.connWebSocket.Inc()
			} else {
				m.connPolling.Inc()
			}
		},
		OnRefused: func(code int) {
			if code >= 0 && code < len(m.engineRefused) {
				m.engineRefused[code].Inc()
			}
		},
		OnReceived: m.received,
		OnSent:     m.sent,
		OnClose: func(reason string) {
			if reason == engineio.ReasonQueueFull {
				m.slowDropped.Inc()
			}
		},
	}
}

// received and sent are the packet counters, the hot path.
func (m *hubMetrics) received(n int) {
	m.packetsIn.Inc()
	m.bytesIn.Add(float64(n))
}

func (m *hubMetrics) sent(packets, n int) {
	m.packetsOut.Add(float64(packets))
	m.bytesOut.Add(float64(n))
}

// observer counts what the Socket.IO layer does.
func (m *hubMetrics) observer() realtime.Observer {
	return realtime.Observer{
		OnRefused: func(_ string, err error) { m.refused[refusalReason(err)].Inc() },
		OnDisconnect: func(_ *realtime.Socket, reason string) {
			if c, ok := m.disconnects[reason]; ok {
				c.Inc()
			} else {
				m.disconnectOther.Inc()
			}
		},
		OnBroadcast:  func(*realtime.Namespace) { m.broadcasts.Inc() },
		OnAckTimeout: func(*realtime.Namespace) { m.ackTimeouts.Inc() },
	}
}

// onLimited is realtime.Options.OnLimited.
func (m *hubMetrics) onLimited(_ *realtime.Socket, limit string) {
	if c, ok := m.limited[limit]; ok {
		c.Inc()
	}
}

// refusalReason names why the module's middlewares (authorize, then
// webhookConnect) refused a CONNECT, from the error the client is sent:
// namespace, token, connect hook. The connect hook's own refusals carry
// the backend's text, so what no earlier rule claims is "webhook".
func refusalReason(err error) string {
	var authErr *auth.Error
	var hookErr *webhook.Error
	switch {
	case errors.Is(err, realtime.ErrInvalidNamespace):
		return "invalid_namespace"
	case errors.Is(err, auth.ErrMissingToken):
		return "missing_token"
	case errors.As(err, &authErr):
		return "invalid_token"
	case errors.Is(err, realtime.ErrTooManyNamespaces):
		return "too_many_namespaces"
	case errors.Is(err, errSubjectLimit):
		return "sockets_per_subject"
	case errors.Is(err, errBackoff):
		return "webhook_backoff"
	case errors.Is(err, errHookRefused), errors.As(err, &hookErr):
		return "webhook"
	case err.Error() == "server error": // a middleware panicked
		return "server_error"
	}
	return "other"
}

// webhookCall counts one webhook call (a webhook.CallObserver).
func (m *hubMetrics) webhookCall(kind string, reply *webhook.Reply, err error, took time.Duration) {
	outcome := "ok"
	var we *webhook.Error
	switch {
	case err == nil && reply != nil && len(reply.Error) > 0:
		outcome = "refused"
	case err == nil:
	case errors.As(err, &we):
		outcome = webhookOutcome(we.Reason)
	default:
		outcome = "error"
	}
	if c, ok := m.webhookCalls[[2]string{kind, outcome}]; ok {
		c.Inc()
	}
	if o, ok := m.webhookTimes[kind]; ok {
		o.Observe(took.Seconds())
	}
}

// webhookOutcome maps a webhook.Error's reason to an outcome label.
func webhookOutcome(reason string) string {
	switch {
	case reason == "timeout":
		return "timeout"
	case reason == "backend unreachable":
		return "unreachable"
	case strings.HasPrefix(reason, "status "):
		return "status"
	case reason == "bad reply", reason == "reply too large":
		return "bad_reply"
	case reason == "server stopping":
		return "stopping"
	}
	return "error" // body too large, bad arguments, bad url: refused before sending
}

// liveCollector reports the gauges from the hubs in the pool, when scraped.
type liveCollector struct {
	sockets, rooms *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sockets
	ch <- c.rooms
}

// Collect implements prometheus.Collector. The pool's lock is held only to
// copy the hubs out.
func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		name string
		hub  *hub
	}
	var list []named
	hubs.Range(func(k, v any) bool {
		if name, ok := k.(string); ok {
			if h, ok := v.(*hub); ok {
				list = append(list, named{name, h})
			}
		}
		return true
	})
	for _, e := range list {
		for _, ns := range e.hub.server.Namespaces() {
			// Counted as they change: a scrape walks no sockets or rooms.
			polling, websocket := ns.Counts()
			rooms := ns.RoomCount()
			name := ns.Name()
			ch <- prometheus.MustNewConstMetric(c.sockets, prometheus.GaugeValue, float64(polling), e.name, name, engineio.TransportPolling)
			ch <- prometheus.MustNewConstMetric(c.sockets, prometheus.GaugeValue, float64(websocket), e.name, name, engineio.TransportWebSocket)
			ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(rooms), e.name, name)
		}
	}
}

// provisionMetrics registers the metrics in the config's registry and
// returns the hub's.
func provisionMetrics(ctx caddy.Context, hubName string) (*hubMetrics, error) {
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return nil, err
	}
	return metricsFor(hubName), nil
}

// redisObserver counts a hub's Redis adapter. The label values are the
// adapter's fixed sets; the counters are resolved on first use of each.
func redisObserver(hubName string) redisadapter.Observer {
	var (
		mu       sync.Mutex
		counters = map[[2]string]prometheus.Counter{}
	)
	// Only mRedisMessages goes through here: its two labels key the map.
	count := func(vec *prometheus.CounterVec, a, b string) {
		mu.Lock()
		c, ok := counters[[2]string{a, b}]
		if !ok {
			c = vec.WithLabelValues(hubName, a, b)
			counters[[2]string{a, b}] = c
		}
		mu.Unlock()
		c.Inc()
	}
	return redisadapter.Observer{
		OnPublish: func(kind string) { count(mRedisMessages, "out", kind) },
		OnReceive: func(kind string) { count(mRedisMessages, "in", kind) },
		OnDrop:    func(reason string) { mRedisDropped.WithLabelValues(hubName, reason).Inc() },
		OnRequestFailed: func(request string) {
			mRedisRequestFailures.WithLabelValues(hubName, request).Inc()
		},
		OnConnection: func(up bool) {
			v := 0.0
			if up {
				v = 1
			}
			mRedisUp.WithLabelValues(hubName).Set(v)
		},
	}
}
