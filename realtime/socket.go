package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// EventHandler handles one client event. args are the event's arguments as
// decoded JSON (numbers are json.Number, objects map[string]any, arrays
// []any, binary attachments []byte). ack is nil unless the client asked for
// an acknowledgement.
type EventHandler func(s *Socket, args []any, ack AckFunc)

// AnyHandler is a catch-all EventHandler that also gets the event name.
type AnyHandler func(s *Socket, event string, args []any, ack AckFunc)

// AckFunc answers a client's acknowledgement request. It sends once; a later
// call returns ErrAckUsed.
type AckFunc func(args ...any) error

// A Socket's lifecycle, its state: socketConnecting while its CONNECT is
// in the middlewares (it may join rooms), socketConnected once CONNECT is
// answered (it may send, and wait for acknowledgements), socketClosed once
// it is disconnected or was refused (it may do neither, nor join rooms
// again). It only moves forward, by CompareAndSwap: connect (connecting to
// connected), refuse (connecting to closed) and claimClose (connected to
// closed, once: the caller that wins then runs finishClose).
const (
	socketConnecting int32 = iota
	socketConnected
	socketClosed
)

// Socket is one client in one namespace. A connection (Engine.IO session)
// holds one Socket per namespace it joined.
type Socket struct {
	id        string
	nsp       *Namespace
	conn      *conn
	auth      map[string]any // the CONNECT payload, for Handshake
	since     int64          // when it connected, Unix nanoseconds
	pid       string         // the recovery session's private id; "" when recovery is off
	recovered bool           // a recovered session (set before it connects)
	onWS      bool           // counted in its namespace's webSockets; guarded by conn.mu

	state atomic.Int32 // socketConnecting, then socketConnected, then socketClosed

	limiter *eventLimiter // nil when the event limit is off; reader goroutine only
	joinMu  sync.Mutex    // serializes Join's count and add on adapters that are not BoundedAdders

	mu           sync.Mutex
	handlers     map[string]EventHandler
	anyHandlers  []AnyHandler
	onDisconnect []func(*Socket, string)
	acks         map[int64]func([]any, error)
	holds        []func() // Hold: run when the socket is done
	data         map[string]any
	local        any // the embedding application's own value (SetLocal)
	presence     string
	// ctx ends when the socket does (Context); made on the first call, so
	// that a socket nobody asks holds none. done: the socket ended, a
	// later Context is born cancelled.
	ctx    context.Context
	cancel context.CancelFunc
	done   bool
}

func newSocket(n *Namespace, c *conn, auth map[string]any) *Socket {
	s := &Socket{
		id:    socketID(c, n.name),
		nsp:   n,
		conn:  c,
		auth:  auth,
		since: time.Now().UnixNano(),
	}
	if o := c.opts; o.rateLimited() {
		s.limiter = newEventLimiter(o.EventRate, o.EventBurst, time.Now())
	}
	if o, _ := n.srv.recovery(); o != nil {
		s.pid = newID()
	}
	return s
}

// ID is the socket's id, 20 characters of base64url like Node's. It is also
// the name of a room that holds only this socket.
func (s *Socket) ID() string { return s.id }

// Namespace is the namespace the socket belongs to.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake describes how the socket connected. It is built anew on each
// call from what the connection keeps of its handshake request (no
// request, header map or parsed query stays with an idle socket), so a
// caller may change it freely: that changes nothing for later calls.
func (s *Socket) Handshake() *Handshake {
	return newHandshake(s.conn.sess.Request(), s.auth, time.Unix(0, s.since))
}

// Transport is the connection's current transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.conn.sess.Transport() }

// Context is a context that ends when the socket disconnects (or is
// refused): for work done on the socket's behalf that must not outlive it.
// It carries no values, and is not the handshake request's context.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.done {
			s.cancel()
		}
	}
	return s.ctx
}

// endContext ends the socket's Context, and any made later.
func (s *Socket) endContext() {
	s.mu.Lock()
	s.done = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.state.Load() == socketConnected }

// SessionID is the id of the Engine.IO connection carrying the socket.
func (s *Socket) SessionID() string { return s.conn.sess.ID() }

// On sets the handler of a client event, replacing any earlier one.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler)
	}
	s.handlers[event] = h
}

// OnAny adds a catch-all handler, called for every client event before the
// event's own handler. Only the event's own handler, or else the first
// catch-all, receives the ack.
func (s *Socket) OnAny(h AnyHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anyHandlers = append(s.anyHandlers, h)
}

