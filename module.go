// Package socketio is a Caddy HTTP handler that serves Socket.IO (Engine.IO
// v4, Socket.IO v5) from inside Caddy: the engine in realtime/, JWT handshake
// authentication in realtime/auth, and connection rules (rooms, relays,
// announcements, event logging) written in the Caddyfile instead of code.
package socketio

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/glob"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/adminui"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults, as the Node reference server has them (socket.io 4.8). The
// engine's values are the only source: these name them for the module.
const (
	DefaultPath           = "/socket.io/"
	DefaultPingInterval   = engineio.DefaultPingInterval
	DefaultPingTimeout    = engineio.DefaultPingTimeout
	DefaultMaxPayload     = engineio.DefaultMaxPayload
	DefaultConnectTimeout = realtime.DefaultConnectTimeout
)

// Auth modes.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
	AuthOff      = "off"
)

// Handler serves Socket.IO clients on one path and passes every other
// request to the next handler.
//
// The connections live in a hub that outlives config reloads: handlers with
// the same name, in this config or the next one, share it, so `caddy reload`
// drops no socket; new settings apply to new connections (engine options)
// or at once (auth and rules).
type Handler struct {
	// Name of the hub. Handlers with the same name share their sockets and
	// rooms, across sites and across reloads. Default: the path.
	Name string `json:"name,omitempty"`

	// Path is the URL path prefix served; other requests go to the next
	// handler. Default: /socket.io/.
	Path string `json:"path,omitempty"`

	// PingInterval is how often the server pings each client. Default: 25s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`

	// PingTimeout is how long a pong may take before the client is
	// considered gone. Default: 20s.
	PingTimeout caddy.Duration `json:"ping_timeout,omitempty"`

	// MaxPayload is the largest message (polling body or WebSocket frame) a
	// client may send, in bytes. Default: 1000000 (1MB).
	MaxPayload int64 `json:"max_payload,omitempty"`

	// Transports lists the enabled transports: polling, websocket.
	// Default: both.
	Transports []string `json:"transports,omitempty"`

	// AllowUpgrades lets polling clients upgrade to WebSocket. Default: true.
	AllowUpgrades *bool `json:"allow_upgrades,omitempty"`

	// AllowEIO3 also accepts socket.io-client 2.x (Engine.IO v3, Socket.IO
	// protocol v4): polling (JSONP included), WebSocket and the upgrade.
	// Such a client is connected to "/" as soon as it opens, as Node does,
	// so the "/" rules run for it whichever namespace it asks for.
	// Default: false (refused with Node's code 5, "Unsupported protocol
	// version").
	AllowEIO3 bool `json:"allow_eio3,omitempty"`

	// Compression configures permessage-deflate (off by default) and the
	// compression of polling responses (on by default, as in Node).
	Compression *Compression `json:"compression,omitempty"`

	// ConnectTimeout closes a connection that joined no namespace in time.
	// Default: 45s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`

	// Origins lists the browser origins (scheme://host[:port]) allowed to
	// connect; "*" allows any. Default: same origin only. Requests without
	// an Origin header (non-browser clients) are always allowed. A page
	// that connects with credentials (withCredentials, as the admin UI
	// does) needs its origin listed: "*" answers it without credentials,
	// which browsers refuse, unless the origin is also listed.
	Origins []string `json:"origins,omitempty"`

	// Drain spreads the closing of the hub's connections over this long,
	// each at a random moment, when Caddy exits or a reload drops the hub,
	// so that the clients do not all reconnect (elsewhere) at once. Caddy
	// exits once it has passed; a reload does not wait for it. Default: 0
	// (all closed at once).
	Drain caddy.Duration `json:"drain,omitempty"`

	// Namespaces lists the namespaces clients may connect to, by name or
	// glob pattern ("*" any run of characters, "?" one), e.g. "/team-*".
	// Default: "/" only.
	Namespaces []string `json:"namespaces,omitempty"`

	// Auth verifies a JWT when a socket connects. Default: off.
	Auth *AuthConfig `json:"auth,omitempty"`

	// Join lists room templates a socket joins when it connects, e.g.
	// "room-userId-{socketio.query.roomNumber}". A template whose
	// placeholders are unknown or empty is skipped.
	Join []string `json:"join,omitempty"`

	// RoomRequests names the events by which a client asks to join or leave
	// a room (argument: the room name; the ack gets {"ok":true,"room":...}
	// or {"ok":false,"error":...}). Joins are allowed only by AllowRooms.
	RoomRequests *RoomRequests `json:"room_requests,omitempty"`

	// AllowRooms lists the room patterns a client may join on request;
	// templates may use placeholders, e.g. "room-{socketio.claims.sub}-*"
	// (values are inserted literally, a "*" in a claim matches only "*").
	// Default: none.
	AllowRooms []string `json:"allow_rooms,omitempty"`

	// Announce is emitted to every socket of each room a socket joins (the
	// new one included); its text may use {socketio.room}.
	Announce *Message `json:"announce,omitempty"`

	// AnnounceLeave is emitted to the other sockets of each room a socket
	// leaves, on request or by disconnecting; its text may use
	// {socketio.room}. Sockets connected before a reload added it are not
	// announced when they disconnect.
	AnnounceLeave *Message `json:"announce_leave,omitempty"`

	// Emit is emitted to a socket once it is connected.
	Emit *Message `json:"emit,omitempty"`

	// Relay lists client events forwarded to the other sockets of the
	// sender's rooms (its own id-room excluded).
	Relay []string `json:"relay,omitempty"`

	// LogEvents lists client events written to Caddy's log ("*" for all),
	// with their arguments truncated to 512 bytes.
	LogEvents []string `json:"log_events,omitempty"`

	// Webhook sends client events, connections and disconnections to a
	// backend as signed HTTP POSTs; an event's reply becomes its ack.
	Webhook *Webhook `json:"webhook,omitempty"`

	// Adapter says where the hub's rooms live: this process (memory, the
	// default) or a Redis cluster shared with other Caddy and Node nodes.
	// It is fixed for the life of a hub: a reload may not change it.
	Adapter *AdapterConfig `json:"adapter,omitempty"`

	// Limits bound what one client may send (event rate, names, rooms,
	// packets per request) and make the server hold (its send backlog).
	// Each has a default that no interactive client notices.
	Limits *Limits `json:"limits,omitempty"`

	// Recovery turns on connection state recovery (socket.io-client
	// 4.6+): a client whose transport drops gets its socket back, with the
	// events it missed, when it returns within the window. Default: off.
	Recovery *Recovery `json:"recovery,omitempty"`

	// Presence tracks which users are online and tells a backend when one
	// comes online or goes offline. Default: off.
	Presence *PresenceConfig `json:"presence,omitempty"`

	// AdminUI serves the @socket.io/admin-ui dashboard's namespace on this
	// hub. Default: none.
	AdminUI *AdminUI `json:"admin_ui,omitempty"`

	hub     *hub
	entry   *hubEntry
	metrics *hubMetrics
	path    string
	match   string // path lowercased, as matchPath compares
	logger  *zap.Logger
	// forwardKey names the cluster forwarder held in forwarders, and
	// forwarder is it (see forward.go); "" and nil for none.
	forwardKey string
	forwarder  engineio.Forwarder
}

