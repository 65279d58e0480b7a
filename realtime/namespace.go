package realtime

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Middleware runs for every socket before it is connected, in the order
// added. An error refuses the socket: the client gets a connect_error with
// the error's message, and a ConnectError's Data as its data.
type Middleware func(s *Socket) error

// Namespace is a Socket.IO namespace ("/", "/chat", ...): its sockets, its
// middlewares and connection handlers, and the Adapter that holds its rooms.
type Namespace struct {
	name    string
	srv     *Server
	adapter Adapter
	ackIDs  atomic.Int64
	// recMu serialises recording an event for recovery with delivering
	// it, and a recovered socket's replay with its admission (recovery.go).
	// Lock order: recMu before Server.mu and the adapter's lock.
	recMu sync.Mutex

	// Life of a namespace, for the Server (see Server's lock order):
	// dynamic is set for a namespace an OfFunc created (and cleared by Of);
	// joining counts the sockets that hold it while they are in its
	// middlewares, so it is not dropped under them; state is guarded by
	// Server.mu.
	dynamic atomic.Bool
	joining atomic.Int32
	state   nsState

	webSockets atomic.Int64 // sockets on a WebSocket connection (Socket.onWS)

	mu           sync.RWMutex
	sockets      map[string]*Socket
	middlewares  []Middleware
	onConnection []func(*Socket)
	onServerSide []ServerSideHandler
}

// ServerSideHandler gets what another node sent with ServerSideEmit: args
// (the event name first). ack is nil unless the sender waits for answers;
// calling it (once; later calls are ignored) sends one answer back.
type ServerSideHandler func(args []any, ack func(reply any))

// nsState is where a namespace is in its life.
type nsState uint8

const (
	// nsLive: in Server.nsps, visible to Server.Namespace and Namespaces.
	nsLive nsState = iota
	// nsPending: a dynamic namespace set up for a CONNECT whose socket is
	// still in the middlewares; invisible until one is admitted.
	nsPending
	// nsDropped: a dynamic namespace refused or left empty, forgotten by
	// the Server; a later CONNECT creates a new one.
	nsDropped
)

func newNamespace(srv *Server, name string, newAdapter func(*Namespace) Adapter) *Namespace {
	n := &Namespace{name: name, srv: srv, sockets: make(map[string]*Socket)}
	n.adapter = newAdapter(n)
	return n
}

// Name is the namespace's name, e.g. "/".
func (n *Namespace) Name() string { return n.name }

// Server is the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter holds the namespace's rooms.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Use adds a connect middleware.
func (n *Namespace) Use(m Middleware) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.middlewares = append(n.middlewares, m)
}

// OnConnection adds a function called for every connected socket, after the
// client got its CONNECT answer. Register the socket's event handlers there.
func (n *Namespace) OnConnection(fn func(s *Socket)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onConnection = append(n.onConnection, fn)
}

// Socket returns the local socket with that id.
func (n *Namespace) Socket(id string) (*Socket, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sockets[id]
	return s, ok
}

// Sockets lists the local sockets.
func (n *Namespace) Sockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

// Len is the number of local sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// Counts is the number of local sockets by transport, without a walk over
// them: for gauges scraped while the namespace holds many sockets. While
// sockets connect, leave or upgrade the two may lag each other by those
// sockets.
func (n *Namespace) Counts() (polling, websocket int) {
	total := n.Len()
	websocket = min(int(max(n.webSockets.Load(), 0)), total)
	return total - websocket, websocket
}

// roomCounter is an Adapter that counts its local rooms without listing
// them (MemoryAdapter, and the adapters that embed it).
type roomCounter interface {
	// RoomCount is the number of local rooms, the sockets' own id-rooms
	// left out.
	RoomCount() int
}

// RoomCount is the number of local rooms, the sockets' own id-rooms left
// out. With MemoryAdapter (or an adapter embedding it) it costs no walk
// over the rooms; with another adapter it lists them.
func (n *Namespace) RoomCount() int {
	if rc, ok := n.adapter.(roomCounter); ok {
		return rc.RoomCount()
	}
	count := 0
	for room := range n.adapter.Rooms() {
		if _, own := n.Socket(room); !own {
			count++
		}
	}
	return count
}

// Rooms maps every local room to its size, each socket's own id-room
// included.
func (n *Namespace) Rooms() map[string]int { return n.adapter.Rooms() }

func (n *Namespace) operator() BroadcastOperator { return BroadcastOperator{nsp: n} }

// To selects the sockets in rooms for a broadcast.
func (n *Namespace) To(rooms ...string) BroadcastOperator { return n.operator().To(rooms...) }

// In is the same as To.
func (n *Namespace) In(rooms ...string) BroadcastOperator { return n.operator().To(rooms...) }