// OnDisconnect adds a function called once when the socket disconnects, with
// the reason as Node names it ("client namespace disconnect", "server
// namespace disconnect", "transport close", "ping timeout", "server shutting
// down", ...). It runs before the socket leaves its rooms.
func (s *Socket) OnDisconnect(fn func(s *Socket, reason string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDisconnect = append(s.onDisconnect, fn)
}

// Set stores a value in the socket's data (socket.data in Node).
func (s *Socket) Set(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = make(map[string]any)
	}
	s.data[key] = v
}

// Get reads a value of the socket's data.
func (s *Socket) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v, ok
}

// Data returns a copy of the socket's data.
func (s *Socket) Data() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.data)
}

// SetLocal stores the embedding application's own value for this socket
// (one value; a struct of its own, typically). Unlike Set, it is not part
// of Data or Info, so it is never listed, serialised or sent to another
// node: it is the place for state such as timers, queues or secrets.
func (s *Socket) SetLocal(v any) {
	s.mu.Lock()
	s.local = v
	s.mu.Unlock()
}

// Local returns the value given to SetLocal, or nil.
func (s *Socket) Local() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// SetPresence records the key (a user) the socket counts for in a
// presence tracker; Info carries it, to this node's listings and to the
// other nodes'.
func (s *Socket) SetPresence(key string) {
	s.mu.Lock()
	s.presence = key
	s.mu.Unlock()
}

// Presence is the key given to SetPresence, or "".
func (s *Socket) Presence() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

// Info describes the socket; its JSON is Node's fetchSockets shape (see
// SocketInfo, and Handshake's MarshalJSON for what it leaves out).
func (s *Socket) Info() SocketInfo {
	return SocketInfo{
		ID:        s.id,
		Namespace: s.nsp.name,
		Rooms:     s.Rooms(),
		Handshake: s.Handshake(),
		Data:      s.Data(),
		Transport: s.Transport(),
		Presence:  s.Presence(),
	}
}

// Join puts the socket in rooms. A middleware may call it before the socket
// is connected; a refused socket leaves them again.
//
// Join is all or nothing: it joins no room and returns an error wrapping
// ErrRoomNameTooLong when a name is longer than Options.MaxRoomNameLength,
// or ErrTooManyRooms when the socket would be in more than
// Options.MaxRoomsPerSocket rooms (its own id-room is not counted, nor are
// rooms it is already in: joining those again is a no-op). A socket that
// has disconnected joins nothing and gets ErrSocketClosed.
func (s *Socket) Join(rooms ...string) error {
	if len(rooms) == 0 {
		return nil
	}
	if s.state.Load() == socketClosed {
		return fmt.Errorf("joining rooms: %w", ErrSocketClosed)
	}
	o := s.conn.opts
	for _, r := range rooms {
		if over(len(r), o.MaxRoomNameLength) {
			s.limited(LimitRooms)
			return fmt.Errorf("joining room %q: %w (%d bytes, at most %d)",
				utf8cut.Cut(r, 64), ErrRoomNameTooLong, len(r), o.MaxRoomNameLength)
		}
	}
	var err error
	if a, ok := s.nsp.adapter.(BoundedAdder); ok {
		err = a.AddAllBounded(s.id, rooms, o.MaxRoomsPerSocket)
	} else {
		err = s.joinOther(rooms, o.MaxRoomsPerSocket)
	}
	if err != nil {
		s.limited(LimitRooms)
		return err
	}
	if s.state.Load() == socketClosed {
		s.nsp.adapter.DelAll(s.id) // lost a race with onClose
		return fmt.Errorf("joining rooms: %w", ErrSocketClosed)
	}
	return nil
}

// joinOther counts and joins on an adapter that cannot bound the count
// itself; joinMu keeps two Joins of the socket from passing the same count.
func (s *Socket) joinOther(rooms []string, limit int) error {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if limit >= 0 {
		have := make(map[string]struct{})
		for _, r := range s.nsp.adapter.SocketRooms(s.id) {
			if r != s.id {
				have[r] = struct{}{}
			}
		}
		n := len(have)
		for _, r := range rooms {
			if _, in := have[r]; !in && r != s.id {
				have[r] = struct{}{}
				n++
			}
		}
		if n > limit {
			return tooManyRooms(n, limit)
		}
	}
	s.nsp.adapter.AddAll(s.id, rooms)
	return nil
}

func tooManyRooms(n, limit int) error {
	return fmt.Errorf("joining rooms: %w (%d, at most %d)", ErrTooManyRooms, n, limit)
}

