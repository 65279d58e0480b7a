package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Session state machine and invariants.
//
// Guards. Set by newSession and never changed: id, srv, cfg, hs, log and
// the pollNotify channel (only for a session that starts on polling: nil,
// a signal to it is a no-op). wsNotify is made, under Session.mu, by
// wakeWriterLocked for each writer goroutine it starts (which is handed
// it) and set to nil when that writer ends idle; done is made by the
// first Done call, under Session.mu. recvMu is held for each
// delivery (deliver), so OnMessage calls never overlap. Session.mu
// guards every other field: the handler, the transport and the upgrade
// (onWS, ws, probe, probed), the queue and backlog (queue,
// queuedBytes, writingBytes, slowSince, slowTimer), who is using the
// session (getActive, postActive, wsLive, writing, delivering), the
// heartbeat (hbDeadline, awaitingPong, extended; hbSlot is the heap's,
// under beats.mu: heartbeat.go) and the close
// (closed, kind, reason, onClose, lingering, lingerTimer, finalized).
// kind and reason are written once, with closed, and not changed after.
//
// Lock order: recvMu, then Session.mu, then Server.mu (wakeWriterLocked
// and closeWith call srv.track under Session.mu). Nothing takes a
// Session.mu while holding Server.mu: the server snapshots its sessions
// and acts on them unlocked. No engine lock is held while the handler
// runs, except recvMu around OnMessage and around an OnClose that deliver
// runs. Network writes happen outside Session.mu, except a direct write
// (direct.go): one non-blocking write system call, under Session.mu and
// then batchConn.mu, taken only with TryLock so that it never waits.
//
// States. Open: closed is false. Closing: closeWith set closed, once, with
// kind and reason; from then on Send and SendVolatile refuse, no delivery
// starts, the heartbeat and slow-client timers are stopped (a callback
// already running sees closed and returns), and the transport writes what
// the kind owes the client. Finalized: the session had nothing left to
// do, unlockAndFinalize set finalized, removed it from the server and
// closed done. A session is finalized when it is closed, OnClose has
// returned (onClose is onCloseDone), no polling GET is waiting
// (getActive), no websocket reader or writer runs (wsLive is 0) and it is
// not lingering; whoever ends the last of these finalizes it, exactly once,
// through unlockAndFinalize, on that goroutine. A POST is not waited for:
// once the session is closed its packets are no longer delivered. A
// closed session that is not lingering is refused like an unknown sid
// (gone). The transport (onWS) goes from polling to websocket at most once, never
// back.
//
// What each close kind owes (OnClose(reason) runs exactly once for every
// kind):
//   - kindGraceful (Session.Close): queued packets are flushed, then "1";
//     a websocket then gets a close frame. A polling session hands them
//     to its pending GET, or lingers up to pollingCloseLinger for the GET
//     (or GETs, over MaxPayload) that collects them.
//   - kindShutdown (Server.Close): as graceful, without lingering: a
//     pending GET gets one last response, and what does not fit in it is
//     dropped.
//   - kindError (transport error, parse error, ping timeout): the queue is
//     dropped; a pending GET gets "1", a websocket a close frame.
//   - kindClient (the client's close packet): the queue is dropped; a
//     pending GET gets a noop; a polling session lingers
//     clientCloseLinger so that a GET racing the close packet gets that
//     noop too; a websocket gets a close frame.
//   - kindOverflow (write queue full, the client does not read): the queue
//     is dropped; a pending GET gets "1"; a websocket is closed at once,
//     nothing written (a write could block until its deadline).
//
// OnClose runs after the last OnMessage has returned: closeWith runs it
// unless a delivery is running, in which case deliver runs it once
// OnMessage returns (onClose goes none, running, done; delivering says a
// delivery is running). The goroutine is closeWith's caller's
// (onCloseHere: a request, a websocket reader or writer, the
// application's Session.Close or Server.Close), a timer's (onCloseTimer:
// slow-client grace), a new one (onCloseAsync: Send over the hard limit,
// whose caller may hold locks OnClose needs; a ping timeout, which the
// heartbeat heap finds among other sessions that are due) or the
// delivering goroutine (a websocket reader or a POST). Those off a
// request are counted in Server.active, so Server.Close waits for them.
//
// Websocket: once the session uses one (ws set, by the websocket handshake
// or by the "5" that ends an upgrade), its reader goroutine and at most
// one writer goroutine (writing) use it; wsLive counts them. The reader's
// first frame is read on the request's goroutine (readFirst) when all of
// it has arrived, and the reader is then parked at once, or handed to a
// goroutine of its own when more is buffered, the frame is not whole yet
// or the connection cannot park. Until the
// open packet is written, the handshake's goroutine holds writing. During
// an upgrade the probe belongs to serveUpgrade's goroutine, which may
// deliver client packets while polling still does too (hence recvMu).

