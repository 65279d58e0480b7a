package realtime

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Connection state recovery, as socket.io 4.6+ does it (its
// connectionStateRecovery option): a socket that drops for a transport
// reason keeps its session (id, rooms, data) for a while, and a client
// that reconnects with the session's pid and the offset of the last event
// it got is given the same socket back, with every event it missed.
//
// On the wire: with recovery on, the CONNECT reply carries "pid" beside
// "sid"; every EVENT that asks no ack and is not volatile (broadcasts and
// Socket.Emit alike) carries an offset as its last argument, a string the
// client keeps (socket.io-client only takes a string last argument); the
// reconnecting client sends {"pid": ..., "offset": ..., <auth>} as its
// CONNECT payload and gets the missed events first, then the CONNECT reply
// with the same sid and pid. Clients see the offset as an extra argument
// of their listeners, as with Node.

// Recovery defaults, Node's where it has one.
const (
	// DefaultMaxDisconnectionDuration is how long a dropped socket's
	// session is kept (Node's maxDisconnectionDuration: 2 minutes).
	DefaultMaxDisconnectionDuration = 2 * time.Minute
	// DefaultRecoveryBufferBytes bounds the events one namespace keeps for
	// replay, in bytes.
	DefaultRecoveryBufferBytes = 8 << 20
	// DefaultRecoverySessionBytes bounds the sessions one namespace keeps,
	// in bytes.
	DefaultRecoverySessionBytes = 8 << 20
)

// RecoveryOptions turn connection state recovery on (Options.Recovery).
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long the session of a socket that
	// dropped is kept, and how long an event stays buffered for replay.
	// Default: 2m.
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the namespace's middlewares for a recovered
	// socket too (it has its rooms and data back when they run, and a
	// refusal loses the session). Default false: a recovered socket is
	// connected at once, as Node's skipMiddlewares (true by default) does.
	RunMiddlewares bool
	// BufferBytes bounds the events one namespace keeps, their encoding
	// and rooms counted. When a new event does not fit, the oldest are
	// dropped; a client whose offset was among them is not recovered (it
	// gets a new session, recovered false), the others are. An event
	// larger than the whole buffer empties it. Default: 8 MiB.
	BufferBytes int64
	// SessionBytes bounds the sessions one namespace keeps (ids, rooms,
	// data as JSON); over it the oldest sessions are forgotten. Default:
	// 8 MiB.
	SessionBytes int64
	// NewStore makes the store of the server's sessions and events.
	// Default: NewMemoryRecoveryStore, this process only.
	NewStore func(RecoveryOptions) RecoveryStore
}

func (o RecoveryOptions) withDefaults() RecoveryOptions {
	if o.MaxDisconnectionDuration <= 0 {
		o.MaxDisconnectionDuration = DefaultMaxDisconnectionDuration
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = DefaultRecoveryBufferBytes
	}
	if o.SessionBytes <= 0 {
		o.SessionBytes = DefaultRecoverySessionBytes
	}
	if o.NewStore == nil {
		o.NewStore = func(o RecoveryOptions) RecoveryStore { return NewMemoryRecoveryStore(o) }
	}
	return o
}

// RecoverySession is what is kept of a socket that dropped.
type RecoverySession struct {
	Namespace string
	// ID is the socket id, PID the private id the client proves the
	// session with.
	ID, PID string
	// Rooms are the socket's rooms, its id-room included.
	Rooms []string
	// Data is the socket's data (Socket.Set).
	Data map[string]any
	// Local is the embedding application's value (Socket.SetLocal). A
	// store that serialises sessions (on Redis) cannot keep it: it must
	// then be rebuilt from Data by the application.
	Local any
	// DisconnectedAt is when the socket dropped.
	DisconnectedAt time.Time
}

// RecoveryStore keeps the sessions of dropped sockets and the events they
// may have missed. The memory store serves one process; a cluster store
// (Redis Streams, as @socket.io/redis-streams-adapter) implements the
// same methods with the events and sessions shared by the nodes. Its
// methods are called with no lock of the server held, but a namespace's
// Append, Missed and the delivery of the event are serialised (see
// Namespace.recMu), so they must not block for long.
type RecoveryStore interface {
	// Append gives an event of namespace nsp its offset, stores it for the
	// sockets opts selects and returns its messages: encode makes them,
	// with the offset as the event's last argument.
	Append(nsp string, opts BroadcastOptions, encode func(offset string) ([]*engineio.Message, error)) ([]*engineio.Message, error)
	// Save keeps the session of a socket that dropped, for
	// MaxDisconnectionDuration.
	Save(sess *RecoverySession)
	// Take removes and returns the session pid of namespace nsp if it
	// dropped less than MaxDisconnectionDuration ago and the events after
	// offset are all still buffered; else it returns false and keeps it.
	Take(nsp, pid, offset string) (*RecoverySession, bool)
	// Missed returns, in order, the messages of the events after offset
	// that a socket in rooms would have got; false when some of them are
	// no longer buffered.
	Missed(nsp, offset string, rooms []string) ([][]*engineio.Message, bool)
	// Close releases the store (its timer).
	Close() error
}