// Leave takes the socket out of room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Del(s.id, room) }

// Rooms lists the socket's rooms, its own id-room included.
func (s *Socket) Rooms() []string { return s.nsp.adapter.SocketRooms(s.id) }

// To broadcasts to rooms, without this socket.
func (s *Socket) To(rooms ...string) BroadcastOperator {
	return s.Broadcast().To(rooms...)
}

// In is the same as To.
func (s *Socket) In(rooms ...string) BroadcastOperator { return s.To(rooms...) }

// Except broadcasts to everyone in the namespace but this socket and the
// sockets in rooms.
func (s *Socket) Except(rooms ...string) BroadcastOperator {
	return s.Broadcast().Except(rooms...)
}

// Broadcast is everyone in the namespace but this socket.
func (s *Socket) Broadcast() BroadcastOperator {
	return BroadcastOperator{nsp: s.nsp, except: []string{s.id}}
}

// Emit sends an event to the client. []byte arguments go as binary
// attachments. It never blocks; a client whose queue is full is disconnected.
func (s *Socket) Emit(event string, args ...any) error {
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("emitting %q: %w", event, ErrReservedEvent)
	}
	p := eventPacket(s.nsp.name, parser.NoID, event, args)
	var err error
	if st := s.nsp.recordStore(BroadcastFlags{}); st != nil {
		err = s.sendRecorded(st, p)
	} else {
		err = s.send(p)
	}
	if err != nil {
		return err
	}
	s.sentEvent(p)
	return nil
}

// sentEvent tells the Watcher that the event packet p was queued for s.
func (s *Socket) sentEvent(p *parser.Packet) {
	if w := s.nsp.srv.watcher(); w != nil {
		data, _ := p.Data.([]any)
		w.EventSent(s, data)
	}
}

// EmitWithAck sends an event and waits for the client's acknowledgement, until
// ctx ends (ErrAckTimeout when its deadline passed) or the socket
// disconnects (ErrSocketClosed).
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	type reply struct {
		args []any
		err  error
	}
	ch := make(chan reply, 1)
	id, err := s.emitWithAckFunc(event, args, func(a []any, err error) { ch <- reply{a, err} })
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		s.removeAck(id)
		if ctx.Err() == context.DeadlineExceeded {
			s.nsp.ackTimedOut()
			return nil, ErrAckTimeout
		}
		return nil, ctx.Err()
	}
}

// EmitWithAckFunc sends an event and calls fn once with the client's answer,
// or with ErrAckTimeout after timeout (no timeout when it is zero), or with
// ErrSocketClosed when the socket disconnects first. fn runs on the
// connection's reader goroutine or on a timer's goroutine.
func (s *Socket) EmitWithAckFunc(timeout time.Duration, event string, args []any, fn func(args []any, err error)) error {
	var (
		mu    sync.Mutex
		timer stopTimer
		done  bool
	)
	call := func(a []any, err error) {
		mu.Lock()
		if done {
			mu.Unlock()
			return
		}
		done = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		fn(a, err)
	}
	id, err := s.emitWithAckFunc(event, args, call)
	if err != nil {
		return err
	}
	if timeout > 0 {
		mu.Lock()
		if !done {
			timer = s.conn.opts.clock.AfterFunc(timeout, func() {
				if s.removeAck(id) {
					s.nsp.ackTimedOut()
					call(nil, ErrAckTimeout)
				}
			})
		}
		mu.Unlock()
	}
	return nil
}

func (s *Socket) emitWithAckFunc(event string, args []any, fn func([]any, error)) (int64, error) {
	if parser.IsReservedEvent(event) {
		return 0, fmt.Errorf("emitting %q: %w", event, ErrReservedEvent)
	}
	id := s.nsp.nextAckID()
	if err := s.registerAck(id, fn); err != nil {
		return 0, err
	}
	p := eventPacket(s.nsp.name, id, event, args)
	if err := s.send(p); err != nil {
		s.removeAck(id)
		return 0, err
	}
	s.sentEvent(p)
	return id, nil
}

// addAck registers an answer callback; false when the socket is gone or
// already has MaxPendingAcks (see registerAck).
func (s *Socket) addAck(id int64, fn func([]any, error)) bool {
	return s.registerAck(id, fn) == nil
}