// Handler receives what a client sends on one session.
type Handler interface {
	// OnMessage is called for each Engine.IO message packet (type 4, or
	// binary), from one goroutine at a time per session, in order. data
	// is owned by the callee.
	OnMessage(data []byte, binary bool)
	// OnClose is called exactly once, after the last OnMessage. It may run
	// inside Session.Close on the caller's goroutine. Server.Close waits,
	// within its shutdown bound, for every OnClose but those running
	// inside the application's own Session.Close calls. Reasons are Node's:
	// "transport close", "transport error", "ping timeout", "forced close",
	// "server shutting down", "parse error", "write queue full".
	OnClose(reason string)
}

// UpgradeHandler is a Handler that wants to know when its session has
// switched from polling to WebSocket. OnUpgrade runs once, on the
// upgrading request's goroutine, after the switch and before the first
// message read over the WebSocket is delivered.
type UpgradeHandler interface {
	Handler
	OnUpgrade()
}

type nopHandler struct{}

func (nopHandler) OnMessage([]byte, bool) {}
func (nopHandler) OnClose(string)         {}

// closeKind says what a closing session still owes its client.
type closeKind uint8

const (
	// kindGraceful flushes queued packets, then sends "1"; a polling
	// session without a pending GET lingers until the next one.
	kindGraceful closeKind = iota + 1
	// kindShutdown is kindGraceful without lingering (the server refuses
	// new requests anyway).
	kindShutdown
	// kindError drops the queue and sends "1" to a pending GET; a
	// websocket gets a close frame.
	kindError
	// kindClient answers a pending GET with "6": the client asked to
	// close and expects no close packet back.
	kindClient
	// kindOverflow is kindError for a client that does not read: its
	// websocket is closed at once, without writing anything.
	kindOverflow
)

// pollingCloseLinger bounds how long a gracefully closed polling session
// waits for the GET that collects its last packets and "1" (Node waits up
// to closeTimeout, 30s, for the same reason).
const pollingCloseLinger = 30 * time.Second

// clientCloseLinger: after a client's close packet over polling, a GET
// that was sent alongside it but arrived second still gets the noop it
// would have got had it arrived first; later requests get "unknown sid".
const clientCloseLinger = time.Second

// maxIdleQueueCap: a queue that grew beyond this during a burst is
// released once drained, so an idle session holds no large slice.
const maxIdleQueueCap = 64

// onClose progress: OnClose has not run, is running, or has returned.
const (
	onCloseNone = iota
	onCloseRunning
	onCloseDone
)

// Session is one Engine.IO connection, over polling or websocket,
// surviving an upgrade from the first to the second.
type Session struct {
	id   string
	srv  *Server
	cfg  *config
	hs   handshakeRecord // what Request rebuilds
	done chan struct{}
	v3   *eio3 // Engine.IO v3 (eio3.go); nil for v4

	// recvMu serializes deliveries so OnMessage calls never overlap, even
	// while an upgrade briefly lets two connections carry client packets.
	recvMu sync.Mutex

	mu      sync.Mutex
	handler Handler
	queue   []outPacket
	// The backlog, in bytes as counted by cost: queuedBytes for the
	// messages in queue, writingBytes for those the websocket writer took
	// and has not finished writing. slowSince is when the backlog went
	// over MaxBufferedBytes (zero while it is not); slowTimer then closes
	// the session after SlowClientGrace.
	queuedBytes  int64
	writingBytes int64
	pendingBytes int64         // of writingBytes: frames a direct write left in the socket's batch (direct.go)
	slowSince    time.Duration // a stamp (stampOf); 0 while not over
	slowTimer    timer

	wsNotify   chan struct{} // wakes the websocket writer (1-buffered)
	pollNotify chan struct{} // wakes a pending polling GET (1-buffered)

	ws      *websocket.Conn // active websocket, once the transport is websocket (setWS)
	direct  *batchConn      // ws's connection when direct writes may reach it (direct.go); nil otherwise
	probe   *websocket.Conn // websocket being upgraded to
	wsLive  int32           // reader and writer goroutines still using ws
	onWS    bool            // the transport is websocket (it starts as polling unless the handshake is one)
	writing bool            // a writer goroutine is running (wakeWriterLocked)
	probed  bool            // "2probe" answered: GETs return at once
	// directs counts the session's direct writes up to gaugeExempt: its
	// first ones go out directly whatever the CPU gauge says (direct.go).
	directs uint8

	getActive, postActive bool

	hbDeadline   time.Duration // a stamp (stampOf)
	hbSlot       int32         // the session's place in cfg.beats, plus one; 0: not there (under beats.mu)
	awaitingPong bool
	extended     bool // a non-pong packet already extended this pong deadline

	closed      bool
	kind        closeKind
	delivering  bool
	onClose     uint8 // onCloseNone, onCloseRunning, onCloseDone
	lingering   bool
	finalized   bool
	reason      string
	lingerTimer timer
}

