package realtime

import (
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// DefaultConnectTimeout is how long a connection may stay without any
// namespace joined before it is closed (Node's connectTimeout).
const DefaultConnectTimeout = 45 * time.Second

// Defaults of the limits in Options. Node socket.io has none of them; they
// bound what one client can make the server do or hold.
const (
	// DefaultEventRate is the sustained event rate a socket may send, in
	// events per second.
	DefaultEventRate = 500
	// DefaultEventBurst is how many events a socket may send at once, above
	// the sustained rate.
	DefaultEventBurst = 1000
	// DefaultMaxRoomsPerSocket bounds the rooms one socket is in, its own
	// id-room not counted.
	DefaultMaxRoomsPerSocket = 256
	// DefaultMaxRoomNameLength bounds a room name, in bytes.
	DefaultMaxRoomNameLength = 256
	// DefaultMaxNamespaceLength bounds a namespace name a client may
	// CONNECT to, in bytes, the leading "/" included.
	DefaultMaxNamespaceLength = 256
	// DefaultMaxEventNameLength bounds the name of a client event, in bytes.
	DefaultMaxEventNameLength = 256
	// DefaultAttachmentTimeout bounds how long the binary attachments of one
	// packet may take to arrive after its header.
	DefaultAttachmentTimeout = 10 * time.Second
)

// Options configure a Server. Zero values take Node socket.io 4.x defaults,
// and the defaults above for the limits Node does not have.
type Options struct {
	// Engine configures the Engine.IO layer: heartbeat, payload limit,
	// transports, upgrades, origins. Its OnSession is set by the Server.
	Engine engineio.Options
	// ConnectTimeout closes a connection that has joined no namespace within
	// it. Default: 45s.
	ConnectTimeout time.Duration
	// Logger receives the server's logs, under the name "socketio"
	// (Logger.Named); it is also the engine's unless Engine.Logger is set.
	// Default: no logging.
	Logger *zap.Logger
	// NewAdapter builds the Adapter of each namespace. Default: NewMemoryAdapter.
	NewAdapter func(n *Namespace) Adapter

	// EventRate and EventBurst set the token bucket that every socket's
	// events go through before any handler (On, OnAny) sees them: a socket
	// may send EventBurst events at once and EventRate events per second
	// sustained. An event over the limit is dropped; if it asked for an
	// acknowledgement, the client gets [{"error":"rate limit exceeded"}].
	// A socket that is limited logs one warning (the first time only).
	//
	// A socket that keeps exceeding the limit is disconnected: when
	// EventBurst of its events were dropped within one refill window
	// (EventBurst/EventRate, the time an empty bucket takes to fill: 2s
	// with the defaults), every socket of its connection gets a DISCONNECT
	// packet and the connection is closed, as Socket.Disconnect(true) does,
	// with the reason "rate limit exceeded". A client that sends at up to
	// twice the rate is throttled, above that it is disconnected.
	//
	// Defaults (zero): 500 events/s, burst 1000. A negative value of either
	// turns the limit off.
	EventRate  float64
	EventBurst int
	// MaxRoomsPerSocket bounds the rooms a socket can be in, its own id-room
	// not counted: a Join beyond it fails with ErrTooManyRooms. Default
	// (zero): 256; negative: no bound.
	MaxRoomsPerSocket int
	// MaxRoomNameLength bounds the room names Join accepts, in bytes
	// (ErrRoomNameTooLong). Default (zero): 256; negative: no bound.
	MaxRoomNameLength int
	// MaxNamespaceLength bounds the namespace name of a client's CONNECT, in
	// bytes: a longer one is answered with CONNECT_ERROR "Invalid namespace"
	// without looking it up. Default (zero): 256; negative: no bound.
	MaxNamespaceLength int
	// MaxEventNameLength bounds the name of a client's event, in bytes: a
	// longer one is dropped before any handler, and answered with
	// [{"error":"event name too long"}] if it asked for an acknowledgement.
	// Default (zero): 256; negative: no bound.
	MaxEventNameLength int
	// MaxAttachmentBytes bounds the total size of the binary attachments of
	// one packet; a connection whose attachments go over it is closed with
	// "parse error" at once. Default (zero): Engine.MaxPayload (itself
	// 1000000 by default).
	MaxAttachmentBytes int64
	// AttachmentTimeout closes a connection ("parse error") when the binary
	// attachments a packet announced have not all arrived within it after
	// the packet's header. Default (zero): 10s.
	AttachmentTimeout time.Duration
	// MaxConnections bounds the Engine.IO connections the server holds; a
	// handshake over it is refused with HTTP 403 {"code":4,"message":"too
	// many connections"} (what Node's engine.io answers when allowRequest
	// refuses). Zero or negative: no bound.
	MaxConnections int
	// MaxConnectionsPerAddr bounds the connections of one client address
	// (the IP of the request's RemoteAddr, an IPv6 one by its /64; see
	// AddrKey): "too many connections from this address". Zero or
	// negative: no bound.
	MaxConnectionsPerAddr int
	// HandshakeRate and HandshakeBurst are a token bucket of handshakes per
	// client address: HandshakeBurst at once, HandshakeRate per second
	// sustained; one over it is refused with "too many handshakes from this
	// address, retry later". Zero or negative: no bound.
	HandshakeRate  float64
	HandshakeBurst int
	// LimitTableBytes bounds the memory of the table of client addresses
	// the two limits above keep, in bytes; when it is full of addresses
	// that hold connections, handshakes from new addresses are refused.
	// Default (zero): DefaultLimitTableBytes.
	LimitTableBytes int64
	// MaxNamespacesPerConn bounds the namespaces one connection is in or
	// connecting to: one more CONNECT gets CONNECT_ERROR "too many
	// namespaces". Default (zero): 32; negative: no bound.
	MaxNamespacesPerConn int
	// MaxPendingAcks bounds the acknowledgements the server waits for from
	// one socket: one more EmitWithAck fails with ErrTooManyPendingAcks, a
	// broadcast with an ack skips the socket. Default (zero): 1000;
	// negative: no bound.
	MaxPendingAcks int
	// OnLimited, when set, is called when a limit acts, with one of the
	// Limit* names: for counting (metrics). It runs on the socket's reader
	// goroutine, on the goroutine that called Join or an emit, or on the
	// handshake's, and must not block. s is nil for the limits that act
	// before a socket exists (connections, handshakes, namespaces).
	OnLimited func(s *Socket, limit string)
	// Observer is told what the server does, for counting (metrics).
	Observer Observer
	// Recovery, when set, turns connection state recovery on (see
	// RecoveryOptions). Default: off.
	Recovery *RecoveryOptions

	// clock starts the acknowledgement timeouts' timers
	// (EmitWithAckFunc); nil is the time package. Only this package's
	// tests set it, to a clock that moves when they say.
	clock clock
}

// Observer receives counts of what the Socket.IO layer does, for metrics
// (the Engine.IO layer has its own, Engine.Observer). Every field is
// optional. Each is called synchronously, with no lock of the server held,
// and must be cheap and never block.
type Observer struct {
	// OnRefused: a CONNECT to namespace was refused, with err: a
	// middleware's error, or ErrInvalidNamespace for a namespace that is
	// not served (or whose name is over MaxNamespaceLength).
	OnRefused func(namespace string, err error)
	// OnDisconnect: a connected socket disconnected, with the reason its
	// OnDisconnect handlers get; called after them.
	OnDisconnect func(s *Socket, reason string)
	// OnBroadcast: an Emit or EmitWithAck of a BroadcastOperator (a
	// namespace's or a socket's To, Except, ...) was handed to the adapter.
	OnBroadcast func(n *Namespace)
	// OnAckTimeout: an emit waiting for acknowledgements timed out
	// (ErrAckTimeout): once per emit, however many sockets did not answer.
	OnAckTimeout func(n *Namespace)
}

// clock is where the socket layer's timers that tests wait on come from.
type clock interface {
	// AfterFunc runs f on its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) stopTimer
}

// stopTimer is the part of *time.Timer a timeout uses.
type stopTimer interface{ Stop() bool }

// realClock is the time package.
type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) stopTimer { return time.AfterFunc(d, f) }

