package socketio

import (
	"fmt"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// Compression configures what the hub compresses: WebSocket frames
// (permessage-deflate, off by default) and polling responses (gzip or
// deflate, on by default, as Node's engine.io does). One threshold serves
// both, as in Node, where both default to 1024 bytes.
//
// The module compresses polling responses itself: it is ordered before
// Caddy's encode directive, which therefore never sees them (and would
// not honour the threshold or compress v2 clients' binary payloads).
type Compression struct {
	// WebSocket negotiates permessage-deflate with clients that offer it
	// (every browser, and socket.io-client in Node), in no-context-takeover
	// mode: no compression window is kept between messages, so an idle
	// connection costs what it costs without compression. Frames under
	// Threshold are sent uncompressed; a client's compressed frame may
	// inflate to at most max_payload, past which the connection is closed
	// with 1009. Default: false.
	WebSocket bool `json:"websocket,omitempty"`

	// Polling compresses polling responses of at least Threshold bytes
	// with gzip or deflate, as the request's Accept-Encoding prefers.
	// Default: true.
	Polling *bool `json:"polling,omitempty"`

	// Threshold is the smallest WebSocket frame or polling response, in
	// bytes, that is compressed. Default: 1024 (1KiB).
	Threshold int64 `json:"threshold,omitempty"`
}

// maxCompressionThreshold keeps the threshold an int on every platform;
// anything near it means "never".
const maxCompressionThreshold = 1 << 30

func (c *Compression) check() error {
	if c == nil {
		return nil
	}
	if c.Threshold < 0 || c.Threshold > maxCompressionThreshold {
		return fmt.Errorf("compression: threshold must be between 0 and %d bytes", maxCompressionThreshold)
	}
	return nil
}

// apply sets the engine's compression options.
func (c *Compression) apply(o *realtime.Options) {
	if c == nil {
		return
	}
	o.Engine.Compression = engineio.Compression{
		WebSocket:      c.WebSocket,
		DisablePolling: c.Polling != nil && !*c.Polling,
		Threshold:      int(c.Threshold),
	}
}