// newSessionID returns 15 random bytes as 20 base64url characters, the
// length and alphabet of Node's ids (sticky-session routers and Node's
// Redis adapter rely on both).
func newSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newSession returns a session over polling, or over websocket when ws
// is not nil. A websocket session owns ws from the start, so that Close
// and forceClose reach it; it counts the reader that runWebSocket starts,
// and writing is set so that no writer goroutine starts until the
// handshake has written the open packet and cleared it.
func newSession(srv *Server, cfg *config, r *http.Request, ws *websocket.Conn) *Session {
	id := cfg.newSessionID()
	s := &Session{
		id:      id,
		srv:     srv,
		cfg:     cfg,
		hs:      recordHandshake(r),
		handler: nopHandler{},
	}
	if cfg.AllowEIO3 {
		s.v3 = newEIO3(r)
	}
	if ws == nil {
		s.pollNotify = make(chan struct{}, 1)
	} else {
		s.onWS = true
		s.setWS(ws)
		s.wsLive = 1 // the reader, started by runWebSocket
		s.writing = true
	}
	return s
}

// log is the session's logger: the server's, with the session id.
func (s *Session) log() sessionLogger { return sessionLogger{base: s.cfg.Logger, sid: s.id} }

// epoch is where stamps count from.
var epoch = time.Now()

// stampOf is t as a stamp: the time since epoch, monotonic where t is. A
// session keeps its deadlines as stamps, 8 bytes where a time.Time takes
// 24.
func stampOf(t time.Time) time.Duration { return t.Sub(epoch) }

// ID returns the session id: 20 characters of base64url, like Node.
func (s *Session) ID() string { return s.id }

// Request returns a body-less copy of the handshake request (headers,
// URL and query, RemoteAddr, TLS, Host; its context carries only the
// value of WithKept), built anew on each call from the compact record the
// session keeps: changing it changes nothing. It is safe to keep.
func (s *Session) Request() *http.Request { return s.hs.request() }

// Kept returns the value WithKept put in the handshake request's context,
// as Kept(s.Request()) does, without building the request.
func (s *Session) Kept() any { return s.hs.value }

// RemoteAddr returns the handshake request's RemoteAddr.
func (s *Session) RemoteAddr() string { return s.hs.remote }

// Transport returns the current transport, "polling" or "websocket".
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transportLocked()
}

// transportLocked is the transport's name; s.mu is held (or the session
// is not shared yet).
func (s *Session) transportLocked() string {
	if s.onWS {
		return TransportWebSocket
	}
	return TransportPolling
}

// SetHandler sets who receives the session's messages; nil drops them.
func (s *Session) SetHandler(h Handler) {
	if h == nil {
		h = nopHandler{}
	}
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Writable reports whether a packet sent now would go out without waiting
// behind others, Node's transport.writable: a polling GET is waiting, or
// the websocket has nothing queued (and its backlog is within
// Options.MaxBufferedBytes). Volatile emits are dropped when it is false;
// SendVolatile makes that decision and the queueing in one step.
func (s *Session) Writable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.onWS {
		return len(s.queue) == 0 && s.backlogLocked() <= s.cfg.MaxBufferedBytes
	}
	return s.getActive && s.probe == nil
}

