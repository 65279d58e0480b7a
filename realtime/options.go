package realtime

import (
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// DefaultConnectTimeout is how long a connection may stay without any
// namespace joined before it is closed (Node's connectTimeout).
const DefaultConnectTimeout = 45 * time.Second

// Options configure a Server. Zero values take Node socket.io 4.x defaults.
type Options struct {
	// Engine configures the Engine.IO layer: heartbeat, payload limit,
	// transports, upgrades, origins. Its OnSession is set by the Server.
	Engine engineio.Options
	// ConnectTimeout closes a connection that has joined no namespace within
	// it. Default: 45s.
	ConnectTimeout time.Duration
	// Logger receives the server's logs. Default: no logging.
	Logger *zap.Logger
	// NewAdapter builds the Adapter of each namespace. Default: NewMemoryAdapter.
	NewAdapter func(n *Namespace) Adapter
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Engine.Logger == nil {
		o.Engine.Logger = o.Logger
	}
	if o.NewAdapter == nil {
		o.NewAdapter = func(n *Namespace) Adapter { return NewMemoryAdapter(n) }
	}
	return o
}
