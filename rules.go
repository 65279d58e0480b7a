package socketio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/glob"
	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/adminui"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
)

// policy is one config's rules, compiled. The hub holds the current one in an
// atomic pointer, and every connection and event reads it there, so a reload
// changes the rules for connected sockets too.
type policy struct {
	logger     *zap.Logger
	namespaces []string
	mode       string
	verifier   *auth.Verifier
	sources    []auth.Source
	hidden     []string // auth payload fields holding the token: never placeholders
	join       []string
	joinEvent  string
	leaveEvent string
	allowRooms []string
	maxRoom    int // longest room name a client may request
	announce   *Message
	leaving    *Message // announce_leave
	emit       *Message
	relay      []string
	logAll     bool
	logEvents  []string
	webhook    *webhooks       // nil without a webhook; closed by the handler's Cleanup
	adminUI    *adminui.Config // nil without admin_ui (adminui.go)
	// identity lists the {http.*} placeholders captured at each handshake:
	// those the templates use, and the user id for a webhook.
	identity []string
	drain    time.Duration // how long closing the hub's connections is spread over
	// maxPerSubject bounds the sockets of one token subject (0: none);
	// onLimited counts its refusals (the hub's metrics; nil in tests).
	maxPerSubject int
	onLimited     func(*realtime.Socket, string)
	// presence is nil without a presence block (presence.go); resume is
	// set when recovered sockets skip the middlewares (recovery.go).
	presence *presencePolicy
	resume   bool
	// authKey fingerprints what decides whether a connected socket stays
	// authorized (namespaces, mode, resolved keys, claims checks, token
	// sources): a reload that changes it re-verifies every socket.
	authKey string
}