// Done is closed once the session is fully closed: OnClose has returned
// and its connections are released. The channel is made on the first
// call (an idle session holds none).
func (s *Session) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		if s.finalized {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// closedChan is Done's for a session finalized before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// cost is what a queued message counts against the backlog bounds.
func cost(m *Message) int64 { return int64(len(m.frame)) + QueueEntryOverhead }

func costOf(msgs []*Message) int64 {
	var n int64
	for _, m := range msgs {
		if m != nil {
			n += cost(m)
		}
	}
	return n
}

// backlogLocked is the session's backlog in bytes (see cost).
func (s *Session) backlogLocked() int64 { return s.queuedBytes + s.writingBytes }

// BufferedBytes returns the session's backlog: the bytes, as counted against
// Options.MaxBufferedBytes, of the messages sent and not yet written to
// the network.
func (s *Session) BufferedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backlogLocked()
}

// Send queues messages, atomically and in order, and never blocks. It
// returns ErrSessionClosed if the session is closed or closing, and
// ErrQueueFull if the backlog would pass Options.MaxBufferedBytesHard;
// then nothing is queued and the session is closing ("write queue full").
// A backlog over Options.MaxBufferedBytes for longer than
// Options.SlowClientGrace closes the session too. Safe from any goroutine.
func (s *Session) Send(msgs ...*Message) error {
	add := costOf(msgs)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if backlog := s.backlogLocked(); backlog+add > s.cfg.MaxBufferedBytesHard {
		s.mu.Unlock()
		s.log().Warn("closing slow client: send queue over its hard limit",
			zap.String("reason", ReasonQueueFull), zap.Int64("queued_bytes", backlog),
			zap.Int64("limit_bytes", s.cfg.MaxBufferedBytesHard))
		// OnClose runs on another goroutine: Send may be called with
		// locks held (a broadcast over a room) that OnClose needs.
		s.closeWith(ReasonQueueFull, kindOverflow, onCloseAsync)
		return ErrQueueFull
	}
	s.queueLocked(msgs, add)
	s.mu.Unlock()
	s.observeSent(msgs)
	return nil
}

// observeSent tells the Observer about queued messages.
func (s *Session) observeSent(msgs []*Message) {
	fn := s.cfg.Observer.OnSent
	if fn == nil {
		return
	}
	packets, n := 0, 0
	for _, m := range msgs {
		if m != nil {
			packets++
			n += len(m.Data())
		}
	}
	fn(packets, n)
}

// SendVolatile queues messages as Send does, unless the backlog would
// pass Options.MaxBufferedBytes: then they are dropped, and the session
// is left as it is. It reports whether they were queued (false as well
// when the session is closed).
func (s *Session) SendVolatile(msgs ...*Message) bool {
	add := costOf(msgs)
	s.mu.Lock()
	if s.closed || s.backlogLocked()+add > s.cfg.MaxBufferedBytes {
		s.mu.Unlock()
		return false
	}
	s.queueLocked(msgs, add)
	s.mu.Unlock()
	s.observeSent(msgs)
	return true
}

// queueLocked appends messages whose cost is add, and starts the slow
// client grace if that takes the backlog over the soft bound.
func (s *Session) queueLocked(msgs []*Message, add int64) {
	for _, m := range msgs {
		if m != nil {
			s.queue = append(s.queue, outPacket{typ: typeMessage, msg: m})
		}
	}
	s.queuedBytes += add
	s.checkBacklogLocked()
	s.notifyLocked()
}

// checkBacklogLocked starts the slow-client grace when the backlog is
// over the soft bound and stops it when it is back under it; call it
// after every change of the backlog.
func (s *Session) checkBacklogLocked() {
	over := s.backlogLocked() > s.cfg.MaxBufferedBytes
	switch {
	case over && s.slowSince == 0 && !s.closed:
		s.slowSince = stampOf(s.cfg.clock.Now())
		if s.slowTimer == nil {
			s.slowTimer = s.cfg.clock.AfterFunc(s.cfg.SlowClientGrace, s.onSlowTimer)
		} else {
			s.slowTimer.Reset(s.cfg.SlowClientGrace)
		}
	case !over && s.slowSince != 0:
		s.slowSince = 0
		s.slowTimer.Stop()
	}
}

