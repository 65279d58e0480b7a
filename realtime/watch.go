package realtime

import (
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// Watcher is told, as it happens, what the connections and sockets of a
// Server do, with the sockets themselves: for a live view such as the admin
// UI (realtime/adminui), where Observer only counts. A Server has at most
// one Watcher (Server.Watch); without one, each place that would tell it
// costs one atomic load, so a watcher is set only while someone watches.
//
// Every method is called synchronously on the goroutine that did the work,
// with no lock of the server held, and must be quick: it may emit to other
// sockets (an admin namespace, say), which never blocks, but must not wait.
// The data slices belong to the caller: read them during the call, never
// modify or keep them.
type Watcher interface {
	// ConnOpened: an Engine.IO connection opened over transport.
	ConnOpened(transport string)
	// ConnClosed: a connection began closing, with its Engine.IO reason.
	ConnClosed(reason string)
	// PacketReceived: a message packet holding n bytes of data came in.
	PacketReceived(n int)
	// PacketsSent: packets message packets holding n bytes of data in all
	// were queued for a client.
	PacketsSent(packets, n int)

	// SocketConnected: s got its CONNECT answer; called before the
	// namespace's connection handlers run.
	SocketConnected(s *Socket)
	// SocketUpgraded: the connection carrying s switched to WebSocket.
	SocketUpgraded(s *Socket)
	// SocketDisconnected: s disconnected, with the reason its disconnect
	// handlers got; called after them, before s leaves its rooms.
	SocketDisconnected(s *Socket, reason string)
	// RoomJoined: socket id joined room in n (its own id-room included,
	// when the adapter first sees the socket). Only changes are told: a
	// socket joining a room it is in is not. Told by MemoryAdapter; another
	// Adapter tells it if it calls Namespace.RoomJoined.
	RoomJoined(n *Namespace, room, id string)
	// RoomLeft: socket id left room in n (on disconnect, every room,
	// its id-room included).
	RoomLeft(n *Namespace, room, id string)
	// EventReceived: s sent the event data, [name, args...], and it passed
	// the limits; called before any handler sees it.
	EventReceived(s *Socket, data []any)
	// EventSent: the event data, [name, args...], was queued for s: by
	// Emit, EmitWithAck, or a broadcast (once per socket it reached).
	EventSent(s *Socket, data []any)
}

// watcherRef boxes a Watcher for an atomic.Pointer.
type watcherRef struct{ w Watcher }

// Watch sets the Server's Watcher, replacing any other; nil removes it.
func (s *Server) Watch(w Watcher) {
	if w == nil {
		s.watch.Store(nil)
		return
	}
	s.watch.Store(&watcherRef{w: w})
}

// watcher is the current Watcher, or nil.
func (s *Server) watcher() Watcher {
	if r := s.watch.Load(); r != nil {
		return r.w
	}
	return nil
}

// RoomJoined tells the Server's Watcher that socket id joined room; for
// Adapters other than MemoryAdapter, which tells it itself.
func (n *Namespace) RoomJoined(room, id string) {
	if w := n.srv.watcher(); w != nil {
		w.RoomJoined(n, room, id)
	}
}

// RoomLeft tells the Server's Watcher that socket id left room; for
// Adapters other than MemoryAdapter.
func (n *Namespace) RoomLeft(room, id string) {
	if w := n.srv.watcher(); w != nil {
		w.RoomLeft(n, room, id)
	}
}

// watchEngine adds the Watcher's engine hooks to an engine Observer: a
// session keeps the Observer it was opened under, so the hooks look the
// Watcher up at each call, and one set after the session opened hears
// from it too.
func (s *Server) watchEngine(o engineio.Observer) engineio.Observer {
	open, closing, recv, sent := o.OnOpen, o.OnClose, o.OnReceived, o.OnSent
	o.OnOpen = func(transport string) {
		if open != nil {
			open(transport)
		}
		if w := s.watcher(); w != nil {
			w.ConnOpened(transport)
		}
	}
	o.OnClose = func(reason string) {
		if closing != nil {
			closing(reason)
		}
		if w := s.watcher(); w != nil {
			w.ConnClosed(reason)
		}
	}
	o.OnReceived = func(n int) {
		if recv != nil {
			recv(n)
		}
		if w := s.watcher(); w != nil {
			w.PacketReceived(n)
		}
	}
	o.OnSent = func(packets, n int) {
		if sent != nil {
			sent(packets, n)
		}
		if w := s.watcher(); w != nil {
			w.PacketsSent(packets, n)
		}
	}
	return o
}

// PollingConnCount is the number of open connections on polling (not
// upgraded to WebSocket).
func (s *Server) PollingConnCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns) - s.wsConns
}

// OnUpgrade implements engineio.UpgradeHandler: the sockets of the
// connection count as WebSocket sockets from now on, and tell the Watcher
// that their transport changed.
func (c *conn) OnUpgrade() {
	c.srv.mu.Lock()
	if _, ok := c.srv.conns[c]; ok && !c.onWS {
		c.onWS = true
		c.srv.wsConns++
	}
	c.srv.mu.Unlock()
	c.mu.Lock()
	for _, s := range c.sockets {
		s.countWebSocketLocked()
	}
	c.mu.Unlock()
	w := c.srv.watcher()
	if w == nil {
		return
	}
	for _, s := range c.socketList() {
		if s.Connected() {
			w.SocketUpgraded(s)
		}
	}
}

// Interface guards
var _ engineio.UpgradeHandler = (*conn)(nil)
