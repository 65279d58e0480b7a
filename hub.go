package socketio

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
)

// hubs holds the Socket.IO servers by hub name. They persist through config
// reloads: a new config's Provision finds the running server, and the old
// config's Cleanup only drops a reference.
var hubs = caddy.NewUsagePool()

// Keys of the values the module stores in a socket's data.
const (
	claimsKey  = "caddy.socketio.claims"
	expiryKey  = "caddy.socketio.expiry"
	authGenKey = "caddy.socketio.authgen" // the hub generation whose policy authorized the socket
)

// hub is one Socket.IO server and the policies of the handlers that use it.
// Handlers and middlewares are registered on the server once; they read the
// active policy on every call.
type hub struct {
	server  *realtime.Server
	policy  atomic.Pointer[policy]
	backoff *connectBackoff // refusals of the connect hook, across reloads
	// generation counts the policies activated; a socket records the one
	// that authorized it, so reverify knows whom to check again.
	generation atomic.Uint64

	mu    sync.Mutex
	stack []*hubEntry // live handlers' settings, most recent last
}

// hubEntry is one handler's settings on the hub.
type hubEntry struct {
	pol  *policy
	opts realtime.Options

	config   any    // the config load that provisioned the handler (configIdentity)
	settings string // the handler's JSON config, to compare handlers of one load
}

func newHub(opts realtime.Options) *hub {
	h := &hub{backoff: newConnectBackoff()}
	h.policy.Store(&policy{logger: zap.NewNop(), namespaces: []string{"/"}, mode: AuthOff})
	h.server = realtime.NewServer(opts)
	h.setupNamespace(h.server.Of("/"))
	h.server.OfFunc(func(name string) bool { return h.policy.Load().allowsNamespace(name) }, h.setupNamespace)
	return h
}

// errHubConflict refuses a config where two handlers with different
// settings share a hub.
var errHubConflict = errors.New("two socketio handlers with different settings share this hub; " +
	"give each its own name (the name subdirective)")

// push activates a handler's settings and remembers them. A hub has one
// policy: two handlers of the same config load that share a hub (two sites
// on the default name, say) must have the same settings, or one site's
// auth would silently apply to the other; that config is refused.
func (h *hub) push(pol *policy, opts realtime.Options, config any, settings string) (*hubEntry, error) {
	e := &hubEntry{pol: pol, opts: opts, config: config, settings: settings}
	h.mu.Lock()
	if config != nil {
		for _, other := range h.stack {
			if other.config == config && other.settings != settings {
				h.mu.Unlock()
				return nil, errHubConflict
			}
		}
	}
	h.stack = append(h.stack, e)
	changed := h.activate(e)
	h.mu.Unlock()
	if changed {
		h.reverify()
	}
	return e, nil
}

// onServerShutdown runs when an HTTP server that carries this hub's
// requests begins to shut down. When Caddy exits, every connection is
// closed now with an Engine.IO close packet, instead of after the server
// waited for the long-polling requests; on a reload, waiting polls are
// answered so the old server can go and the clients poll the new one.
func (h *hub) onServerShutdown() {
	if caddy.Exiting() {
		h.server.Close()
		return
	}
	h.server.ReleasePolls()
}

// remove forgets a handler's settings. When they were the active ones (a
// config that failed to load after this handler was provisioned, or the
// newest of two handlers sharing the hub), the most recent remaining
// settings come back.
func (h *hub) remove(e *hubEntry) {
	h.mu.Lock()
	i := slices.Index(h.stack, e)
	if i < 0 {
		h.mu.Unlock()
		return
	}
	wasTop := i == len(h.stack)-1
	h.stack = slices.Delete(h.stack, i, i+1)
	changed := wasTop && len(h.stack) > 0 && h.activate(h.stack[len(h.stack)-1])
	h.mu.Unlock()
	if changed {
		h.reverify()
	}
}

// activate makes a handler's settings current. It reports whether their
// auth differs from the previous settings' (then push and remove check the
// connected sockets again, with reverify, once the hub's lock is released).
func (h *hub) activate(e *hubEntry) bool {
	prev := h.policy.Swap(e.pol)
	h.server.SetOptions(e.opts)
	if prev != nil && prev.authKey == e.pol.authKey {
		return false
	}
	h.generation.Add(1)
	return true
}

// Destruct closes every connection with an Engine.IO close packet; the pool
// calls it when the last handler using the hub is cleaned up.
func (h *hub) Destruct() error {
	h.server.Close()
	return nil
}

func (h *hub) setupNamespace(ns *realtime.Namespace) {
	ns.Use(h.authorize)
	ns.Use(h.webhookConnect)
	ns.OnConnection(h.connected)
}