// AuthConfig configures JWT verification of the Socket.IO handshake.
type AuthConfig struct {
	// Mode is required (a valid token is needed), optional (a token is
	// verified if present) or off. Default: required.
	Mode string `json:"mode,omitempty"`

	// Secret is the HMAC key (HS256/384/512); placeholders such as
	// {env.JWT_SECRET} are resolved at load.
	Secret string `json:"secret,omitempty"`

	// PublicKey is a PEM public key (RSA, ECDSA or Ed25519), inline or the
	// path of a file; placeholders are resolved at load.
	PublicKey string `json:"public_key,omitempty"`

	// Algorithms lists the accepted JWS algorithms; "none" is refused.
	// Default: HS256 for a secret, RS256 for RSA, ES256/384/512 by ECDSA
	// curve, EdDSA for Ed25519.
	Algorithms []string `json:"algorithms,omitempty"`

	// Issuer, when set, must equal the iss claim.
	Issuer string `json:"issuer,omitempty"`

	// Audience, when set, requires the aud claim to hold one of these.
	Audience []string `json:"audience,omitempty"`

	// Leeway is the tolerated clock skew for exp and nbf. Default: 5s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// TokenFrom lists where the token is looked for, in order: auth[:field]
	// (the CONNECT auth payload), header[:name] (Authorization expects
	// "Bearer <token>"), query:<param>, cookie:<name>.
	// Default: auth:token header:Authorization.
	TokenFrom []string `json:"token_from,omitempty"`
}