// RecordingAdapter is an Adapter that records events in its cluster's
// recovery store itself and delivers them, on every node, in the store's
// order (redisadapter with its RecoveryStore). The namespace hands it the
// events that get an offset instead of calling RecoveryStore.Append.
type RecordingAdapter interface {
	// BroadcastRecorded stores event p for the sockets opts selects, gives
	// it its offset (as its last argument) and sends it to them on every
	// node. False when the adapter does not record (no store): the
	// namespace then records the event itself.
	BroadcastRecorded(p *parser.Packet, opts BroadcastOptions) (bool, error)
}

// WithRecoveryLock runs f under the namespace's recovery lock, which
// orders recorded events with the replay of a recovered socket: a
// recording adapter delivers its events under it (a recovered socket then
// gets each event either in its replay or live, once).
func (n *Namespace) WithRecoveryLock(f func()) {
	n.recMu.Lock()
	defer n.recMu.Unlock()
	f()
}

// offsetKnower is a RecoveryStore that can tell cheaply whether an offset
// is one it can replay from.
type offsetKnower interface {
	Knows(nsp, offset string) bool
}

// knowsOffset reports whether st can replay from offset.
func knowsOffset(st RecoveryStore, nsp, offset string) bool {
	if k, ok := st.(offsetKnower); ok {
		return k.Knows(nsp, offset)
	}
	_, ok := st.Missed(nsp, offset, nil)
	return ok
}

// recoverableReasons are the disconnect reasons after which a session is
// kept: the transport went, not the client or the server's decision
// (Node's RECOVERABLE_DISCONNECT_REASONS).
var recoverableReasons = map[string]bool{
	engineio.ReasonTransportError: true,
	engineio.ReasonTransportClose: true,
	engineio.ReasonForcedClose:    true,
	engineio.ReasonPingTimeout:    true,
	ReasonServerShutdown:          true,
	"forced server close":         true,
}

// IsRecoverable reports whether a socket that disconnected for reason
// keeps its session when recovery is on.
func IsRecoverable(reason string) bool { return recoverableReasons[reason] }

// recovery is the server's recovery options and store, or nil when it is
// off. The store is made with the first options that turn recovery on
// and kept (with its sessions) when a reload turns it off and on again.
func (s *Server) recovery() (*RecoveryOptions, RecoveryStore) {
	o := s.opts.Load().Recovery
	if o == nil {
		return nil, nil
	}
	ref := s.recStore.Load()
	if ref == nil || ref.store == nil {
		return nil, nil // closed
	}
	return o, ref.store
}

// setupRecovery makes the store when opts turn recovery on first, and
// hands later options (a reload) to a store that takes them.
func (s *Server) setupRecovery(opts *Options) {
	if opts.Recovery == nil {
		return
	}
	if ref := s.recStore.Load(); ref != nil {
		if st, ok := ref.store.(interface{ SetOptions(RecoveryOptions) }); ok {
			st.SetOptions(*opts.Recovery)
		}
		return
	}
	s.recStore.CompareAndSwap(nil, &recoveryStoreRef{store: opts.Recovery.NewStore(*opts.Recovery)})
}

// closeRecovery closes the store, if any.
func (s *Server) closeRecovery() {
	if ref := s.recStore.Swap(&recoveryStoreRef{}); ref != nil && ref.store != nil {
		if err := ref.store.Close(); err != nil {
			s.logger().Warn("closing the recovery store", zap.Error(err))
		}
	}
}

// recoveryStoreRef boxes the store for an atomic pointer; a nil store is
// a closed server's.
type recoveryStoreRef struct{ store RecoveryStore }

// KeptForRecovery reports whether a socket that disconnects for reason
// keeps its session: recovery is on and the reason is recoverable. A
// disconnect handler can tell a socket that may come back from one that
// is gone.
func (s *Socket) KeptForRecovery(reason string) bool {
	o, _ := s.nsp.srv.recovery()
	return o != nil && s.pid != "" && IsRecoverable(reason)
}

// Recovered reports whether the socket is a session recovered by its
// client (same id, rooms and data; missed events replayed).
func (s *Socket) Recovered() bool { return s.recovered }

// recorded reports whether an emit with these flags gets an offset and is
// kept for replay: recovery on, no ack, not volatile (the same rule as
// Node's SessionAwareAdapter).
func (n *Namespace) recordStore(flags BroadcastFlags) RecoveryStore {
	if flags.Volatile {
		return nil
	}
	_, st := n.srv.recovery()
	return st
}