// buildPolicy compiles the rules; repl resolves {env.*} in key material.
func (h *Handler) buildPolicy(repl *caddy.Replacer, logger *zap.Logger) (*policy, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	p := &policy{
		logger:     logger,
		namespaces: slices.Clone(h.Namespaces),
		mode:       AuthOff,
		join:       slices.Clone(h.Join),
		allowRooms: slices.Clone(h.AllowRooms),
		maxRoom:    h.Limits.maxRoomName(),
		announce:   h.Announce,
		leaving:    h.AnnounceLeave,
		emit:       h.Emit,
		relay:      slices.Clone(h.Relay),
		drain:      time.Duration(h.Drain),

		maxPerSubject: h.Limits.maxPerSubject(),
	}
	if len(p.namespaces) == 0 {
		p.namespaces = []string{"/"}
	}
	if rr := h.RoomRequests; rr != nil {
		p.joinEvent, p.leaveEvent = rr.Join, rr.Leave
	}
	for _, e := range h.LogEvents {
		if e == "*" {
			p.logAll = true
		} else {
			p.logEvents = append(p.logEvents, e)
		}
	}
	var key []byte // the resolved secret or PEM, for authKey
	if a := h.Auth; a != nil && a.Mode != AuthOff {
		p.mode = a.Mode
		if p.mode == "" {
			p.mode = AuthRequired
		}
		cfg := auth.Config{
			Algorithms: a.Algorithms,
			Issuer:     repl.ReplaceKnown(a.Issuer, ""),
			Audience:   a.Audience,
			Leeway:     auth.DefaultLeeway,
		}
		if a.Leeway > 0 {
			cfg.Leeway = time.Duration(a.Leeway)
		}
		if a.Secret != "" {
			secret := repl.ReplaceKnown(a.Secret, "")
			if secret == "" {
				return nil, errors.New("auth: secret is empty after resolving placeholders (is the environment variable set?)")
			}
			if len(secret) < 32 {
				logger.Warn("auth secret is shorter than 32 bytes; RFC 7518 asks for a key as long as the hash (HS256: 32 bytes)")
			}
			cfg.Secret = []byte(secret)
			key = cfg.Secret
		} else {
			pemData, err := loadKey(repl, a.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
			key = pemData
			if cfg.PublicKey, err = auth.ParsePublicKeyPEM(pemData); err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
		}
		v, err := auth.NewVerifier(cfg)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		p.verifier = v
		p.sources = auth.DefaultSources
		if len(a.TokenFrom) > 0 {
			p.sources = nil
			for _, spec := range a.TokenFrom {
				src, err := auth.ParseSource(spec)
				if err != nil {
					return nil, fmt.Errorf("auth: %w", err)
				}
				p.sources = append(p.sources, src)
			}
		}
		for _, s := range p.sources {
			if s.Kind == auth.SourceAuth {
				p.hidden = append(p.hidden, s.Name)
			}
		}
	}
	p.authKey = authFingerprint(p.namespaces, p.mode, h.Auth, key)
	p.identity = h.identityKeys()
	if h.Webhook != nil {
		w, err := h.Webhook.build(repl, logger)
		if err != nil {
			return nil, err
		}
		w.tokens = p.sources
		w.recovery = h.Recovery.enabled()
		p.webhook = w
	}
	p.resume = h.Recovery.skips()
	pp, err := h.Presence.build(repl, h.Recovery)
	if err != nil {
		p.webhook.close()
		return nil, err
	}
	p.presence = pp
	return p, nil
}

// allowsNamespace reports whether a namespace is served.
func (p *policy) allowsNamespace(name string) bool {
	for _, pat := range p.namespaces {
		if glob.Match(pat, name) {
			return true
		}
	}
	return false
}

// logs reports whether an event is logged.
func (p *policy) logs(event string) bool {
	return p.logAll || slices.Contains(p.logEvents, event)
}

// joinRooms evaluates the join templates for a socket: skipped are templates
// with an unknown or empty placeholder and names shaped like a socket id.
func (p *policy) joinRooms(v *socketView) []string {
	if len(p.join) == 0 {
		return nil
	}
	repl := newReplacer(v, nil)
	var rooms []string
	for _, tpl := range p.join {
		room, ok := expandRoom(repl, tpl)
		if !ok || looksLikeSocketID(room) || slices.Contains(rooms, room) {
			continue
		}
		rooms = append(rooms, room)
	}
	return rooms
}

// roomAllowed reports whether a client may join room on request.
func (p *policy) roomAllowed(v *socketView, room string) bool {
	if room == "" || len(room) > p.maxRoom || looksLikeSocketID(room) {
		return false
	}
	repl := newReplacer(v, glob.Escape)
	for _, tpl := range p.allowRooms {
		pat, ok := expandRoom(repl, tpl)
		if ok && glob.Match(pat, room) {
			return true
		}
	}
	return false
}

// text evaluates a message template for a socket.
func (p *policy) text(v *socketView, tpl string) string {
	return expandText(newReplacer(v, nil), tpl)
}

// authFingerprint is a digest of the auth settings, with the key as
// resolved (so a rotated {env.JWT_SECRET} or a replaced PEM file changes
// it); the key material is hashed, never kept beside the verifier.
func authFingerprint(namespaces []string, mode string, a *AuthConfig, key []byte) string {
	d := sha256.New()
	enc := json.NewEncoder(d)
	_ = enc.Encode(namespaces)
	_ = enc.Encode(mode)
	if a != nil && mode != AuthOff {
		_ = enc.Encode(key)
		_ = enc.Encode([]any{a.Issuer, a.Algorithms, a.Audience, a.Leeway, a.TokenFrom})
	}
	return hex.EncodeToString(d.Sum(nil))
}

// view gathers what placeholders read about a socket.
func view(s *realtime.Socket, p *policy) *socketView {
	v := &socketView{ID: s.ID(), Namespace: s.Namespace().Name(), Hidden: p.hidden}
	if hs := s.Handshake(); hs != nil {
		v.Query, v.Headers, v.Auth = hs.Query, hs.Headers, hs.Auth
		v.Identity = identityOf(hs.Request)
	}
	v.Claims = stateOf(s).getClaims()
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
		p.logger.Debug("connection refused", zap.String("namespace", s.Namespace().Name()),
			zap.String("remote", s.Handshake().Address), zap.String("reason", err.Error()))
		return &realtime.ConnectError{Message: err.Error(), Cause: err}
	}
	if err := h.limitSubject(s, p, claims); err != nil {
		return err
	}
	stateOf(s).authorized(claims, gen)
	if claims != nil {
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
		return nil, realtime.ErrInvalidNamespace
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

// armExpiry gives a socket the timer that disconnects it when its token
// expires; connected starts it. A socket keeps its first timer.
func (h *hub) armExpiry(s *realtime.Socket, at time.Time) {
	st := stateOf(s)
	st.mu.Lock()
	if st.expiry != nil {
		st.mu.Unlock()
		return
	}
	t := &expiryTimer{at: at}
	st.expiry = t
	st.mu.Unlock()
	// Registered before the socket connects, so no disconnect can slip
	// between the timer's start and its stop.
	s.OnDisconnect(func(*realtime.Socket, string) { t.stop() })
}

// startExpiry starts a socket's expiry timer, if it has one.
func (h *hub) startExpiry(s *realtime.Socket) {
	st := stateOf(s)
	st.mu.Lock()
	t := st.expiry
	st.mu.Unlock()
	if t == nil {
		return
	}
	t.start(func() {
		h.policy.Load().logger.Debug("token expired", zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()))
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
	st, ours := s.Local().(*socketState)
	if !ours || !st.authorizedBefore(gen) {
		// Checked under gen already, or not admitted by the module's
		// middlewares (an admin UI socket): not the policy's to check.
		return
	}
	claims, err := p.check(s)
	if err != nil {
		p.logger.Info("socket disconnected: no longer authorized by the new config",
			zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()),
			zap.String("remote", s.Handshake().Address), zap.String("reason", err.Error()))
		s.Disconnect(false)
		return
	}
	st.authorized(claims, gen)
	if claims != nil {
		if exp, ok := claims.Expiry(); ok {
			h.armExpiry(s, exp.Add(p.verifier.Leeway()))
			h.startExpiry(s)
		}
	}
}

// joinRule is the namespace's last middleware: the socket joins the rooms
// of the join rule before the client gets CONNECT, as a Node server's
// connection handler joins before anything else can run. A message sent
// to such a room by anyone once the client is connected reaches it.
func (h *hub) joinRule(s *realtime.Socket) error {
	p := h.policy.Load()
	v, _ := h.connectView(s, p)
	h.joinByRule(p, s, v, false)
	return nil
}

// joinByRule joins the rooms of p's join rule and returns those the socket
// is in (joining a room it is in already is a no-op). A room that cannot be
// joined (too long, too many) is logged, unless quiet (joinRule has logged
// it already), and skipped: the socket still connects, as it always has.
func (h *hub) joinByRule(p *policy, s *realtime.Socket, v *socketView, quiet bool) []string {
	rooms := p.joinRooms(v)
	joined := rooms[:0]
	for _, room := range rooms {
		if err := s.Join(room); err != nil {
			if !quiet {
				p.logger.Warn("join rule not applied", zap.String("namespace", s.Namespace().Name()),
					zap.String("socket", s.ID()), zap.String("room", utf8cut.Cut(room, maxLoggedName)), zap.Error(err))
			}
			continue
		}
		joined = append(joined, room)
	}
	return joined
}

// connected applies the connection rules that follow CONNECT: announce,
// emit, and the event handler (join ran in joinRule).
func (h *hub) connected(s *realtime.Socket) {
	// The state is looked up at the end: resume replaces it.
	defer func() { stateOf(s).dropConnectView() }()
	if s.Recovered() && h.policy.Load().resume {
		h.resume(s)
	}
	// A reload between this socket's authorize and now was not applied to
	// it by reverify (it was not in its namespace yet): apply it here.
	if gen := h.generation.Load(); stateOf(s).authorizedBefore(gen) {
		h.recheck(h.policy.Load(), gen, s)
		if !s.Connected() {
			return
		}
	}
	p := h.policy.Load()
	h.startExpiry(s)
	// joinRule joined these already (a no-op here, and what failed there
	// was logged there), except for a socket recovered without the
	// middlewares, or after a reload in between.
	v, joined := h.connectView(s, p) // made by joinRule, if it ran
	for _, room := range h.joinByRule(p, s, v, joined) {
		h.announce(p, s, v, room)
	}
	if m := p.emit; m != nil {
		_ = s.Emit(m.Event, p.text(v, m.Text))
	}
	if p.leaving != nil {
		// Runs before the socket leaves its rooms; the policy then current
		// decides.
		s.OnDisconnect(func(s *realtime.Socket, _ string) {
			p := h.policy.Load()
			v := view(s, p)
			for _, room := range s.Rooms() {
				if room != s.ID() {
					h.announceLeave(p, s, v, room)
				}
			}
		})
	}
	h.trackPresence(p, s)
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
		broadcastFailed(p.logger, "announcement failed", err, zap.String("room", room))
	}
}

// announceLeave tells the other sockets of a room that s left it.
func (h *hub) announceLeave(p *policy, s *realtime.Socket, v *socketView, room string) {
	m := p.leaving
	if m == nil {
		return
	}
	rv := *v
	rv.Room = room
	if err := s.Namespace().To(room).Except(s.ID()).Emit(m.Event, p.text(&rv, m.Text)); err != nil {
		broadcastFailed(p.logger, "leave announcement failed", err, zap.String("room", room))
	}
}

// onEvent handles every client event under the current policy.
func (h *hub) onEvent(s *realtime.Socket, event string, args []any, ack realtime.AckFunc) {
	p := h.policy.Load()
	if p.logs(event) {
		if ce := p.logger.Check(zap.InfoLevel, "client event"); ce != nil {
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
				broadcastFailed(p.logger, "relay failed", err, zap.String("event", nameForLog(event)))
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
		h.announceLeave(p, s, view(s, p), room)
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

// looksLikeSocketID reports whether a room name has the shape of a socket id
// (20 characters of base64url). Every socket sits in a room named after its
// id, so a template or request that produced such a name could let one
// client listen to another's private room; those names are refused.
func looksLikeSocketID(room string) bool {
	if len(room) != 20 {
		return false
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// loadKey resolves placeholders in a public_key value and reads it: inline
// PEM, or else the path of a PEM file.
func loadKey(repl *caddy.Replacer, value string) ([]byte, error) {
	v := repl.ReplaceKnown(value, "")
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	return data, nil
}