// onSlowTimer closes a session whose backlog has stayed over the soft
// bound for SlowClientGrace. A timer that fires for an earlier period
// over the bound sees the later start and re-arms.
func (s *Session) onSlowTimer() {
	s.mu.Lock()
	if s.closed || s.slowSince == 0 {
		s.mu.Unlock()
		return
	}
	if d := s.cfg.SlowClientGrace - (stampOf(s.cfg.clock.Now()) - s.slowSince); d > 0 {
		s.slowTimer.Reset(d)
		s.mu.Unlock()
		return
	}
	backlog, since := s.backlogLocked(), s.slowSince
	s.mu.Unlock()
	s.log().Warn("closing slow client: send queue over its soft limit for too long",
		zap.String("reason", ReasonQueueFull), zap.Int64("queued_bytes", backlog),
		zap.Int64("limit_bytes", s.cfg.MaxBufferedBytes), zap.Duration("over_for", stampOf(s.cfg.clock.Now())-since))
	s.closeWith(ReasonQueueFull, kindOverflow, onCloseTimer)
}

// Close closes the session from the server side: queued packets are
// flushed, then the close packet "1" is sent. It is idempotent and
// OnClose(reason) fires (possibly before Close returns).
func (s *Session) Close(reason string) {
	s.closeWith(reason, kindGraceful, onCloseHere)
}

// enqueueLocked queues a control packet; those bypass the queue bound
// (there is at most one ping outstanding).
func (s *Session) enqueueLocked(typ byte) {
	s.queue = append(s.queue, outPacket{typ: typ})
	s.notifyLocked()
}

// notifyLocked wakes whoever drains the queue of the current transport.
func (s *Session) notifyLocked() {
	if s.onWS {
		s.wakeWriterLocked()
	} else {
		signal(s.pollNotify)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// takeQueueLocked returns the queued packets appended to dst and empties
// the queue, releasing it if a burst made it large. Their bytes move from
// queuedBytes to writingBytes, the caller's to write (see wroteLocked).
func (s *Session) takeQueueLocked(dst []outPacket) ([]outPacket, int64) {
	dst = append(dst, s.queue...)
	clear(s.queue)
	if cap(s.queue) > maxIdleQueueCap {
		s.queue = nil
	} else {
		s.queue = s.queue[:0]
	}
	n := s.queuedBytes
	s.queuedBytes = 0
	s.writingBytes += n
	return dst, n
}

// wroteLocked records that n bytes taken by takeQueueLocked are written.
func (s *Session) wroteLocked(n int64) {
	s.writingBytes -= n
	s.checkBacklogLocked()
}

// takePollLocked takes from the head of the queue, in order, the packets
// of one polling response: as many as fit in limit bytes of encoded
// payload, and at least one. It returns them appended to dst and their
// encoded size. Their bytes leave the backlog: the response is built
// from them at once.
func (s *Session) takePollLocked(dst []outPacket, limit int64) ([]outPacket, int) {
	size, n := 0, 0
	var taken int64
	for _, p := range s.queue {
		next := size + encodedSize(p)
		if n > 0 {
			next++ // record separator
		}
		if n > 0 && int64(next) > limit {
			break
		}
		size = next
		n++
		if p.msg != nil {
			taken += cost(p.msg)
		}
	}
	dst = append(dst, s.queue[:n]...)
	clear(s.queue[:n])
	if n == len(s.queue) {
		if cap(s.queue) > maxIdleQueueCap {
			s.queue = nil
		} else {
			s.queue = s.queue[:0]
		}
	} else {
		// The array is released once appends outgrow what is left.
		s.queue = s.queue[n:]
	}
	s.queuedBytes -= taken
	s.checkBacklogLocked()
	return dst, size
}

// dropQueueLocked empties the queue without sending it.
func (s *Session) dropQueueLocked() {
	clear(s.queue)
	s.queue = nil
	s.queuedBytes = 0
}

// startHeartbeat sets the first heartbeat deadline (Engine.IO v4: the
// server pings). One deadline per session serves both the interval and
// the pong; the config's heap (heartbeat.go) runs it out.
func (s *Session) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	d := s.cfg.PingInterval
	if s.v3 != nil {
		// v3: the client pings; the deadline is a pong that is always
		// due and that no other traffic extends (see onClientPing).
		d = s.cfg.heartbeatV3()
		s.awaitingPong, s.extended = true, true
	}
	s.armLocked(d)
}

// armLocked moves the heartbeat deadline to d from now.
func (s *Session) armLocked(d time.Duration) {
	if s.closed {
		return
	}
	s.hbDeadline = stampOf(s.cfg.clock.Now()) + d
	s.cfg.beats.set(s, s.hbDeadline)
}

// onHeartbeat runs when the heap found the session due: it pings, or
// closes a session whose pong is overdue. A deadline that moved after the
// heap took the session out was set by armLocked, which put the session
// back in the heap: nothing is due then. A ping timeout's OnClose runs on
// a goroutine of its own, so that a slow one does not hold back the pings
// of the sessions due after it.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.closed || s.hbDeadline > stampOf(s.cfg.clock.Now()) {
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		s.mu.Unlock()
		s.closeWith(ReasonPingTimeout, kindError, onCloseAsync)
		return
	}
	s.awaitingPong = true
	s.extended = false
	s.enqueueLocked(typePing)
	s.armLocked(s.cfg.PingTimeout)
	s.mu.Unlock()
}