// Names of the limits passed to Options.OnLimited.
const (
	// LimitEventRate: the socket started being limited by the event rate:
	// once per refill window in which some of its events were dropped.
	LimitEventRate = "event_rate"
	// LimitEventRateDisconnect: the socket was disconnected for exceeding
	// the event rate.
	LimitEventRateDisconnect = "event_rate_disconnect"
	// LimitEventName: an event was dropped for its name's length.
	LimitEventName = "event_name"
	// LimitRooms: a Join was refused (too many rooms or a name too long).
	LimitRooms = "rooms"
	// LimitConnections: a handshake was refused, or a new connection
	// closed, by MaxConnections.
	LimitConnections = "connections"
	// LimitConnectionsPerAddr: the same by MaxConnectionsPerAddr (or a full
	// table of addresses).
	LimitConnectionsPerAddr = "connections_per_ip"
	// LimitHandshakeRate: a handshake was refused by HandshakeRate.
	LimitHandshakeRate = "handshake_rate"
	// LimitNamespaces: a CONNECT was refused by MaxNamespacesPerConn.
	LimitNamespaces = "namespaces"
	// LimitPendingAcks: an emit with an ack was refused, or a broadcast
	// skipped a socket, by MaxPendingAcks.
	LimitPendingAcks = "pending_acks"
)

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Engine.Logger == nil {
		o.Engine.Logger = o.Logger // the engine names its own: "engineio"
	}
	o.Logger = o.Logger.Named("socketio")
	if o.NewAdapter == nil {
		o.NewAdapter = func(n *Namespace) Adapter { return NewMemoryAdapter(n) }
	}
	if o.EventRate == 0 {
		o.EventRate = DefaultEventRate
	}
	if o.EventBurst == 0 {
		o.EventBurst = DefaultEventBurst
	}
	o.MaxRoomsPerSocket = limitOr(o.MaxRoomsPerSocket, DefaultMaxRoomsPerSocket)
	o.MaxRoomNameLength = limitOr(o.MaxRoomNameLength, DefaultMaxRoomNameLength)
	o.MaxNamespaceLength = limitOr(o.MaxNamespaceLength, DefaultMaxNamespaceLength)
	o.MaxEventNameLength = limitOr(o.MaxEventNameLength, DefaultMaxEventNameLength)
	if o.MaxAttachmentBytes <= 0 {
		o.MaxAttachmentBytes = o.Engine.MaxPayload
		if o.MaxAttachmentBytes <= 0 {
			o.MaxAttachmentBytes = engineio.DefaultMaxPayload
		}
	}
	if o.AttachmentTimeout <= 0 {
		o.AttachmentTimeout = DefaultAttachmentTimeout
	}
	o.MaxNamespacesPerConn = limitOr(o.MaxNamespacesPerConn, DefaultMaxNamespacesPerConn)
	o.MaxPendingAcks = limitOr(o.MaxPendingAcks, DefaultMaxPendingAcks)
	if o.Recovery != nil {
		r := o.Recovery.withDefaults()
		o.Recovery = &r
	}
	return o
}

// limitOr resolves a size limit: zero takes def, negative means none (-1).
func limitOr(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

// over reports whether n exceeds limit (a resolved limit: -1 is none).
func over(n, limit int) bool { return limit >= 0 && n > limit }

// rateLimited reports whether the event limit is on.
func (o *Options) rateLimited() bool { return o.EventRate > 0 && o.EventBurst > 0 }
