package engineio

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults taken from the Node reference server (engine.io 6.x), so that a
// client tuned for Node behaves the same against this server.
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultMaxPayload     = 1_000_000 // Node maxHttpBufferSize
	DefaultUpgradeTimeout = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second

	// Send queue bounds (Node has none; these keep a slow client from
	// growing server memory). See Options.MaxBufferedBytes.
	DefaultMaxBufferedBytes     = 1 << 20 // 1 MiB
	DefaultMaxBufferedBytesHard = 8 << 20 // 8 MiB
	DefaultSlowClientGrace      = 5 * time.Second

	// DefaultMaxPayloadPackets bounds the packets of one polling POST.
	DefaultMaxPayloadPackets = 10_000

	// Deprecated: MaxQueuedMessages is ignored; the queue is bounded in
	// bytes (DefaultMaxBufferedBytes, DefaultMaxBufferedBytesHard).
	DefaultMaxQueuedMessages = 1024
)

// QueueEntryOverhead is what every queued message counts on top of its
// encoded size against MaxBufferedBytes and MaxBufferedBytesHard, so that
// a flood of tiny messages is bounded too (it is about what a queue entry
// and its Message cost in memory).
const QueueEntryOverhead = 64

// Transport names as they appear in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Options configure a Server. Zero values mean Node engine.io defaults.
type Options struct {
	// PingInterval is how often the server sends a ping. Default: 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong. Default: 20s.
	PingTimeout time.Duration
	// MaxPayload bounds one polling POST body and one websocket frame, in
	// bytes; it is announced in the handshake. It also bounds the encoded
	// payload of one polling GET response (which always carries at least
	// one packet; the rest waits for the next poll). Default: 1000000.
	MaxPayload int64
	// MaxPayloadPackets bounds the packets in one polling POST: a payload
	// with more is refused with HTTP 400 {"code":3,"message":"Bad
	// request"} before any of them is delivered, and the session is closed
	// ("parse error"). Default: 10000.
	MaxPayloadPackets int
	// Transports lists the enabled transports, "polling" and/or
	// "websocket"; order is irrelevant. Default: both.
	Transports []string
	// DisableUpgrades keeps polling sessions on polling. Default: false.
	DisableUpgrades bool
	// DisableParking keeps a goroutine blocked in the read of every
	// websocket, instead of parking idle plain-TCP websockets in the
	// server's poller (Linux; see park.go). For measurements. Default:
	// false.
	DisableParking bool
	// DisableDirectWrites sends every websocket write through the
	// session's writer goroutine, instead of writing straight to a plain
	// TCP socket from the goroutine that sends when no writer runs
	// (direct.go). For measurements and tests. Default: false.
	DisableDirectWrites bool
	// UpgradeTimeout bounds a polling to websocket upgrade; a websocket
	// that has not completed it in time is dropped and the session stays
	// on polling. Default: 10s.
	UpgradeTimeout time.Duration
	// AllowedOrigins: nil/empty = same origin only (an Origin header is
	// refused unless its scheme is RequestScheme(r) and its host[:port] is
	// r.Host; a default port, :80 or :443, may be left out on either side;
	// schemes other than http and https never match); "*" allows any
	// origin; otherwise exact origins like "https://example.com"
	// (scheme://host[:port]). Requests without an Origin header are always
	// allowed (non-browser clients). An allowed origin is echoed with
	// Access-Control-Allow-Credentials: true, which pages connecting with
	// credentials need; under "*" only the origins also listed are, the
	// others get "*" without credentials.
	AllowedOrigins []string
	// RequestScheme returns the scheme, "http" or "https", under which the
	// client reached the server, for the same-origin check. Set it behind a
	// TLS-terminating proxy. Default: "https" if r.TLS != nil, else "http".
	RequestScheme func(r *http.Request) string
	// AllowRequest, when set, may refuse a handshake (no sid): HTTP 403
	// {"code":4,"message":<err.Error() or "Forbidden">}.
	AllowRequest func(r *http.Request) error
	// MaxBufferedBytes is the soft bound of one session's outgoing
	// backlog: messages queued and not yet written to the network, each
	// counting its encoded size (a text message's type byte and data, a
	// binary message's bytes) plus QueueEntryOverhead. A backlog may pass
	// it during a burst; a session whose backlog stays over it
	// continuously for SlowClientGrace is closed with reason "write queue
	// full". The grace restarts whenever the backlog falls back to the
	// bound, so a client that keeps reading is not dropped by a burst it
	// is draining. SendVolatile drops messages that would pass it.
	// Default: 1 MiB.
	MaxBufferedBytes int64
	// MaxBufferedBytesHard is the hard cap of the backlog: a Send that
	// would pass it queues nothing, returns ErrQueueFull and closes the
	// session at once ("write queue full"). It is raised to at least
	// MaxBufferedBytes and to MaxPayload+QueueEntryOverhead (one message of
	// the largest size a client accepts always fits). A stalled session
	// holds at most this much, plus one polling response. Default: 8 MiB.
	MaxBufferedBytesHard int64
	// SlowClientGrace is how long a backlog may stay over
	// MaxBufferedBytes before the session is closed as slow. Default: 5s.
	SlowClientGrace time.Duration
	// Deprecated: MaxQueuedMessages is ignored. The queue is bounded in
	// bytes: see MaxBufferedBytes, MaxBufferedBytesHard and
	// SlowClientGrace.
	MaxQueuedMessages int
	// WriteTimeout is the deadline of one websocket write. Default: 10s.
	WriteTimeout time.Duration
	// AllowEIO3 accepts Engine.IO v3 clients (socket.io-client 2.x): a
	// handshake whose EIO is not "4" (missing, "3", anything else, as in
	// Node) opens a v3 session instead of being refused with code 5. See
	// eio3.go for what v3 changes. Default: false.
	AllowEIO3 bool
	// Compression configures permessage-deflate (off by default) and the
	// compression of polling responses (on by default, as in Node).
	Compression Compression
	// Logger receives the server's logs, under the name "engineio"
	// (Logger.Named). Default: zap.NewNop().
	Logger *zap.Logger
	// OnSession is called once per new session, before any message is
	// delivered; it must call s.SetHandler. Sessions without a handler
	// drop their messages.
	OnSession func(s *Session)
	// Observer is told what the server does, for counting (metrics).
	Observer Observer
	// Forwarder, when set, serves the requests of sessions held by other
	// nodes of a cluster, and its node id starts every session id (see
	// forward.go). Default: none (an unknown sid gets 400).
	Forwarder Forwarder

	// clock drives the engine's timers; nil is the time package. Only
	// this package's tests set it (see clock.go).
	clock clock
}