// Except leaves the sockets in rooms out of a broadcast.
func (n *Namespace) Except(rooms ...string) BroadcastOperator {
	return n.operator().Except(rooms...)
}

// Volatile marks a broadcast that busy clients may miss.
func (n *Namespace) Volatile() BroadcastOperator { return n.operator().Volatile() }

// Local keeps a broadcast on this node.
func (n *Namespace) Local() BroadcastOperator { return n.operator().Local() }

// Timeout bounds how long a broadcast waits for acknowledgements.
func (n *Namespace) Timeout(d time.Duration) BroadcastOperator { return n.operator().Timeout(d) }

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.operator().Emit(event, args...) }

// NextAckID returns a new acknowledgement id of the namespace, for the
// packet of a broadcast with acks (ids are unique per namespace and
// process, so a local socket's answer finds its callback).
func (n *Namespace) NextAckID() int64 { return n.ackIDs.Add(1) - 1 }

func (n *Namespace) nextAckID() int64 { return n.NextAckID() }

// EncodeBroadcast encodes p once for many recipients (the WebSocket frame
// too is prepared once): the messages DeliverLocal takes. For a broadcast
// with acks, p.ID is a NextAckID.
func EncodeBroadcast(p *parser.Packet) ([]*engineio.Message, error) {
	return encodePacket(p, true)
}

// Delivery is a broadcast already encoded, for DeliverLocal.
type Delivery struct {
	// Messages are EncodeBroadcast's, queued as they are on every socket.
	Messages []*engineio.Message
	// Volatile skips a socket whose transport is not ready to write,
	// instead of queueing.
	Volatile bool
	// AckID is the id the packet was encoded with, when it asks for
	// acknowledgements (parser.NoID, or 0 with no OnAck, when it does not).
	AckID int64
	// OnAck is called once per socket that answers, from its reader
	// goroutine; a socket that disconnects first does not call it.
	OnAck func(args []any)
	// AckTimeout, when positive, forgets the callbacks of sockets that have
	// not answered by then (so a socket that ignores acks does not collect
	// them until it disconnects).
	AckTimeout time.Duration
	// Event is the packet's data (event name first), told to the server's
	// Watcher for each socket it was queued on; nil skips that.
	Event []any
}

// DeliverLocal queues d on the connected local sockets among ids (unknown
// ids are skipped: a socket may have left since it was selected) and
// returns how many it was queued on. It is the primitive every Adapter
// delivers with, for broadcasts of this node and of others; it takes the
// namespace's lock for the lookup only, and never calls the adapter.
//
// Queueing to an idle WebSocket writes the frame at once, on the caller's
// goroutine (the engine's direct writes), so a large delivery without
// acks is split between goroutines, one per deliverChunk sockets and at
// most GOMAXPROCS, rather than making one goroutine run every system
// call in turn. It returns once all are done: a socket gets the
// deliveries of one caller in the order they were made.
func (n *Namespace) DeliverLocal(ids []string, d Delivery) int {
	targets := n.LocalSockets(ids)
	var w Watcher
	if d.Event != nil {
		w = n.srv.watcher()
	}
	if d.OnAck == nil {
		if parts := min(runtime.GOMAXPROCS(0), len(targets)/deliverChunk); parts > 1 {
			return deliverSplit(targets, d, w, parts)
		}
		return deliverTo(targets, d, w)
	}
	sent := 0
	onAck := d.OnAck
	acked := targets[:0]
	for _, s := range targets {
		if !s.addAck(d.AckID, func(args []any, err error) {
			if err == nil {
				onAck(args)
			}
		}) {
			continue
		}
		if s.writeMessages(d.Messages, d.Volatile) {
			sent++
			acked = append(acked, s)
			if w != nil {
				w.EventSent(s, d.Event)
			}
		} else {
			s.removeAck(d.AckID)
		}
	}
	if t := d.AckTimeout; t > 0 && len(acked) > 0 {
		id := d.AckID
		time.AfterFunc(t, func() {
			for _, s := range acked {
				s.removeAck(id)
			}
		})
	}
	return sent
}

// deliverChunk is the fewest sockets DeliverLocal hands to a goroutine of
// their own. A variable only so that tests may lower it.
var deliverChunk = 512

// deliverTo queues d, which has no ack, on targets; it returns how many
// took it.
func deliverTo(targets []*Socket, d Delivery, w Watcher) int {
	sent := 0
	for _, s := range targets {
		if s.writeMessages(d.Messages, d.Volatile) {
			sent++
			if w != nil {
				w.EventSent(s, d.Event)
			}
		}
	}
	return sent
}

