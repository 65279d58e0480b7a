package realtime

import (
	"context"
	"errors"
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

// ErrClusterUnavailable is wrapped by the errors of an Adapter that could
// not reach the other nodes of its cluster (its broker is down): the local
// part of the operation was done, the rest of the cluster was not reached.
var ErrClusterUnavailable = errors.New("cluster unavailable")

// Adapter holds the rooms of one namespace and delivers its broadcasts. The
// in-memory adapter serves one process; a cluster adapter (package
// redisadapter, say) implements the same interface, forwards to the other
// nodes, and delivers to its own sockets through the namespace's exported
// local primitives: EncodeBroadcast, Namespace.DeliverLocal,
// Namespace.NextAckID, Namespace.LocalSockets and
// Namespace.HandleServerSideEmit. MemoryAdapter is written on those alone,
// so an adapter outside this package can do everything it does (embedding
// it, typically, for the rooms of the local sockets).
//
// Locks and calls: the namespace and its sockets never call an Adapter
// method while holding one of their own locks, and an Adapter must not
// call back into the namespace or a socket (DeliverLocal, LocalSockets,
// Socket.Join, Socket.Disconnect, ...) while holding its own lock: collect
// under the lock, release, then act. The methods that act on the cluster
// (those with a ctx) may block until ctx ends; the others must not block
// on the network.
type Adapter interface {
	// AddAll puts socket id in rooms.
	AddAll(id string, rooms []string)
	// Del takes socket id out of room.
	Del(id, room string)
	// DelAll takes socket id out of every room.
	DelAll(id string)
	// Broadcast sends packet p to the selected sockets, encoded once. Unless
	// opts.Flags.Local, a cluster adapter also sends it to the other nodes;
	// an error wrapping ErrClusterUnavailable then says they were not
	// reached (the local sockets were).
	Broadcast(p *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends p with an ack id to the selected sockets;
	// onClientCount is called once with the number of sockets it was sent to
	// (summed over nodes), onAck once per answer, from any goroutine.
	BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onClientCount func(n int), onAck func(args []any)) error
	// Sockets lists the local socket ids in any of rooms (all when empty).
	Sockets(rooms []string) []string
	// SocketRooms lists the rooms of a local socket.
	SocketRooms(id string) []string
	// Rooms maps every local room to its size.
	Rooms() map[string]int
	// AllRooms lists the rooms of every node, each once (socket id-rooms
	// included, as Node's allRooms has them).
	AllRooms(ctx context.Context) ([]string, error)
	// FetchSockets describes the selected sockets of every node.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// AddSockets makes the selected sockets of every node join rooms.
	AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets of every node leave rooms.
	DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets of every node;
	// with close, their whole connections.
	DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error
	// ServerSideEmit sends args (an event name first) to the other nodes'
	// server-side handlers (Namespace.OnServerSideEmit), not to this one's,
	// as Node's serverSideEmit does. With onReply, it waits for the nodes'
	// answers, calling onReply once per answer, until every node answered
	// or ctx ends (then the error wraps ErrAckTimeout). A single node has
	// no one to tell: nil at once.
	ServerSideEmit(ctx context.Context, args []any, onReply func(reply any)) error
	// Close releases the adapter's resources.
	Close() error
}

// BoundedAdder is an Adapter that can count and add a socket's rooms under
// one lock (MemoryAdapter, and adapters embedding it). Socket.Join uses it
// when the adapter has it, so that concurrent Joins cannot both pass the
// room bound; other adapters are counted and added under the socket's own
// lock.
type BoundedAdder interface {
	// AddAllBounded adds nothing and returns an error wrapping
	// ErrTooManyRooms when id would be in more than limit rooms (its
	// id-room and rooms it is in already not counted; limit < 0: no bound).
	AddAllBounded(id string, rooms []string, limit int) error
}

// SocketInfo describes a socket, local or on another node. Its JSON is the
// shape of a socket in Node's fetchSockets answers ({id, handshake, rooms,
// data}), plus namespace and transport.
type SocketInfo struct {
	ID        string         `json:"id"`
	Namespace string         `json:"namespace,omitempty"`
	Rooms     []string       `json:"rooms"`
	Handshake *Handshake     `json:"handshake,omitempty"`
	Data      map[string]any `json:"data"`
	Transport string         `json:"transport,omitempty"`
	// Presence is the key the socket counts for in presence (SetPresence),
	// "" for none. It travels in this module's fetchSockets answers, so
	// that a node can list who is online among another node's sockets
	// (Node's RemoteSocket ignores the field).
	Presence string `json:"presence,omitempty"`
	// Remote marks a socket another node described (it has no local
	// Socket, and its Transport is unknown).
	Remote bool `json:"-"`
}