// Observer receives counts of what the engine does, for metrics. Every
// field is optional. Each is called synchronously, on the goroutine that
// did the work (with no engine lock held), and must be cheap and never
// block: an atomic add, not a map lookup under a lock. A session keeps the
// Observer of the options it was opened under.
type Observer struct {
	// OnOpen: a session was opened over transport, "polling" or
	// "websocket".
	OnOpen func(transport string)
	// OnRefused: a handshake request (one without a sid) was refused with
	// an Engine.IO error code: 0 transport unknown, 2 bad handshake method,
	// 3 bad request, 4 forbidden, 5 unsupported protocol version.
	OnRefused func(code int)
	// OnReceived: the client sent one message packet holding n bytes of
	// data (the packet type not counted); called before it is delivered.
	OnReceived func(n int)
	// OnSent: packets message packets holding n bytes of data in all were
	// queued for the client (Send, or SendVolatile when it queued them).
	OnSent func(packets, n int)
	// OnClose: a session began closing, with its reason (the Reason*
	// constants, or what Session.Close was given).
	OnClose func(reason string)
}

// config is Options with defaults applied and lookups precomputed; one
// config is shared, read-only, by every session created while it was
// current.
type config struct {
	Options
	polling, websocket bool
	anyOrigin          bool
	origins            map[string]struct{} // lowercased, without trailing slash
	// Open packets differ only by sid: these hold what follows the sid,
	// rendered once per config.
	openPolling   []byte
	openWebSocket []byte
	// beats runs the heartbeat of this config's sessions (heartbeat.go).
	beats *beats
}

