package socketio

import (
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Recovery defaults, those of the engine (Node's for the window).
const (
	DefaultMaxDisconnectionDuration = realtime.DefaultMaxDisconnectionDuration
	DefaultRecoveryBuffer           = realtime.DefaultRecoveryBufferBytes
	DefaultRecoverySessions         = realtime.DefaultRecoverySessionBytes
)

// Recovery turns on connection state recovery (socket.io-client 4.6+): a
// socket whose transport drops keeps its session (id, rooms, data) for
// max_disconnection_duration, and its client, reconnecting within it, gets
// the same socket back with every event it missed (socket.recovered is
// true). Events sent with an ack, and volatile ones, are not replayed.
// With recovery on, every other event carries an offset as its last
// argument, as with Node.
type Recovery struct {
	// MaxDisconnectionDuration is how long a dropped socket's session, and
	// each event, is kept. Default: 2m.
	MaxDisconnectionDuration caddy.Duration `json:"max_disconnection_duration,omitempty"`

	// SkipMiddlewares connects a recovered socket without checking its
	// token again nor asking the connect hook (which is told instead, as a
	// notice with "recovered": true; an "error" in its reply disconnects
	// the socket). When false, a recovered socket is authorized and asked
	// for as a new one (the connect hook gets "recovered": true).
	// Default: true, as Node.
	SkipMiddlewares *bool `json:"skip_middlewares,omitempty"`

	// Buffer bounds the events kept for replay, per namespace, in bytes
	// (with the redis adapter, the namespace's stream in Redis).
	// When it is full the oldest events go, and a client whose last event
	// was among them gets a new session (recovered false). Default: 8MiB.
	Buffer int64 `json:"buffer,omitempty"`

	// Sessions bounds the sessions kept, per namespace, in bytes; when
	// full, the oldest are forgotten. Default: 8MiB. With the redis
	// adapter, sessions are kept in Redis and expire with the window;
	// this bound does not apply there (one session is at most 64KiB).
	Sessions int64 `json:"sessions,omitempty"`
}

// enabled reports whether recovery is on; nil is off.
func (r *Recovery) enabled() bool { return r != nil }

// skips reports whether a recovered socket skips the middlewares.
func (r *Recovery) skips() bool { return r != nil && (r.SkipMiddlewares == nil || *r.SkipMiddlewares) }

// window is how long a session is kept.
func (r *Recovery) window() time.Duration {
	return durationOr(r.MaxDisconnectionDuration, DefaultMaxDisconnectionDuration)
}

// check validates the recovery settings; nil is recovery off. With the
// redis adapter, sessions and events are kept in Redis (the adapter's
// server and key), so a client recovers on any node.
func (r *Recovery) check() error {
	if r == nil {
		return nil
	}
	if r.MaxDisconnectionDuration < 0 || r.Buffer < 0 || r.Sessions < 0 {
		return errors.New("recovery: max_disconnection_duration, buffer and sessions must not be negative")
	}
	return nil
}

// options are the engine's recovery options; nil when off.
func (r *Recovery) options() *realtime.RecoveryOptions {
	if r == nil {
		return nil
	}
	return &realtime.RecoveryOptions{
		MaxDisconnectionDuration: r.window(),
		RunMiddlewares:           !r.skips(),
		BufferBytes:              r.Buffer,
		SessionBytes:             r.Sessions,
	}
}

// onCluster makes opts keep recovery's sessions and events in the hub's
// Redis cluster, when it has one: every node then recovers the sessions
// of the others (realtime/redisadapter/recovery.go).
func (h *hub) onCluster(opts realtime.Options) realtime.Options {
	if h.cluster == nil || opts.Recovery == nil {
		return opts
	}
	r := *opts.Recovery
	r.NewStore = h.cluster.RecoveryStore
	opts.Recovery = &r
	return opts
}

// resume takes over the module's state of a socket recovered without the
// middlewares (a session from another node has no local value: its token
// is then verified again by connected's recheck, its state being new): the claims and connect-hook data of the session it
// continues (realtime keeps the socket's local value with the session),
// its token expiry armed again, its webhook FIFO (so its notices stay in
// order), and the disconnect notice; the connect hook is told.
func (h *hub) resume(s *realtime.Socket) {
	old, _ := s.Local().(*socketState)
	st := &socketState{}
	if old != nil {
		old.mu.Lock()
		st.claims, st.authGen, st.hookData, st.queue = old.claims, old.authGen, old.hookData, old.queue
		old.mu.Unlock()
	}
	s.SetLocal(st)
	p := h.policy.Load()
	if exp, ok := st.claims.Expiry(); ok && p.verifier != nil {
		h.armExpiry(s, exp.Add(p.verifier.Leeway()))
	}
	w := p.webhook
	if w == nil {
		return
	}
	q := st.webhookQueue()
	h.disconnectNotice(s, q)
	if w.connect == "" {
		return
	}
	b := w.connectBody(s)
	b.Recovered = true
	j := webhookJob{w: w, url: w.connect, body: b, s: s}
	q.Push(webhook.Job{Client: w.client, Run: j.runResumed, Fail: j.fail}, w.queue+1)
}

// runResumed tells the connect hook about a recovered socket. It is
// connected already: the reply's rooms and data are not applied, and an
// error in it disconnects the socket.
func (j webhookJob) runResumed() {
	reply, err := j.w.client.Call(j.url, j.body)
	if err != nil {
		j.fail(err)
		return
	}
	if len(reply.Error) > 0 {
		if ce := j.w.logger.Check(zap.DebugLevel, "recovered socket refused by the connect hook"); ce != nil {
			ce.Write(zap.String("namespace", j.body.Namespace), zap.String("socket", j.body.Socket))
		}
		j.s.Disconnect(false)
	}
}

// recoveryFields reports whether a CONNECT auth key is recovery's own:
// "pid" and "offset" prove a session and are never copied into a call.
func recoveryFields(key string) bool { return key == "pid" || key == "offset" }