// view gathers what placeholders read about a socket.
func view(s *realtime.Socket, p *policy) *socketView {
	v := &socketView{ID: s.ID(), Namespace: s.Namespace().Name(), Hidden: p.hidden}
	if hs := s.Handshake(); hs != nil {
		v.Query, v.Headers, v.Auth = hs.Query, hs.Headers, hs.Auth
	}
	if c, ok := s.Get(claimsKey); ok {
		v.Claims, _ = c.(auth.Claims)
	}
	return v
}

// authorize is the namespace middleware: namespace allowed by the current
// policy, then the token. A refusal becomes the client's connect_error.
func (h *hub) authorize(s *realtime.Socket) error {
	gen := h.generation.Load()
	p := h.policy.Load()
	claims, err := p.check(s)
	if err != nil {
		// The message names the reason only; the token is never logged.
		p.logger.Debug("socket.io connection refused", zap.String("namespace", s.Namespace().Name()),
			zap.String("remote", s.Handshake().Address), zap.String("reason", err.Error()))
		return &realtime.ConnectError{Message: err.Error()}
	}
	s.Set(authGenKey, gen)
	if claims != nil {
		s.Set(claimsKey, claims)
		if exp, ok := claims.Expiry(); ok {
			h.armExpiry(s, exp.Add(p.verifier.Leeway()))
		}
	}
	return nil
}

// check applies the policy's namespace list and token rules to a socket's
// handshake: the claims of a verified token (nil without one, when auth is
// off or optional), or why the socket may not be connected.
func (p *policy) check(s *realtime.Socket) (auth.Claims, error) {
	if !p.allowsNamespace(s.Namespace().Name()) {
		// The namespace exists from an earlier config; this one drops it.
		return nil, errInvalidNamespace
	}
	if p.mode == AuthOff || p.verifier == nil {
		return nil, nil
	}
	hs := s.Handshake()
	tok, _, found := auth.Extract(p.sources, auth.Handshake{Auth: hs.Auth, Headers: hs.Headers, Query: hs.Query})
	if !found {
		if p.mode == AuthOptional {
			return nil, nil
		}
		return nil, auth.ErrMissingToken
	}
	return p.verifier.Verify(tok)
}

var errInvalidNamespace = errors.New("Invalid namespace") //nolint:staticcheck // Node's connect_error text, capitalised

// armExpiry gives a socket the timer that disconnects it when its token
// expires; connected starts it. A socket keeps its first timer.
func (h *hub) armExpiry(s *realtime.Socket, at time.Time) {
	if _, ok := s.Get(expiryKey); ok {
		return
	}
	t := &expiryTimer{at: at}
	s.Set(expiryKey, t)
	// Registered before the socket connects, so no disconnect can slip
	// between the timer's start and its stop.
	s.OnDisconnect(func(*realtime.Socket, string) { t.stop() })
}

// startExpiry starts a socket's expiry timer, if it has one.
func (h *hub) startExpiry(s *realtime.Socket) {
	t, ok := s.Get(expiryKey)
	if !ok {
		return
	}
	t.(*expiryTimer).start(func() {
		h.policy.Load().logger.Debug("socket.io token expired", zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()))
		s.Disconnect(false)
	})
}

// reverify applies the current policy's auth to the sockets authorized
// under an earlier one, after a reload or when a failed load restored the
// previous settings: a socket whose token no longer verifies (a rotated
// secret, a new issuer or audience, auth newly required) or whose namespace
// is no longer served is disconnected, so that rotating a leaked key
// really revokes it. The token stays in the handshake kept in memory; it is
// never logged.
func (h *hub) reverify() {
	gen := h.generation.Load()
	p := h.policy.Load()
	for _, ns := range h.server.Namespaces() {
		for _, s := range ns.Sockets() {
			h.recheck(p, gen, s)
		}
	}
}

// recheck re-verifies one socket if it was authorized before generation gen.
func (h *hub) recheck(p *policy, gen uint64, s *realtime.Socket) {
	if g, ok := s.Get(authGenKey); ok && g.(uint64) >= gen {
		return
	}
	claims, err := p.check(s)
	if err != nil {
		p.logger.Info("socket.io socket disconnected: no longer authorized by the new config",
			zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()),
			zap.String("remote", s.Handshake().Address), zap.String("reason", err.Error()))
		s.Disconnect(false)
		return
	}
	s.Set(authGenKey, gen)
	if claims != nil {
		s.Set(claimsKey, claims)
		if exp, ok := claims.Expiry(); ok {
			h.armExpiry(s, exp.Add(p.verifier.Leeway()))
			h.startExpiry(s)
		}
	}
}

