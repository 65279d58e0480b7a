package socketio

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/redispresence"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Presence defaults.
const (
	// DefaultPresenceBy names a user by its token's subject.
	DefaultPresenceBy = "{socketio.claims.sub}"
	// DefaultPresenceGrace is the grace without recovery; with it, the
	// grace defaults to recovery's max_disconnection_duration, so that a
	// session that can still be recovered is never reported offline.
	DefaultPresenceGrace = realtime.DefaultPresenceGrace
	// DefaultPresenceMaxSize bounds the users tracked, in bytes.
	DefaultPresenceMaxSize = realtime.DefaultPresenceMaxBytes
)

// presenceShards is how many FIFOs carry the presence hooks: the hooks of
// one user always take the same one (so its online and offline arrive in
// order), and a slow call delays only the users of its shard.
const presenceShards = 8

// presenceQueue bounds the hooks waiting in one shard. Over it a hook is
// dropped and logged: a backend that cannot keep up must not make the
// server hold an unbounded backlog.
const presenceQueue = 4096

// PresenceConfig tracks who is online: a user (by default the "sub" claim
// of its token) is online from its first socket, in any namespace of the
// hub, until its last socket has been gone for the grace. Each change is
// posted once, signed like the other webhooks, and the emit API's
// presence endpoint lists the users of a room. With the redis adapter it
// spans every node on the Redis (realtime/redispresence).
type PresenceConfig struct {
	// Webhook is the URL told {"type":"online"|"offline","user":...}
	// (header X-SocketIO-Hook: online or offline), signed with the
	// webhook secret (a webhook block is needed). Default: no hook; the
	// emit API still lists who is online.
	Webhook string `json:"webhook,omitempty"`

	// By names the user of a socket: a template of {socketio.claims.*}
	// and {http.*} placeholders (what the token or the site's own
	// authentication vouch for; query, header and auth values are the
	// client's to choose and are refused). A socket whose template has an
	// unknown or empty placeholder is not tracked. Default:
	// {socketio.claims.sub}.
	By string `json:"by,omitempty"`

	// Grace is how long a user whose last socket is gone stays online.
	// Default: recovery's max_disconnection_duration when recovery is on,
	// else 15s.
	Grace caddy.Duration `json:"grace,omitempty"`

	// MaxSize bounds the memory of the users tracked, in bytes (each costs
	// its name plus about 160 bytes); a new user beyond it is not tracked
	// (logged) until others go offline. Default: 16MiB.
	MaxSize int64 `json:"max_size,omitempty"`
}

// check validates the presence settings; nil is presence off. With the
// redis adapter, presence spans the nodes on its Redis.
func (pc *PresenceConfig) check(wh *Webhook) error {
	if pc == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("presence: "+format, args...)) }
	if pc.Webhook != "" {
		if err := checkWebhookURL(pc.Webhook); err != nil {
			bad("webhook: %v", err)
		}
		if wh == nil {
			bad("webhook: the hooks are signed with the webhook secret: add a webhook block")
		}
	}
	if pc.By != "" {
		keys := templateKeys(pc.By)
		if len(keys) == 0 {
			bad("by %q: names every socket's user the same: use {socketio.claims.*} or {http.*} placeholders", pc.By)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "socketio.claims.") && !strings.HasPrefix(k, identityPrefix) {
				bad("by: {%s} is chosen by the client or is not a user: use {socketio.claims.*} or {http.*}", k)
			}
		}
	}
	if pc.Grace < 0 || pc.MaxSize < 0 {
		bad("grace and max_size must not be negative")
	}
	return errors.Join(errs...)
}

// templateKeys lists the placeholders of a template, without braces.
func templateKeys(tpl string) []string {
	var keys []string
	for rest := tpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return keys
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return keys
		}
		if i == 0 || rest[i-1] != '\\' {
			keys = append(keys, rest[i+1:i+j])
		}
		rest = rest[i+j+1:]
	}
}

// presencePolicy is one config's compiled presence.
type presencePolicy struct {
	url  string // "" without a hook
	by   string
	opts realtime.PresenceOptions
}

// build resolves the hook's placeholders and the defaults.
func (pc *PresenceConfig) build(repl *caddy.Replacer, rec *Recovery) (*presencePolicy, error) {
	if pc == nil {
		return nil, nil
	}
	pp := &presencePolicy{by: pc.By, opts: realtime.PresenceOptions{
		Grace:    time.Duration(pc.Grace),
		MaxBytes: pc.MaxSize,
	}}
	if pp.by == "" {
		pp.by = DefaultPresenceBy
	}
	if pp.opts.Grace <= 0 && rec.enabled() {
		pp.opts.Grace = rec.window()
	}
	if pc.Webhook != "" {
		pp.url = repl.ReplaceKnown(pc.Webhook, "")
		if err := checkResolvedURL(pp.url); err != nil {
			return nil, fmt.Errorf("presence: webhook: %w", err)
		}
	}
	return pp, nil
}

