package realtime

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
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

	mu           sync.RWMutex
	sockets      map[string]*Socket
	middlewares  []Middleware
	onConnection []func(*Socket)
}

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

func (n *Namespace) nextAckID() int64 { return n.ackIDs.Add(1) - 1 }

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
