package socketio

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"

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
}

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
	if l.SendBuffer > 0 && l.SendBufferMax > 0 && l.SendBufferMax < l.SendBuffer {
		bad("send_buffer's maximum %d is below its soft bound %d", l.SendBufferMax, l.SendBuffer)
	}
	return errors.Join(errs...)
}

// apply sets the realtime options the limits control; zero fields leave
// the engine's defaults.
func (l *Limits) apply(o *realtime.Options) {
	if l == nil {
		return
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
}

// maxRoomName is the longest room name a client may request.
func (l *Limits) maxRoomName() int {
	if l == nil || l.MaxNameLength <= 0 {
		return realtime.DefaultMaxRoomNameLength
	}
	return l.MaxNameLength
}