// onPong restarts the ping interval when the awaited pong arrives.
func (s *Session) onPong() {
	s.mu.Lock()
	if s.awaitingPong && !s.closed {
		s.awaitingPong = false
		s.armLocked(s.cfg.PingInterval)
	}
	s.mu.Unlock()
}

// onActivity: like Node, any other packet received while a pong is due
// extends the deadline, once per ping.
func (s *Session) onActivity() {
	s.mu.Lock()
	if s.awaitingPong && !s.extended && !s.closed {
		s.extended = true
		s.armLocked(s.cfg.PingTimeout)
	}
	s.mu.Unlock()
}

// handlePacket acts on one client packet, from either transport. It
// returns false once the session is closed, to stop the caller reading.
func (s *Session) handlePacket(p packet) bool {
	switch p.typ {
	case typePong:
		if s.v3 != nil {
			// A v3 server never pings, so a pong is out of place.
			s.closeWith(ReasonParseError, kindError, onCloseHere)
			return false
		}
		s.onPong()
	case typeMessage:
		s.onActivity()
		return s.deliver(p.data, p.binary)
	case typeClose:
		s.closeWith(ReasonTransportClose, kindClient, onCloseHere)
		return false
	case typePing:
		if s.v3 != nil {
			s.onClientPing()
			break
		}
		// Engine.IO v4 reversed the heartbeat: a client ping is an error.
		s.closeWith(ReasonParseError, kindError, onCloseHere)
		return false
	default: // open, upgrade, noop: nothing to do outside an upgrade
		s.onActivity()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed
}

// deliver hands one message to the handler. If the session is closed
// meanwhile (even by the handler itself), OnClose runs here, after
// OnMessage returned, so it is always the last call.
func (s *Session) deliver(data []byte, binary bool) bool {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.delivering = true
	h := s.handler
	s.mu.Unlock()

	if ce := s.log().Check(zap.DebugLevel, "message received"); ce != nil {
		ce.Write(zap.Int("bytes", len(data)), zap.Bool("binary", binary))
	}
	if fn := s.cfg.Observer.OnReceived; fn != nil {
		fn(len(data))
	}
	h.OnMessage(data, binary)

	s.mu.Lock()
	s.delivering = false
	open := !s.closed
	fire := s.takeOnCloseLocked()
	reason := s.reason
	s.mu.Unlock()
	if fire {
		s.runOnClose(h, reason)
	}
	return open
}

// takeOnCloseLocked reports whether the caller must run OnClose now: the
// session is closed, OnClose has not started and no OnMessage is running.
func (s *Session) takeOnCloseLocked() bool {
	if !s.closed || s.onClose != onCloseNone || s.delivering {
		return false
	}
	s.onClose = onCloseRunning
	return true
}

func (s *Session) runOnClose(h Handler, reason string) {
	h.OnClose(reason)
	s.mu.Lock()
	s.onClose = onCloseDone
	s.unlockAndFinalize()
}

// onCloseMode says where closeWith runs OnClose, when it is the call
// that must run it.
type onCloseMode uint8

const (
	// onCloseHere runs it on the caller's goroutine, one that Server.Close
	// already waits for (a request, a websocket reader or writer) or the
	// application's own (Session.Close, Server.Close).
	onCloseHere onCloseMode = iota
	// onCloseTimer runs it on the caller's goroutine, a timer's, which
	// Server.Close counts while OnClose runs.
	onCloseTimer
	// onCloseAsync runs it on a new goroutine, which Server.Close counts:
	// the caller may hold locks that OnClose needs (Send within a
	// broadcast over a room).
	onCloseAsync
)

// closeWith starts closing the session: new Sends fail, no more messages
// are delivered, OnClose fires (where mode says), and the transport is
// told what it still owes the client (see closeKind).
func (s *Session) closeWith(reason string, kind closeKind, mode onCloseMode) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.kind = kind
	s.reason = reason
	s.cfg.beats.remove(s)
	if s.slowTimer != nil {
		s.slowTimer.Stop()
	}
	if kind != kindGraceful && kind != kindShutdown {
		s.dropQueueLocked()
	}
	if !s.onWS && !s.getActive {
		switch kind {
		case kindGraceful:
			s.lingering = true
			s.lingerTimer = s.cfg.clock.AfterFunc(pollingCloseLinger, s.endLinger)
		case kindClient:
			s.lingering = true
			s.lingerTimer = s.cfg.clock.AfterFunc(clientCloseLinger, s.endLinger)
		}
	}
	probe := s.probe
	var ws *websocket.Conn
	if kind == kindOverflow {
		ws = s.ws
	}
	if s.onWS {
		s.wakeWriterLocked()
	}
	signal(s.pollNotify)
	h := s.handler
	fire := s.takeOnCloseLocked()
	if fire && mode != onCloseHere {
		// Counted before s.mu is released: a Server.Close that then
		// finds the session closed already waits for this OnClose.
		s.srv.track()
	}
	s.mu.Unlock()

	if ce := s.log().Check(zap.DebugLevel, "session closing"); ce != nil {
		ce.Write(zap.String("reason", reason))
	}
	if fn := s.cfg.Observer.OnClose; fn != nil {
		fn(reason)
	}
	if probe != nil {
		_ = probe.NetConn().Close()
	}
	if ws != nil {
		// The client does not read: writing a close frame could block
		// until the write deadline. Closing the socket also unblocks a
		// writer stuck in a write.
		_ = ws.NetConn().Close()
	}
	if !fire {
		return
	}
	switch mode {
	case onCloseAsync:
		go func() {
			defer s.srv.leave()
			s.runOnClose(h, reason)
		}()
	case onCloseTimer:
		defer s.srv.leave()
		s.runOnClose(h, reason)
	default:
		s.runOnClose(h, reason)
	}
}