// registerAck registers an answer callback: ErrSocketClosed when the socket
// is gone, ErrTooManyPendingAcks when it already has MaxPendingAcks.
func (s *Socket) registerAck(id int64, fn func([]any, error)) error {
	s.mu.Lock()
	if !s.Connected() {
		s.mu.Unlock()
		return ErrSocketClosed
	}
	if over(len(s.acks)+1, s.conn.opts.MaxPendingAcks) {
		s.mu.Unlock()
		s.limited(LimitPendingAcks)
		s.nsp.srv.logLimit(gatePendingAcks, "emit refused: "+ErrTooManyPendingAcks.Error(),
			zap.String("socket", s.id), zap.String("namespace", s.nsp.name),
			zap.Int("max_pending_acks", s.conn.opts.MaxPendingAcks))
		return ErrTooManyPendingAcks
	}
	if s.acks == nil {
		s.acks = make(map[int64]func([]any, error))
	}
	s.acks[id] = fn
	s.mu.Unlock()
	return nil
}

// removeAck forgets an answer callback; true when it was still waiting.
func (s *Socket) removeAck(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.acks[id]
	delete(s.acks, id)
	return ok
}

// Disconnect sends the client a DISCONNECT for this namespace and drops the
// socket. With close, every socket of the connection is disconnected that
// way and the connection is closed, as Node's disconnect(true) does: the
// client sees "io server disconnect" everywhere and does not reconnect.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.conn.disconnectAll()
		return
	}
	s.disconnect()
}

func (s *Socket) disconnect() {
	if !s.claimClose() {
		return
	}
	s.writeDisconnect()
	s.finishClose("server namespace disconnect")
}

// writeDisconnect queues the DISCONNECT packet of a socket whose close was
// claimed (so send, which wants a connected socket, would refuse).
func (s *Socket) writeDisconnect() {
	_ = s.conn.write(mustEncode(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name, ID: parser.NoID}))
}

// send encodes p and queues it for this socket alone.
func (s *Socket) send(p *parser.Packet) error {
	msgs, err := encodePacket(p, false)
	if err != nil {
		return err
	}
	if !s.Connected() {
		return ErrSocketClosed
	}
	return s.conn.write(msgs)
}

// writeMessages queues already encoded messages (of a broadcast); false when
// nothing was queued.
func (s *Socket) writeMessages(msgs []*engineio.Message, volatile bool) bool {
	if !s.Connected() {
		return false
	}
	if volatile && !s.conn.sess.Writable() {
		return false
	}
	return s.conn.write(msgs) == nil
}

// onPacket handles a packet for this socket. It runs on the reader goroutine.
func (s *Socket) onPacket(p *parser.Packet) {
	switch p.Type {
	case parser.Event, parser.BinaryEvent:
		s.onEvent(p)
	case parser.Ack, parser.BinaryAck:
		s.mu.Lock()
		fn := s.acks[p.ID]
		delete(s.acks, p.ID)
		s.mu.Unlock()
		if fn == nil {
			// An ack nothing waits for (a late answer, or a flood) is
			// dropped and counts against the event rate, as an event
			// would: only answers to the server's own requests are free.
			s.limitEvent()
			return
		}
		args, _ := p.Data.([]any)
		fn(args, nil)
	case parser.Disconnect:
		s.onClose("client namespace disconnect")
	}
}

func (s *Socket) onEvent(p *parser.Packet) {
	all, _ := p.Data.([]any)
	if len(all) == 0 {
		return
	}
	if !s.limitEvent() {
		if p.ID != parser.NoID {
			s.ackError(p.ID, errRateLimited)
		}
		return
	}
	event := eventName(all[0])
	if limit := s.conn.opts.MaxEventNameLength; over(len(event), limit) {
		if ce := s.nsp.srv.logger().Check(zap.DebugLevel, "event dropped: "+errEventNameTooLong); ce != nil {
			ce.Write(zap.String("socket", s.id), zap.String("namespace", s.nsp.name),
				zap.String("event", utf8cut.Cut(event, 64)), zap.Int("bytes", len(event)), zap.Int("max", limit))
		}
		s.limited(LimitEventName)
		if p.ID != parser.NoID {
			s.ackError(p.ID, errEventNameTooLong)
		}
		return
	}
	if w := s.nsp.srv.watcher(); w != nil {
		w.EventReceived(s, all)
	}
	args := all[1:]
	var ack AckFunc
	if p.ID != parser.NoID {
		ack = s.ackFunc(p.ID)
	}
	s.mu.Lock()
	anys := s.anyHandlers
	h := s.handlers[event]
	s.mu.Unlock()
	for i, fn := range anys {
		var a AckFunc
		if h == nil && i == 0 {
			a = ack
		}
		s.safeCall(event, func() { fn(s, event, args, a) })
	}
	if h != nil {
		s.safeCall(event, func() { h(s, args, ack) })
	}
}