// deliverSplit is deliverTo over parts slices of targets, all but the last
// on goroutines of their own, and returns when every part is done.
func deliverSplit(targets []*Socket, d Delivery, w Watcher, parts int) int {
	size := (len(targets) + parts - 1) / parts
	var sent atomic.Int64
	var wg sync.WaitGroup
	for len(targets) > size {
		part := targets[:size]
		targets = targets[size:]
		wg.Go(func() { sent.Add(int64(deliverTo(part, d, w))) })
	}
	last := deliverTo(targets, d, w)
	wg.Wait()
	return int(sent.Load()) + last
}

// LocalSockets returns the local sockets among ids, in their order,
// skipping unknown ids, under one hold of the namespace's lock.
func (n *Namespace) LocalSockets(ids []string) []*Socket {
	if len(ids) == 0 {
		return nil
	}
	out := make([]*Socket, 0, len(ids))
	n.mu.RLock()
	for _, id := range ids {
		if s := n.sockets[id]; s != nil {
			out = append(out, s)
		}
	}
	n.mu.RUnlock()
	return out
}

// OnServerSideEmit adds a handler of what other nodes send with
// ServerSideEmit (Node's io.on(event) for serverSideEmit).
func (n *Namespace) OnServerSideEmit(h ServerSideHandler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onServerSide = append(n.onServerSide, h)
}

// HandleServerSideEmit runs the server-side handlers for what another
// node sent, for a cluster adapter. Only the first handler gets ack, as
// only the first listener of an event answers in Node; with no handler,
// nothing answers (the sender then times out, as with a Node peer that
// has no listener). It reports whether a handler got ack.
func (n *Namespace) HandleServerSideEmit(args []any, ack func(reply any)) bool {
	n.mu.RLock()
	hs := n.onServerSide
	n.mu.RUnlock()
	if len(hs) == 0 {
		return false
	}
	var once sync.Once
	var wrapped func(any)
	if ack != nil {
		wrapped = func(v any) { once.Do(func() { ack(v) }) }
	}
	for i, h := range hs {
		a := wrapped
		if i > 0 {
			a = nil
		}
		n.safeServerSide(h, args, a)
	}
	return ack != nil
}

func (n *Namespace) safeServerSide(h ServerSideHandler, args []any, ack func(any)) {
	defer func() {
		if r := recover(); r != nil {
			n.srv.logger().Error("server-side handler panicked", zap.String("namespace", n.name), zap.Any("panic", r))
		}
	}()
	h(args, ack)
}

// ServerSideEmit sends an event to the server-side handlers of the other
// nodes (not this one's), as Node's serverSideEmit does.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("emitting %q to the other nodes: %w", event, ErrReservedEvent)
	}
	return n.adapter.ServerSideEmit(ctx, append([]any{event}, args...), nil)
}

// ServerSideEmitWithAck is ServerSideEmit waiting for one answer per other
// node, until each answered or ctx ends (ErrAckTimeout with the answers so
// far). A node with no handler never answers.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	if parser.IsReservedEvent(event) {
		return nil, fmt.Errorf("emitting %q to the other nodes: %w", event, ErrReservedEvent)
	}
	var (
		mu      sync.Mutex
		replies = []any{}
	)
	err := n.adapter.ServerSideEmit(ctx, append([]any{event}, args...), func(v any) {
		mu.Lock()
		replies = append(replies, v)
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(replies), err
}

// AllRooms lists the rooms of every node (socket id-rooms included).
func (n *Namespace) AllRooms(ctx context.Context) ([]string, error) {
	return n.adapter.AllRooms(ctx)
}

// broadcasted reports a broadcast to Observer.OnBroadcast.
func (n *Namespace) broadcasted() {
	if fn := n.srv.opts.Load().Observer.OnBroadcast; fn != nil {
		fn(n)
	}
}

// ackTimedOut reports an acknowledgement timeout to Observer.OnAckTimeout.
func (n *Namespace) ackTimedOut() {
	if fn := n.srv.opts.Load().Observer.OnAckTimeout; fn != nil {
		fn(n)
	}
}

func (n *Namespace) runMiddlewares(s *Socket) (err error) {
	n.mu.RLock()
	mws := n.middlewares
	n.mu.RUnlock()
	defer func() {
		if r := recover(); r != nil {
			n.srv.logger().Error("middleware panicked",
				zap.String("namespace", n.name), zap.Any("panic", r))
			err = errors.New("server error")
		}
	}()
	for _, m := range mws {
		if err := m(s); err != nil {
			return err
		}
	}
	return nil
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

func (n *Namespace) fireConnection(s *Socket) {
	n.mu.RLock()
	fns := n.onConnection
	n.mu.RUnlock()
	for _, fn := range fns {
		if !s.Connected() {
			return
		}
		s.safeCall("connection", func() { fn(s) })
	}
}

// String implements fmt.Stringer.
func (n *Namespace) String() string { return fmt.Sprintf("namespace %s", n.name) }