func newConfig(o Options) *config {
	c := &config{Options: o}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.MaxPayloadPackets <= 0 {
		c.MaxPayloadPackets = DefaultMaxPayloadPackets
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.MaxBufferedBytesHard <= 0 {
		c.MaxBufferedBytesHard = DefaultMaxBufferedBytesHard
	}
	c.MaxBufferedBytesHard = max(c.MaxBufferedBytesHard, c.MaxBufferedBytes, c.MaxPayload+QueueEntryOverhead)
	if c.SlowClientGrace <= 0 {
		c.SlowClientGrace = DefaultSlowClientGrace
	}
	if c.RequestScheme == nil {
		c.RequestScheme = defaultRequestScheme
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Compression = c.Compression.withDefaults()
	if c.clock == nil {
		c.clock = realClock{}
	}
	c.beats = &beats{clock: c.clock}
	c.Logger = c.Logger.Named("engineio")
	if len(c.Transports) == 0 {
		c.polling, c.websocket = true, true
	}
	for _, t := range c.Transports {
		switch t {
		case TransportPolling:
			c.polling = true
		case TransportWebSocket:
			c.websocket = true
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			c.anyOrigin = true
			continue
		}
		if c.origins == nil {
			c.origins = make(map[string]struct{})
		}
		c.origins[normalizeOrigin(o)] = struct{}{}
	}
	upgrades := "[]"
	if c.websocket && !c.DisableUpgrades {
		upgrades = `["websocket"]`
	}
	c.openPolling = openTail(upgrades, c)
	c.openWebSocket = openTail("[]", c)
	return c
}

// openTail renders the part of the open packet after the sid. The five
// keys are exactly those the protocol test suites assert.
func openTail(upgrades string, c *config) []byte {
	b := []byte(`","upgrades":`)
	b = append(b, upgrades...)
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, c.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, c.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, c.MaxPayload, 10)
	return append(b, '}')
}

// openPacket builds the open packet "0{...}" for a session id (the id is
// base64url, so it needs no JSON escaping).
func (c *config) openPacket(sid string, websocket bool) []byte {
	tail := c.openPolling
	if websocket {
		tail = c.openWebSocket
	}
	b := make([]byte, 0, len(`0{"sid":"`)+len(sid)+len(tail))
	b = append(b, `0{"sid":"`...)
	b = append(b, sid...)
	return append(b, tail...)
}

func (c *config) transportEnabled(t string) bool {
	switch t {
	case TransportPolling:
		return c.polling
	case TransportWebSocket:
		return c.websocket
	}
	return false
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(o, "/"))
}

// validOriginChars reports whether the Origin header holds only the bytes
// Node accepts in a header value (tab, printable ASCII, 0x80-0xff).
func validOriginChars(o string) bool {
	for i := 0; i < len(o); i++ {
		b := o[i]
		if b != '\t' && (b < 0x20 || b == 0x7f) {
			return false
		}
	}
	return true
}

// originAllowed applies AllowedOrigins to a request. A request without an
// Origin header does not come from a browser page and is always allowed.
func (c *config) originAllowed(r *http.Request, origin string) bool {
	if origin == "" {
		return true
	}
	if !validOriginChars(origin) {
		return false
	}
	if c.anyOrigin {
		return true
	}
	if len(c.origins) == 0 {
		return sameOrigin(origin, c.RequestScheme(r), r.Host)
	}
	_, ok := c.origins[normalizeOrigin(origin)]
	return ok
}

func defaultRequestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// sameOrigin reports whether origin is scheme://host, the origin of a
// request with that scheme and Host header. Only http and https origins
// can match: a page of any other scheme is never this server's.
func sameOrigin(origin, scheme, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	scheme = strings.ToLower(scheme)
	if u.Scheme != scheme || (scheme != "http" && scheme != "https") {
		return false
	}
	return strings.EqualFold(withoutDefaultPort(u.Host, scheme), withoutDefaultPort(host, scheme))
}

// withoutDefaultPort drops the scheme's default port from host:port.
func withoutDefaultPort(host, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return host[:len(host)-len(":80")]
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return host[:len(host)-len(":443")]
	}
	return host
}