// safeCall runs a user handler; a panic is logged and closes the connection
// instead of killing the process.
func (s *Socket) safeCall(event string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.nsp.srv.logger().Error("handler panicked",
				zap.String("namespace", s.nsp.name), zap.String("socket", s.id),
				zap.String("event", event), zap.Any("panic", r))
			s.conn.sess.Close("server error")
		}
	}()
	fn()
}

func eventName(v any) string {
	switch n := v.(type) {
	case string:
		return n
	case json.Number:
		return n.String()
	default:
		return fmt.Sprint(n)
	}
}

func (s *Socket) ackFunc(id int64) AckFunc {
	var used atomic.Bool
	return func(args ...any) error {
		if used.Swap(true) {
			return ErrAckUsed
		}
		if args == nil {
			args = []any{}
		}
		return s.send(&parser.Packet{Type: parser.Ack, Namespace: s.nsp.name, ID: id, Data: args})
	}
}

// connect finishes a successful CONNECT: the socket joins its own room, the
// client gets CONNECT with the socket id, then connection handlers run.
func (s *Socket) connect() {
	s.state.CompareAndSwap(socketConnecting, socketConnected)
	s.trackPID()
	s.nsp.adapter.AddAll(s.id, []string{s.id})
	_ = s.send(&parser.Packet{Type: parser.Connect, Namespace: s.nsp.name, ID: parser.NoID,
		Data: connectReplyData(s)})
	if w := s.nsp.srv.watcher(); w != nil {
		w.SocketConnected(s)
	}
}

// refuse drops a socket that a middleware refused, with any room it joined.
func (s *Socket) refuse() {
	s.state.CompareAndSwap(socketConnecting, socketClosed)
	s.nsp.adapter.DelAll(s.id)
	s.endContext()
	s.releaseHolds()
}

// onClose drops the socket once: handlers hear the reason, then it leaves
// its rooms and pending acknowledgements fail.
func (s *Socket) onClose(reason string) {
	if s.claimClose() {
		s.finishClose(reason)
	}
}

// claimClose marks a connected socket disconnected; true for the one
// caller that must then finishClose it.
func (s *Socket) claimClose() bool {
	return s.state.CompareAndSwap(socketConnected, socketClosed)
}

// finishClose runs the disconnect handlers of a claimed socket and lets it
// go: rooms, namespace (which may go too, if dynamic and now empty),
// connection, pending acknowledgements.
func (s *Socket) finishClose(reason string) {
	s.mu.Lock()
	fns := s.onDisconnect
	s.mu.Unlock()
	for _, fn := range fns {
		s.safeCall("disconnect", func() { fn(s, reason) })
	}
	if w := s.nsp.srv.watcher(); w != nil {
		w.SocketDisconnected(s, reason)
	}
	s.untrackPID()
	kept := s.sessionToKeep(reason)
	s.nsp.adapter.DelAll(s.id)
	s.nsp.srv.leaveNamespace(s.nsp, s)
	s.conn.remove(s)
	s.keepSession(kept)
	s.mu.Lock()
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	for _, fn := range acks {
		fn(nil, ErrSocketClosed)
	}
	s.endContext()
	s.releaseHolds()
	if fn := s.conn.opts.Observer.OnDisconnect; fn != nil {
		fn(s, reason)
	}
}

func eventPacket(nsp string, id int64, event string, args []any) *parser.Packet {
	data := make([]any, 0, 1+len(args))
	data = append(data, event)
	data = append(data, args...)
	return &parser.Packet{Type: parser.Event, Namespace: nsp, ID: id, Data: data}
}

// encodePacket turns a packet into Engine.IO messages: the text part, then
// one binary message per attachment. shared marks them for many recipients,
// so the WebSocket frame is prepared once.
func encodePacket(p *parser.Packet, shared bool) ([]*engineio.Message, error) {
	text, atts, err := parser.Encode(p)
	if err != nil {
		return nil, fmt.Errorf("encoding packet: %w", err)
	}
	msgs := make([]*engineio.Message, 0, 1+len(atts))
	msgs = append(msgs, engineio.TextMessage(text))
	for _, a := range atts {
		msgs = append(msgs, engineio.BinaryMessage(a))
	}
	if shared {
		for i, m := range msgs {
			msgs[i] = m.Shared()
		}
	}
	return msgs, nil
}
