package socketio

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Limits bound what one client may send and what it can make the server
// hold on its behalf. A zero value takes the default given on the field;
// every default is one that no interactive client notices.
type Limits struct {
	// EventRate is how many events per second one socket may send,
	// sustained; events over it are dropped (an ack, if asked, gets
	// [{"error":"rate limit exceeded"}]) and a socket that goes on
	// exceeding it (event_burst events dropped within one refill of the
	// bucket) is disconnected. It applies before relays and webhooks.
	// -1 turns the limit off. Default: 500.
	EventRate float64 `json:"event_rate,omitempty"`

	// EventBurst is how many events a socket may send at once above the
	// rate. Default: 1000.
	EventBurst int `json:"event_burst,omitempty"`

	// MaxRooms bounds the rooms one socket is in (its own id-room is not
	// counted); a join over it fails. Default: 256.
	MaxRooms int `json:"max_rooms,omitempty"`

	// MaxNameLength bounds namespace, event and room names, in bytes: a
	// CONNECT to a longer namespace gets "Invalid namespace", a longer
	// event is dropped (its ack gets an error), a longer room is refused.
	// Default: 256.
	MaxNameLength int `json:"max_name_length,omitempty"`

	// SendBuffer is the soft bound of one connection's outgoing backlog,
	// in bytes. A client whose backlog stays over it for slow_client_grace
	// is disconnected as slow ("write queue full"); one that keeps reading
	// is never dropped by a burst it is draining. Default: 1MiB.
	SendBuffer int64 `json:"send_buffer,omitempty"`

	// SendBufferMax is the hard bound of the backlog: passing it
	// disconnects the client at once. It bounds the memory one stalled
	// client holds. Default: 8MiB (and at least max_payload).
	SendBufferMax int64 `json:"send_buffer_max,omitempty"`

	// SlowClientGrace is how long a backlog may stay over send_buffer.
	// Default: 5s.
	SlowClientGrace caddy.Duration `json:"slow_client_grace,omitempty"`

	// MaxPackets bounds the packets in one polling request body; a larger
	// body gets 400 Bad request and closes the connection. Default: 10000.
	MaxPackets int `json:"max_packets,omitempty"`

	// AttachmentTimeout is how long the binary attachments announced by a
	// packet may take to arrive; then the connection is closed. Their
	// total size is bounded by max_payload. Default: 10s.
	AttachmentTimeout caddy.Duration `json:"attachment_timeout,omitempty"`

	// MaxConnections bounds the hub's Engine.IO connections, across sites
	// and reloads; a handshake over it gets HTTP 403
	// {"code":4,"message":"too many connections"}, what Node's engine.io
	// answers when its allowRequest refuses. Default: no bound (0 or -1);
	// the machine's file descriptors bound it.
	MaxConnections int `json:"max_connections,omitempty"`

	// MaxConnectionsPerIP bounds the connections of one client IP: Caddy's
	// client IP, so behind a proxy listed in trusted_proxies the address
	// its headers give; an IPv6 client counts by its /64. Over it:
	// "too many connections from this address". -1 turns it off.
	// Default: 1000.
	MaxConnectionsPerIP int `json:"max_connections_per_ip,omitempty"`

	// HandshakeRate is how many handshakes per second one client IP may
	// make, sustained, and HandshakeBurst how many at once; over it:
	// "too many handshakes from this address, retry later". -1 turns it
	// off. Default: 50 per second, burst 500.
	HandshakeRate  float64 `json:"handshake_rate,omitempty"`
	HandshakeBurst int     `json:"handshake_burst,omitempty"`

	// MaxSocketsPerSubject bounds the sockets connected with a token of one
	// subject (its "sub" claim): a CONNECT over it gets the connect_error
	// "too many connections for this user". A client connected to two
	// namespaces holds two sockets. Tokens without a subject are not
	// counted. -1 turns it off. Default: 100.
	MaxSocketsPerSubject int `json:"max_sockets_per_subject,omitempty"`

	// MaxNamespaces bounds the namespaces one connection is in or
	// connecting to: one more CONNECT gets the connect_error "too many
	// namespaces". -1 turns it off. Default: 32.
	MaxNamespaces int `json:"max_namespaces,omitempty"`

	// MaxPendingAcks bounds the acknowledgements the server waits for from
	// one socket (emit API calls with an ack, ...): one more fails at once
	// with "too many pending acknowledgements", and a broadcast with an ack
	// skips the socket. -1 turns it off. Default: 1000.
	MaxPendingAcks int `json:"max_pending_acks,omitempty"`
}

// Defaults of the connection limits, where the engine has none (it leaves
// them off for embedders; a Caddy site facing the Internet wants them on).
const (
	DefaultMaxConnectionsPerIP  = 1000
	DefaultHandshakeRate        = 50
	DefaultHandshakeBurst       = 500
	DefaultMaxSocketsPerSubject = 100
)

// Messages of the limits the module applies itself.
const errTooManyForSubject = "too many connections for this user"

// limitSubjectName is the limit label of MaxSocketsPerSubject (metrics:
// caddy_socketio_limited_total{limit}).
const limitSubjectName = "sockets_per_subject"