// connected applies the connection rules: join, announce, emit, and the
// event handler.
func (h *hub) connected(s *realtime.Socket) {
	// A reload between this socket's authorize and now was not applied to
	// it by reverify (it was not in its namespace yet): apply it here.
	if gen := h.generation.Load(); func() bool { g, _ := s.Get(authGenKey); v, _ := g.(uint64); return v < gen }() {
		h.recheck(h.policy.Load(), gen, s)
		if !s.Connected() {
			return
		}
	}
	p := h.policy.Load()
	h.startExpiry(s)
	v := view(s, p)
	rooms := p.joinRooms(v)
	for _, room := range rooms {
		if err := s.Join(room); err != nil {
			p.logger.Warn("socket.io join rule not applied", zap.String("namespace", s.Namespace().Name()),
				zap.String("socket", s.ID()), zap.String("room", cutForLog(room, maxLoggedName)), zap.Error(err))
			continue
		}
		h.announce(p, s, v, room)
	}
	if m := p.emit; m != nil {
		_ = s.Emit(m.Event, p.text(v, m.Text))
	}
	s.OnAny(h.onEvent)
}

func (h *hub) announce(p *policy, s *realtime.Socket, v *socketView, room string) {
	m := p.announce
	if m == nil {
		return
	}
	rv := *v
	rv.Room = room
	if err := s.Namespace().To(room).Emit(m.Event, p.text(&rv, m.Text)); err != nil {
		p.logger.Warn("socket.io announcement failed", zap.String("room", room), zap.Error(err))
	}
}

// onEvent handles every client event under the current policy.
func (h *hub) onEvent(s *realtime.Socket, event string, args []any, ack realtime.AckFunc) {
	p := h.policy.Load()
	if p.logs(event) {
		if ce := p.logger.Check(zap.InfoLevel, "socket.io event"); ce != nil {
			ce.Write(zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()),
				zap.String("event", nameForLog(event)), zap.String("args", argsForLog(args)))
		}
	}
	switch {
	case event == p.joinEvent && p.joinEvent != "":
		h.roomRequest(p, s, args, ack, true)
	case event == p.leaveEvent && p.leaveEvent != "":
		h.roomRequest(p, s, args, ack, false)
	case slices.Contains(p.relay, event):
		rooms := slices.DeleteFunc(s.Rooms(), func(r string) bool { return r == s.ID() })
		if len(rooms) > 0 {
			if err := s.To(rooms...).Emit(event, args...); err != nil {
				p.logger.Warn("socket.io relay failed", zap.String("event", nameForLog(event)), zap.Error(err))
			}
		}
		if ack != nil {
			_ = ack()
		}
	default:
		h.webhookEvent(p, s, event, args, ack)
	}
}

// roomRequest answers a client's join or leave request.
func (h *hub) roomRequest(p *policy, s *realtime.Socket, args []any, ack realtime.AckFunc, join bool) {
	reply := func(v map[string]any) {
		if ack != nil {
			_ = ack(v)
		}
	}
	room, _ := firstString(args)
	if room == "" {
		reply(map[string]any{"ok": false, "error": "room name required"})
		return
	}
	if !join {
		if room == s.ID() || !slices.Contains(s.Rooms(), room) {
			reply(map[string]any{"ok": false, "error": "not in room"})
			return
		}
		s.Leave(room)
		reply(map[string]any{"ok": true, "room": room})
		return
	}
	v := view(s, p)
	if !p.roomAllowed(v, room) {
		reply(map[string]any{"ok": false, "error": "room not allowed"})
		return
	}
	if slices.Contains(s.Rooms(), room) {
		// Already in: a no-op, announced once only.
		reply(map[string]any{"ok": true, "room": room})
		return
	}
	if err := s.Join(room); err != nil {
		reply(map[string]any{"ok": false, "error": joinError(err)})
		return
	}
	reply(map[string]any{"ok": true, "room": room})
	h.announce(p, s, v, room)
}

// joinError is what a client is told when a join fails.
func joinError(err error) string {
	switch {
	case errors.Is(err, realtime.ErrTooManyRooms):
		return "too many rooms"
	case errors.Is(err, realtime.ErrRoomNameTooLong):
		return "room name too long"
	}
	return "join failed"
}

// firstString reads the room name: a string argument or {"room": "..."}.
func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	switch a := args[0].(type) {
	case string:
		return a, true
	case map[string]any:
		r, ok := a["room"].(string)
		return r, ok
	}
	return "", false
}

// expiryTimer disconnects a socket when its token expires. start and stop
// may come in either order and from different goroutines.
type expiryTimer struct {
	at      time.Time
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (e *expiryTimer) start(fire func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || e.t != nil {
		return
	}
	e.t = time.AfterFunc(time.Until(e.at), fire)
}

func (e *expiryTimer) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	if e.t != nil {
		e.t.Stop()
	}
}

// Interface guards
var _ caddy.Destructor = (*hub)(nil)