// withOffset returns a copy of an event packet with offset appended to
// its arguments.
func withOffset(p *parser.Packet, offset string) *parser.Packet {
	q := *p
	data, _ := p.Data.([]any)
	q.Data = append(slices.Clip(data), offset)
	return &q
}

// broadcastRecorded stores an event and broadcasts it with its offset.
// recMu makes the order of a namespace's events in the store the order
// its sockets receive them in, which replaying "what came after the
// offset" relies on.
func (n *Namespace) broadcastRecorded(st RecoveryStore, p *parser.Packet, opts BroadcastOptions) error {
	if ra, ok := n.adapter.(RecordingAdapter); ok {
		if done, err := ra.BroadcastRecorded(p, opts); done {
			return err
		}
	}
	n.recMu.Lock()
	defer n.recMu.Unlock()
	var sent *parser.Packet
	if _, err := st.Append(n.name, opts, func(offset string) ([]*engineio.Message, error) {
		sent = withOffset(p, offset)
		return encodePacket(sent, false)
	}); err != nil {
		return fmt.Errorf("recording event for recovery: %w", err)
	}
	return n.adapter.Broadcast(sent, opts)
}

// sendRecorded stores an event for one socket (its id-room) and queues it
// with its offset, as Node routes socket.emit through the adapter when
// recovery is on.
func (s *Socket) sendRecorded(st RecoveryStore, p *parser.Packet) error {
	if !s.Connected() {
		return ErrSocketClosed
	}
	n := s.nsp
	if ra, ok := n.adapter.(RecordingAdapter); ok {
		if done, err := ra.BroadcastRecorded(p, BroadcastOptions{Rooms: []string{s.id}}); done {
			return err
		}
	}
	n.recMu.Lock()
	defer n.recMu.Unlock()
	msgs, err := st.Append(n.name, BroadcastOptions{Rooms: []string{s.id}}, func(offset string) ([]*engineio.Message, error) {
		return encodePacket(withOffset(p, offset), false)
	})
	if err != nil {
		return fmt.Errorf("recording event for recovery: %w", err)
	}
	if !s.Connected() {
		return ErrSocketClosed
	}
	return s.conn.write(msgs)
}

// sessionToKeep is what a socket that disconnects for reason leaves for
// its client to recover, or nil. It is read before the socket leaves its
// rooms and saved once it has (keepSession), so that a client quick to
// come back is not taken out of the rooms it got back.
func (s *Socket) sessionToKeep(reason string) *RecoverySession {
	if !s.KeptForRecovery(reason) {
		return nil
	}
	return &RecoverySession{
		Namespace:      s.nsp.name,
		ID:             s.id,
		PID:            s.pid,
		Rooms:          s.Rooms(),
		Data:           s.Data(),
		Local:          s.Local(),
		DisconnectedAt: time.Now(),
	}
}

// keepSession saves a session from sessionToKeep.
func (s *Socket) keepSession(sess *RecoverySession) {
	if sess == nil {
		return
	}
	if _, st := s.nsp.srv.recovery(); st != nil {
		st.Save(sess)
	}
}

// recoverSession finds the session a CONNECT's auth payload asks for:
// string "pid" and "offset" naming a session still kept whose missed
// events are all buffered. Nil otherwise: the socket is new.
func (c *conn) recoverSession(n *Namespace, auth map[string]any) (*RecoverySession, string) {
	o, st := c.srv.recovery()
	if o == nil {
		return nil, ""
	}
	pid, ok1 := auth["pid"].(string)
	offset, ok2 := auth["offset"].(string)
	if !ok1 || !ok2 {
		return nil, ""
	}
	sess, ok := st.Take(n.name, pid, offset)
	if !ok && (c.takeOver(n, st, pid, offset) || remoteTakeOver(st, n.name, pid, offset)) {
		sess, ok = st.Take(n.name, pid, offset)
	}
	if !ok || sess.ID == "" || sess.Namespace != n.name {
		return nil, ""
	}
	if _, live := n.Socket(sess.ID); live {
		return nil, "" // a socket with the id is connected: never two
	}
	return sess, offset
}

// restoredSocket is the socket of a recovered session, in its rooms again
// (before the middlewares, as Node), with its data and local value.
func restoredSocket(n *Namespace, c *conn, auth map[string]any, sess *RecoverySession) *Socket {
	s := newSocket(n, c, auth)
	s.id, s.pid = sess.ID, sess.PID
	s.data = maps.Clone(sess.Data)
	s.local = sess.Local
	s.recovered = true // what middlewares see; connectRecovered has the last word
	n.adapter.AddAll(s.id, sess.Rooms)
	return s
}