func (s *Session) endLinger() {
	s.mu.Lock()
	if !s.lingering {
		s.mu.Unlock()
		return
	}
	s.lingering = false
	s.unlockAndFinalize()
}

// gone reports whether requests for this session must be refused as for
// an unknown sid: closed and not waiting for a last GET.
func (s *Session) gone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed && !s.lingering
}

// unlockAndFinalize releases s.mu, which the caller holds, and finalizes
// the session if it has nothing left to do: closed, OnClose returned, no
// polling GET waiting, no websocket reader or writer running, not
// lingering. Whoever ends one of those (marks OnClose done, clears
// getActive, decrements wsLive, clears lingering) calls it instead of
// s.mu.Unlock, after the change and under the same hold of s.mu; exactly
// one such call, the one that sees the last of them end, finalizes.
// Finalizing takes srv.mu and runs outside s.mu, on the caller's
// goroutine.
func (s *Session) unlockAndFinalize() {
	if !s.closed || s.finalized || s.onClose != onCloseDone ||
		s.getActive || s.wsLive > 0 || s.lingering {
		s.mu.Unlock()
		return
	}
	s.finalized = true
	done := s.done
	if s.lingerTimer != nil {
		s.lingerTimer.Stop()
	}
	if s.slowTimer != nil {
		s.slowTimer.Stop()
	}
	s.mu.Unlock()
	s.srv.remove(s)
	if done != nil {
		close(done)
	}
	if ce := s.log().Check(zap.DebugLevel, "session closed"); ce != nil {
		ce.Write(zap.String("reason", s.reason))
	}
}

// forceClose closes the network connections of the session, to unblock
// goroutines stuck in a write when the server stops.
func (s *Session) forceClose() {
	s.mu.Lock()
	ws, probe := s.ws, s.probe
	s.mu.Unlock()
	if ws != nil {
		_ = ws.NetConn().Close()
	}
	if probe != nil {
		_ = probe.NetConn().Close()
	}
}
