package realtime

import (
	"context"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// BroadcastFlags modify how a broadcast is delivered. They travel to the
// Adapter as separate values because cluster adapters (Node's
// @socket.io/redis-adapter wire format) carry them that way.
type BroadcastFlags struct {
	// Volatile packets may be dropped for a client that is not ready to
	// receive them (its queue is busy), instead of being queued.
	Volatile bool
	// Local limits the broadcast to this process, skipping other nodes.
	Local bool
	// Compress is carried for cluster adapters; this server does not
	// negotiate WebSocket compression.
	Compress bool
	// Timeout bounds how long a broadcast with acknowledgements waits.
	Timeout time.Duration
}

// BroadcastOptions select the sockets of a broadcast: every socket in any of
// Rooms (every socket of the namespace when Rooms is empty), minus every
// socket in any of Except. A socket id is also a room holding just it.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  BroadcastFlags
}

// Adapter holds the rooms of one namespace and delivers its broadcasts. The
// in-memory adapter serves one process; a cluster adapter (Redis, say)
// implements the same interface and forwards to other nodes, using the
// namespace's local delivery (Namespace.DeliverLocal) for its own sockets.
type Adapter interface {
	// AddAll puts socket id in rooms.
	AddAll(id string, rooms []string)
	// Del takes socket id out of room.
	Del(id, room string)
	// DelAll takes socket id out of every room.
	DelAll(id string)
	// Broadcast sends packet p to the selected sockets, encoded once.
	Broadcast(p *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends p with an ack id to the selected sockets;
	// onClientCount is called once with the number of sockets it was sent to
	// (summed over nodes), onAck once per answer.
	BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onClientCount func(n int), onAck func(args []any)) error
	// Sockets lists the local socket ids in any of rooms (all when empty).
	Sockets(rooms []string) []string
	// SocketRooms lists the rooms of a local socket.
	SocketRooms(id string) []string
	// Rooms maps every local room to its size.
	Rooms() map[string]int
	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// AddSockets makes the selected sockets join rooms.
	AddSockets(opts BroadcastOptions, rooms []string)
	// DelSockets makes the selected sockets leave rooms.
	DelSockets(opts BroadcastOptions, rooms []string)
	// DisconnectSockets disconnects the selected sockets; with close, their
	// whole connections.
	DisconnectSockets(opts BroadcastOptions, close bool)
	// Close releases the adapter's resources.
	Close() error
}

// SocketInfo describes a socket, local or on another node.
type SocketInfo struct {
	ID        string         `json:"id"`
	Namespace string         `json:"namespace"`
	Rooms     []string       `json:"rooms"`
	Handshake *Handshake     `json:"-"`
	Data      map[string]any `json:"data,omitempty"`
	Transport string         `json:"transport,omitempty"`
}