// presenceTracker is what a hub's presence runs on: realtime.Presence on
// one node, redispresence.Tracker across the nodes of the redis adapter.
type presenceTracker interface {
	realtime.PresenceTracker
	SetOptions(realtime.PresenceOptions)
	Len() int
}

// presence is a hub's tracker and the FIFOs of its hooks. It outlives
// reloads with the hub, so a reload reports nobody offline.
type presence struct {
	tracker presenceTracker
	seed    maphash.Seed
	queues  [presenceShards]webhook.Queue
	full    sync.Once // the "tracker full" warning is logged once
}

// applyPresence makes a policy's presence settings current: the tracker
// is made by the first policy that has presence, and keeps its users when
// a later one drops it (it then tracks no new socket). h.mu is held.
func (h *hub) applyPresence(p *policy) {
	if p.presence == nil {
		return
	}
	pr := h.presence
	if pr == nil {
		pr = &presence{seed: maphash.MakeSeed()}
	}
	opts := p.presence.opts
	opts.OnOnline = func(user string) { h.presenceHook(pr, "online", user) }
	opts.OnOffline = func(user string) { h.presenceHook(pr, "offline", user) }
	if pr.tracker == nil {
		pr.tracker = h.newPresenceTracker(p, opts)
		h.presence = pr
		return
	}
	pr.tracker.SetOptions(opts)
}

// newPresenceTracker is a single node's tracker for the memory adapter; with
// the redis adapter, one on its Redis (its own connection, the adapter's
// key), so that users are counted over every node.
func (h *hub) newPresenceTracker(p *policy, opts realtime.PresenceOptions) presenceTracker {
	if h.redisOptions == nil {
		return realtime.NewPresence(opts)
	}
	ro := *h.redisOptions
	tr, err := redispresence.New(redispresence.Options{
		Client:          redis.NewClient(&ro),
		Key:             h.redisKey,
		PresenceOptions: opts,
		Logger:          p.logger,
	})
	if err != nil { // only without a client, which cannot be
		p.logger.Error("presence across nodes not started; counting this node only", zap.Error(err))
		return realtime.NewPresence(opts)
	}
	return tr
}

// closePresence ends the hub's presence, for a hub that is going away: a
// single node's tracker reports every user still online offline; one on
// Redis writes this node's sockets off and leaves the rest to the nodes
// that remain (cluster.md, Presence across nodes).
func (h *hub) closePresence() {
	h.mu.Lock()
	pr := h.presence
	h.mu.Unlock()
	if pr != nil {
		pr.tracker.Close()
	}
}

// presenceUser is the user a socket counts for under policy p.
func (p *policy) presenceUser(s *realtime.Socket) (string, bool) {
	if p.presence == nil {
		return "", false
	}
	return expandRoom(newReplacer(view(s, p), nil), p.presence.by)
}

// trackPresence counts a connected socket for its user until it
// disconnects.
func (h *hub) trackPresence(p *policy, s *realtime.Socket) {
	h.mu.Lock()
	pr := h.presence
	h.mu.Unlock()
	if pr == nil {
		return
	}
	user, ok := p.presenceUser(s)
	if !ok {
		return
	}
	if !pr.tracker.Add(user) {
		pr.full.Do(func() {
			p.logger.Warn("presence: user not tracked (name over 256 bytes, or max_size reached); logged once",
				zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()))
		})
		return
	}
	s.SetPresence(user)
	var once sync.Once
	untrack := func() { once.Do(func() { pr.tracker.Remove(user) }) }
	s.OnDisconnect(func(*realtime.Socket, string) { untrack() })
	if !s.Connected() {
		untrack() // it disconnected before the handler was in place
	}
}

// presenceHook queues one online or offline call on the user's shard. It
// runs under the tracker's lock, so it never blocks.
func (h *hub) presenceHook(pr *presence, kind, user string) {
	p := h.policy.Load()
	if p.presence == nil || p.presence.url == "" || p.webhook == nil {
		return
	}
	w, url := p.webhook, p.presence.url
	body := &webhook.Body{Type: kind, User: user}
	q := &pr.queues[maphash.String(pr.seed, user)%presenceShards]
	job := webhook.Job{
		Client: w.client,
		Run: func() {
			if _, err := w.client.Call(url, body); err != nil {
				w.logPresenceFailure(kind, err)
			}
		},
		Fail: func(err error) { w.logPresenceFailure(kind, err) },
	}
	if !q.Push(job, presenceQueue) {
		w.logPresenceFailure(kind, &webhook.Error{Reason: "queue full"})
	}
}

func (w *webhooks) logPresenceFailure(kind string, err error) {
	if ce := w.logger.Check(zap.WarnLevel, "presence webhook failed"); ce != nil {
		ce.Write(zap.String("type", kind), zap.Error(errors.Unwrap(err)), zap.String("result", err.Error()))
	}
}

// socketPresence is the user a listed socket counts for, or "": this
// node's sockets and the other nodes' (their fetchSockets answers carry
// it).
func (h *hub) socketPresence(info realtime.SocketInfo) string {
	return info.Presence
}