// RoomRequests names the join and leave events.
type RoomRequests struct {
	// Join is the event a client sends to join a room it names (a string
	// argument or {"room": "..."}); the room must match allow_rooms.
	// Required.
	Join string `json:"join,omitempty"`

	// Leave is the event a client sends to leave a room it is in (its own
	// id-room excepted). Default: none (no leave requests).
	Leave string `json:"leave,omitempty"`
}

// Message is an event and a text template.
type Message struct {
	// Event is the event name the clients receive; names reserved by
	// Socket.IO (connect, disconnect, ...) are refused. Required.
	Event string `json:"event,omitempty"`

	// Text is the event's one argument, a template that may use the
	// {socketio.*} placeholders and Caddy's global ones.
	Text string `json:"text,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.socketio",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision checks the config, builds the policy and attaches the handler to
// its hub. The hub is the only side effect, and Cleanup undoes it.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.check(); err != nil {
		return err
	}
	h.path = normalizePath(h.Path)
	h.match = strings.ToLower(h.path)
	if h.Name == "" {
		h.Name = h.path
	}
	hm, err := provisionMetrics(ctx, h.Name)
	if err != nil {
		return fmt.Errorf("registering socket.io metrics: %w", err)
	}
	h.metrics = hm
	repl := caddy.NewReplacer()
	pol, err := h.buildPolicy(repl, h.logger)
	if err != nil {
		return err
	}
	if pol.adminUI, err = h.uiConfig(repl); err != nil {
		pol.webhook.close()
		return fmt.Errorf("admin_ui: %w", err)
	}
	if pol.webhook != nil {
		pol.webhook.client.SetObserver(h.metrics.webhookCall)
	}
	setup, err := h.Adapter.resolve(caddy.NewReplacer())
	if err != nil {
		pol.webhook.close()
		return err
	}
	pol.onLimited = h.metrics.onLimited
	if err := h.acquireForwarder(setup); err != nil {
		pol.webhook.close()
		return err
	}
	opts := h.serverOptions()
	val, _, err := hubs.LoadOrNew(h.Name, func() (caddy.Destructor, error) {
		return newHubWith(opts, setup, h.Name, h.logger)
	})
	if err != nil {
		h.releaseForwarder()
		pol.webhook.close()
		return fmt.Errorf("loading socket.io hub %q: %w", h.Name, err)
	}
	hb := val.(*hub)
	if hb.adapterIdentity != setup.identity {
		_, _ = hubs.Delete(h.Name)
		h.releaseForwarder()
		pol.webhook.close()
		return fmt.Errorf("joining socket.io hub %q: %w", h.Name, errAdapterChanged)
	}
	opts.NewAdapter = hb.newAdapter
	hb.advertise.Store(&setup.advertise)
	settings, _ := json.Marshal(h)
	entry, err := hb.push(pol, opts, configIdentity(ctx), string(settings))
	if err != nil {
		_, _ = hubs.Delete(h.Name)
		h.releaseForwarder()
		pol.webhook.close()
		return fmt.Errorf("joining socket.io hub %q: %w", h.Name, err)
	}
	h.hub, h.entry = hb, entry
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(shutdownNotifier); ok {
		srv.RegisterOnShutdown(hb.onServerShutdown)
	}
	return nil
}

// shutdownNotifier is the part of *caddyhttp.Server that Provision uses.
// Going through an interface, not the struct's method (which the compiler
// inlines), keeps the server's whole struct out of this package's compile:
// its field types instantiate about 1,100 generic functions of Caddy's
// OpenTelemetry dependencies here, a third of the package's compile time.
type shutdownNotifier interface{ RegisterOnShutdown(func()) }

// configIdentity tells which config load provisioned a handler: the HTTP
// app at the root of its module lineage is a new value for every load.
// Nil when the lineage is unknown (a bare context in tests).
func configIdentity(ctx caddy.Context) any {
	if mods := ctx.Modules(); len(mods) > 0 {
		return mods[0]
	}
	return nil
}

// Validate reports config errors; Provision has already run the same checks
// (so that it never attaches a broken handler to a hub).
func (h *Handler) Validate() error {
	return h.check()
}

// Cleanup detaches the handler from its hub; the last one closes it.
func (h *Handler) Cleanup() error {
	if h.hub == nil {
		return nil
	}
	h.hub.remove(h.entry)
	_, err := hubs.Delete(h.Name)
	// After the hub's last disconnect notices were queued: when the hub
	// drains in the background, once it has drained.
	h.hub.afterDrain(h.entry.pol.webhook.close)
	h.hub, h.entry = nil, nil
	h.releaseForwarder() // after the hub, whose engine may still be forwarding
	if err != nil {
		return fmt.Errorf("releasing socket.io hub %q: %w", h.Name, err)
	}
	return nil
}

// ServeHTTP serves requests under the path and passes the others on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !matchPath(h.match, r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	r = withIdentity(r, h.hub.policy.Load().identity)
	h.hub.server.ServeHTTP(w, withClientAddr(r))
	return nil
}

// withClientAddr gives the engine the client's address as Caddy determined
// it: behind a proxy listed in trusted_proxies, the client IP from its
// headers, not the proxy's; the socket's handshake address, the webhooks'
// "address" and the connect backoff then see the real client.
func withClientAddr(r *http.Request) *http.Request {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		return r
	}
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == ip {
		return r
	}
	r = r.WithContext(r.Context()) // a shallow copy: the next handler keeps its own
	r.RemoteAddr = net.JoinHostPort(ip, port)
	return r
}

// requestScheme is the scheme the same-origin check compares an Origin
// with: https over TLS, else http, or the X-Forwarded-Proto of a proxy that
// Caddy trusts (trusted_proxies), which terminated TLS in front of it.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "https" || p == "http" {
			return p
		}
	}
	return "http"
}

// normalizePath makes the path absolute with a trailing slash, as Node's
// engine.io does with its path option.
func normalizePath(p string) string {
	if p == "" {
		return DefaultPath
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// matchPath accepts the path itself, with or without its trailing slash,
// and anything below it, comparing them as Caddy's path matcher does: the
// request path cleaned (dot segments resolved, doubled slashes merged; Go
// has already decoded %2e) and case-insensitive. A request is thus served
// only when the matchers in front of the handler (basic_auth /socket.io/*,
// forward_auth, ...) saw it under the same prefix: "/socket.io/../" is
// "/" to them, and so it is to us. prefix is lowercase (see Provision).
func matchPath(prefix, p string) bool {
	p = caddyhttp.CleanPath(strings.ToLower(p), true)
	return strings.HasPrefix(p, prefix) || p == strings.TrimSuffix(prefix, "/")
}

// check validates field values without side effects, one sub-config at a
// time. The Caddyfile parser applies the same rules (checkTransport,
// checkAuthMode, checkAlgorithm, and each block's check at its end), so a
// rule is written once for both paths.
func (h *Handler) check() error {
	return errors.Join(h.checkEngine(), h.Compression.check(), h.Auth.check(), h.checkRules(), h.Webhook.check(), h.Limits.check(), h.Adapter.check(),
		h.Recovery.check(), h.Presence.check(h.Webhook), h.AdminUI.check(h.Namespaces))
}

// check validates the admin_ui block; namespaces are the handler's (its
// namespace must not be one of them, or the application's rules would
// serve it). A hash given as a placeholder is checked once resolved, at
// Provision.
func (a *AdminUI) check(namespaces []string) error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.Username == "" {
		errs = append(errs, errors.New("username is required"))
	}
	switch {
	case a.PasswordHash == "":
		errs = append(errs, errors.New("password_hash is required"))
	case !strings.Contains(a.PasswordHash, "{"):
		if err := adminui.CheckHash(a.PasswordHash); err != nil {
			errs = append(errs, err)
		}
	}
	if err := adminui.CheckNamespace(a.Namespace); err != nil {
		errs = append(errs, err)
	}
	ns := cmp.Or(a.Namespace, adminui.DefaultNamespace)
	if len(namespaces) == 0 {
		namespaces = []string{"/"}
	}
	for _, pat := range namespaces {
		if glob.Match(pat, ns) {
			errs = append(errs, fmt.Errorf("namespace %q is also served by namespaces %q: choose another for the admin UI", ns, pat))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("admin_ui: %w", err)
	}
	return nil
}

// checkEngine validates the engine settings: path, timers, payload,
// transports, origins and namespaces.
func (h *Handler) checkEngine() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.ContainsAny(h.Path, "?#") {
		bad("path %q: must not hold a query or fragment", h.Path)
	} else if strings.ContainsAny(h.Path, "*%{}") {
		bad("path %q: must be a plain path prefix (no *, %% or placeholders)", h.Path)
	} else if p := normalizePath(h.Path); caddyhttp.CleanPath(p, true) != p {
		bad("path %q: must be a clean path (no dot segments or doubled slashes)", h.Path)
	}
	if h.PingInterval < 0 || h.PingTimeout < 0 || h.ConnectTimeout < 0 {
		bad("ping_interval, ping_timeout and connect_timeout must not be negative")
	}
	if h.Drain < 0 {
		bad("drain must not be negative")
	}
	if h.MaxPayload < 0 {
		bad("max_payload must not be negative")
	}
	for _, t := range h.Transports {
		if err := checkTransport(t); err != nil {
			errs = append(errs, err)
		}
	}
	for _, o := range h.Origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad("origins: %q is not an origin (want scheme://host[:port] or *)", o)
		}
	}
	for _, ns := range h.Namespaces {
		if !strings.HasPrefix(ns, "/") {
			bad("namespaces: %q must start with /", ns)
		}
	}
	return errors.Join(errs...)
}

// checkTransport accepts the transport names of the transports list.
func checkTransport(t string) error {
	if t != engineio.TransportPolling && t != engineio.TransportWebSocket {
		return fmt.Errorf("transports: unknown transport %q (want polling or websocket)", t)
	}
	return nil
}

// checkAuthMode accepts the auth modes ("" is required).
func checkAuthMode(m string) error {
	switch m {
	case "", AuthRequired, AuthOptional, AuthOff:
		return nil
	}
	return fmt.Errorf("auth: unknown mode %q (want required, optional or off)", m)
}

// checkAlgorithm refuses "none" in any spelling; the verifier checks the
// rest against the key.
func checkAlgorithm(alg string) error {
	if strings.EqualFold(alg, "none") {
		return errors.New(`auth: algorithm "none" is never accepted`)
	}
	return nil
}

// check validates the auth settings; nil is auth off.
func (a *AuthConfig) check() error {
	if a == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkAuthMode(a.Mode); err != nil {
		errs = append(errs, err)
	}
	if a.Mode == AuthOff {
		if a.Secret != "" || a.PublicKey != "" {
			bad("auth: mode off takes no key")
		}
	} else {
		if a.Secret == "" && a.PublicKey == "" {
			bad("auth: a secret or a public_key is needed")
		}
		if a.Secret != "" && a.PublicKey != "" {
			bad("auth: set either secret or public_key, not both")
		}
	}
	for _, alg := range a.Algorithms {
		if err := checkAlgorithm(alg); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Leeway < 0 {
		bad("auth: leeway must not be negative")
	}
	for _, s := range a.TokenFrom {
		if _, err := auth.ParseSource(s); err != nil {
			bad("auth: token_from: %v", err)
		}
	}
	return errors.Join(errs...)
}

// checkRules validates the connection rules: room requests, messages and
// the events each rule claims (one owner per event, none reserved).
func (h *Handler) checkRules() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if rr := h.RoomRequests; rr != nil && rr.Join == "" && rr.Leave == "" {
		bad("room_requests: needs a join event")
	}
	for _, m := range []*Message{h.Announce, h.AnnounceLeave, h.Emit} {
		if m != nil && m.Event == "" {
			bad("announce, announce_leave and emit need an event name")
		}
	}
	// Every event the module emits or handles must be one the client can
	// receive or send: the client reserves a few names for itself.
	handled := map[string]string{}
	claim := func(event, by string) {
		if parser.IsReservedEvent(event) {
			bad("%s: %q is reserved by Socket.IO", by, event)
		}
		if prev, ok := handled[event]; ok && prev != by {
			bad("%s: event %q is already used by %s", by, event, prev)
		}
		handled[event] = by
	}
	if rr := h.RoomRequests; rr != nil {
		if rr.Join != "" {
			claim(rr.Join, "room_requests")
		}
		if rr.Leave != "" {
			if rr.Leave == rr.Join {
				bad("room_requests: join and leave events must differ")
			}
			claim(rr.Leave, "room_requests")
		}
	}
	for _, e := range h.Relay {
		claim(e, "relay")
	}
	for _, m := range []*Message{h.Announce, h.AnnounceLeave, h.Emit} {
		if m != nil && parser.IsReservedEvent(m.Event) {
			bad("%q is reserved by Socket.IO", m.Event)
		}
	}
	for _, e := range h.LogEvents {
		if e == "" {
			bad("log_events: empty event name")
		}
	}
	return errors.Join(errs...)
}

// serverOptions turns the engine settings into realtime options.
func (h *Handler) serverOptions() realtime.Options {
	o := realtime.Options{
		Engine: engineio.Options{
			PingInterval:    durationOr(h.PingInterval, DefaultPingInterval),
			PingTimeout:     durationOr(h.PingTimeout, DefaultPingTimeout),
			MaxPayload:      cmpOr(h.MaxPayload, DefaultMaxPayload),
			Transports:      slices.Clone(h.Transports),
			DisableUpgrades: h.AllowUpgrades != nil && !*h.AllowUpgrades,
			AllowEIO3:       h.AllowEIO3,
			AllowedOrigins:  slices.Clone(h.Origins),
			RequestScheme:   requestScheme,
			Forwarder:       h.forwarder,
			Logger:          h.logger,
		},
		ConnectTimeout: durationOr(h.ConnectTimeout, DefaultConnectTimeout),
		Logger:         h.logger,
		Recovery:       h.Recovery.options(),
	}
	h.Limits.apply(&o)
	h.Compression.apply(&o)
	if m := h.metrics; m != nil {
		o.Engine.Observer = m.engineObserver()
		o.Observer = m.observer()
		o.OnLimited = m.onLimited
	}
	return o
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

func cmpOr(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
