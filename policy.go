package socketio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
	emit       *Message
	relay      []string
	logAll     bool
	logEvents  []string
	webhook    *webhooks // nil without a webhook; closed by the handler's Cleanup
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
		emit:       h.Emit,
		relay:      slices.Clone(h.Relay),
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
				logger.Warn("socket.io auth secret is shorter than 32 bytes; RFC 7518 asks for a key as long as the hash (HS256: 32 bytes)")
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
	if h.Webhook != nil {
		w, err := h.Webhook.build(repl, logger)
		if err != nil {
			return nil, err
		}
		w.tokens = p.sources
		p.webhook = w
	}
	return p, nil
}

// allowsNamespace reports whether a namespace is served.
func (p *policy) allowsNamespace(name string) bool {
	for _, pat := range p.namespaces {
		if globMatch(pat, name) {
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
	repl := newReplacer(v, globEscape)
	for _, tpl := range p.allowRooms {
		pat, ok := expandRoom(repl, tpl)
		if ok && globMatch(pat, room) {
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