// check validates the limits without side effects.
func (l *Limits) check() error {
	if l == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("limits: "+format, args...)) }
	if l.EventRate < 0 && l.EventRate != -1 {
		bad("event_rate must be positive, or -1 (off)")
	}
	if l.EventBurst < 0 && l.EventBurst != -1 {
		bad("event_burst must be positive, or -1 (off)")
	}
	if (l.EventRate == -1) != (l.EventBurst == -1) && l.EventRate != 0 && l.EventBurst != 0 {
		bad("event_rate and event_burst are turned off together")
	}
	if l.MaxRooms < 0 || l.MaxNameLength < 0 || l.SendBuffer < 0 || l.SendBufferMax < 0 ||
		l.SlowClientGrace < 0 || l.MaxPackets < 0 || l.AttachmentTimeout < 0 {
		bad("max_rooms, max_name_length, send_buffer, slow_client_grace, max_packets and attachment_timeout must not be negative")
	}
	for name, v := range map[string]int{
		"max_connections": l.MaxConnections, "max_connections_per_ip": l.MaxConnectionsPerIP,
		"max_sockets_per_subject": l.MaxSocketsPerSubject, "max_namespaces": l.MaxNamespaces,
		"max_pending_acks": l.MaxPendingAcks,
	} {
		if v < -1 {
			bad("%s must be positive, or -1 (off)", name)
		}
	}
	if l.HandshakeRate < 0 && l.HandshakeRate != -1 {
		bad("handshake_rate must be positive, or -1 (off)")
	}
	if l.HandshakeBurst < -1 {
		bad("handshake_burst must be positive, or -1 (off)")
	}
	if l.SendBuffer > 0 && l.SendBufferMax > 0 && l.SendBufferMax < l.SendBuffer {
		bad("send_buffer's maximum %d is below its soft bound %d", l.SendBufferMax, l.SendBuffer)
	}
	return errors.Join(errs...)
}

// apply sets the realtime options the limits control; zero fields leave
// the engine's defaults, or take the module's own for the connection
// limits (a nil Limits too).
func (l *Limits) apply(o *realtime.Options) {
	if l == nil {
		l = &Limits{}
	}
	o.EventRate = l.EventRate
	o.EventBurst = l.EventBurst
	if l.EventRate == -1 {
		o.EventBurst = -1
	}
	o.MaxRoomsPerSocket = l.MaxRooms
	o.MaxNamespaceLength = l.MaxNameLength
	o.MaxEventNameLength = l.MaxNameLength
	o.MaxRoomNameLength = l.MaxNameLength
	o.AttachmentTimeout = durationOr(l.AttachmentTimeout, 0)
	o.Engine.MaxBufferedBytes = l.SendBuffer
	o.Engine.MaxBufferedBytesHard = l.SendBufferMax
	o.Engine.SlowClientGrace = durationOr(l.SlowClientGrace, 0)
	o.Engine.MaxPayloadPackets = l.MaxPackets

	o.MaxConnections = max(l.MaxConnections, 0)
	o.MaxConnectionsPerAddr = limitOrOff(l.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	switch {
	case l.HandshakeRate == -1 || l.HandshakeBurst == -1:
		o.HandshakeRate, o.HandshakeBurst = 0, 0
	default:
		o.HandshakeRate = l.HandshakeRate
		if o.HandshakeRate == 0 {
			o.HandshakeRate = DefaultHandshakeRate
		}
		o.HandshakeBurst = limitOrOff(l.HandshakeBurst, DefaultHandshakeBurst)
	}
	o.MaxNamespacesPerConn = l.MaxNamespaces // the engine's: 0 default, -1 off
	o.MaxPendingAcks = l.MaxPendingAcks
}

// limitOrOff resolves a connection limit: zero takes def, -1 is off (0 for
// the engine).
func limitOrOff(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// maxPerSubject is the resolved MaxSocketsPerSubject: 0 is off.
func (l *Limits) maxPerSubject() int {
	if l == nil {
		return DefaultMaxSocketsPerSubject
	}
	return limitOrOff(l.MaxSocketsPerSubject, DefaultMaxSocketsPerSubject)
}

// limitSubject counts a socket authorized with claims against its
// subject's bound, until it is done (refused by a later middleware, or
// disconnected); a refusal is the connect_error "too many connections for
// this user". The counts live in the hub, so a reload keeps them.
func (h *hub) limitSubject(s *realtime.Socket, p *policy, claims map[string]any) error {
	if p.maxPerSubject <= 0 {
		return nil
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil
	}
	release, err := h.subjects.Acquire(sub, p.maxPerSubject)
	if err != nil {
		if p.onLimited != nil {
			p.onLimited(s, limitSubjectName)
		}
		if ok, held := h.subjectLog.Pass(); ok {
			// The subject is not a secret, but it is the client's: cut.
			p.logger.Warn("connect refused: "+errTooManyForSubject,
				zap.String("subject", utf8cut.Cut(sub, 64)), zap.String("namespace", s.Namespace().Name()),
				zap.Int("max_sockets_per_subject", p.maxPerSubject), zap.Int("similar_not_logged", held))
		}
		return &realtime.ConnectError{Message: errTooManyForSubject, Cause: errSubjectLimit}
	}
	s.Hold(release)
	return nil
}

// errSubjectLimit is the Cause of a refusal by MaxSocketsPerSubject.
var errSubjectLimit = errors.New(errTooManyForSubject)

// maxRoomName is the longest room name a client may request.
func (l *Limits) maxRoomName() int {
	if l == nil || l.MaxNameLength <= 0 {
		return realtime.DefaultMaxRoomNameLength
	}
	return l.MaxNameLength
}