// connectRecovered connects a restored socket: under the namespace's
// recovery lock, the events it missed are queued first, then the CONNECT
// reply, and it is admitted so that the next event reaches it live; no
// event falls between. When the events after offset are no longer all
// buffered (the middlewares took long and the buffer moved on), the
// socket connects with a new pid, so that its client sees recovered
// false: it keeps its id and rooms but knows it may have missed events.
func (c *conn) connectRecovered(n *Namespace, s *Socket, offset string) {
	_, st := c.srv.recovery()
	n.recMu.Lock()
	defer n.recMu.Unlock()
	s.recovered = false
	if st != nil {
		rooms := s.Rooms()
		missed, ok := st.Missed(n.name, offset, rooms)
		if ok {
			s.recovered = true
			for _, msgs := range missed {
				_ = c.write(msgs)
			}
		}
		if ce := c.srv.logger().Check(zap.DebugLevel, "recovery: session restored"); ce != nil {
			ce.Write(zap.String("namespace", n.name), zap.String("socket", s.id), zap.Int("rooms", len(rooms)),
				zap.Bool("replayed", ok), zap.Int("events", len(missed)))
		}
	}
	if !s.recovered {
		s.pid = newID()
	}
	c.srv.admitNamespace(n, s)
	s.connect()
}

// connectReply is the CONNECT reply's payload: the sid, and the pid when
// recovery is on, in Node's order.
func (s *Socket) connectReply() any {
	return connectReplyPayload{Sid: s.id, Pid: s.pid}
}

type connectReplyPayload struct {
	Sid string `json:"sid"`
	Pid string `json:"pid,omitempty"`
}

// livePID keys Server.recLive.
type livePID struct{ nsp, pid string }

// trackPID makes a connected socket findable by its pid.
func (s *Socket) trackPID() {
	if s.pid != "" {
		s.nsp.srv.recLive.Store(livePID{s.nsp.name, s.pid}, s)
	}
}

// untrackPID forgets it, when it disconnects.
func (s *Socket) untrackPID() {
	if s.pid != "" {
		s.nsp.srv.recLive.CompareAndDelete(livePID{s.nsp.name, s.pid}, s)
	}
}

// remoteTaker is a cluster's RecoveryStore that can ask the other nodes to
// close a socket they still hold (its client is back on this node).
type remoteTaker interface {
	TakeOver(nsp, pid, offset string) bool
}

// remoteTakeOver asks the other nodes, when st can: true when one closed
// the socket of pid (its session is then saved).
func remoteTakeOver(st RecoveryStore, nsp, pid, offset string) bool {
	rt, ok := st.(remoteTaker)
	return ok && rt.TakeOver(nsp, pid, offset)
}

// HoldsPID reports whether this node has a connected socket of pid.
func (n *Namespace) HoldsPID(pid string) bool {
	v, ok := n.srv.recLive.Load(livePID{n.name, pid})
	return ok && v.(*Socket).Connected()
}

// CloseForRecovery closes this node's connected socket of pid, if any, as
// its transport had closed (its session is kept): another node asks, its
// client being back there with the pid and an offset the store holds.
// The pid is the credential, as for takeOver.
func (n *Namespace) CloseForRecovery(pid string) bool {
	v, ok := n.srv.recLive.Load(livePID{n.name, pid})
	if !ok {
		return false
	}
	old := v.(*Socket)
	if !old.Connected() {
		return false
	}
	if ce := n.srv.logger().Check(zap.DebugLevel, "recovery: the client is back on another node; closing its old socket"); ce != nil {
		ce.Write(zap.String("namespace", n.name), zap.String("socket", old.id), zap.Int("rooms", len(old.Rooms())))
	}
	old.onClose(engineio.ReasonTransportClose)
	return true
}

// takeOver handles a client that comes back with the pid of a socket the
// server still holds on another connection: its old transport is dead but
// not seen to be yet (a polling client between requests, a network that
// vanished without a FIN: only the heartbeat would tell, pingInterval +
// pingTimeout later). Node gives such a client a new session; here, when
// the offset is one the store can replay from, the old socket is closed
// as "transport close" (its session is then kept) so that the caller can
// take the session. The pid is the credential either way: only its client
// was given it. True when a socket was closed.
func (c *conn) takeOver(n *Namespace, st RecoveryStore, pid, offset string) bool {
	v, ok := c.srv.recLive.Load(livePID{n.name, pid})
	if !ok {
		return false
	}
	old := v.(*Socket)
	if old.conn == c || !old.Connected() {
		return false
	}
	if !knowsOffset(st, n.name, offset) {
		return false // a bogus or too old offset closes nothing
	}
	if ce := c.srv.logger().Check(zap.DebugLevel, "recovery: the client is back on a new connection; closing its old socket"); ce != nil {
		ce.Write(zap.String("namespace", n.name), zap.String("socket", old.id), zap.String("old_sid", old.conn.sess.ID()), zap.String("sid", c.sess.ID()))
	}
	old.onClose(engineio.ReasonTransportClose)
	return true
}
