package engineio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// closeFrameTimeout bounds writing the websocket close frame: the peer
// may be gone already.
const closeFrameTimeout = time.Second

// upgrader keeps idle connections small: the read buffer is the engine's
// own (readBufferSize, handed over by hijackWriter, see park.go), and
// write buffers are borrowed from a pool only while a frame is being
// written. Origins are checked by ServeHTTP before upgrading.
var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   0, // reuse the reader Hijack returns
	WriteBufferSize:  4096,
	WriteBufferPool:  &sync.Pool{},
	CheckOrigin:      func(*http.Request) bool { return true },
}

var (
	probeReply  = []byte("3probe")
	normalClose = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
)

// hijackWriter lets gorilla/websocket, which finds the hijacker by type
// assertion, hijack through http.ResponseController: it follows Unwrap,
// so this works under middleware that wraps the ResponseWriter (Caddy).
// With hold, the connection starts batching (batchConn.begin), so that
// the handshake's response waits for the open packet and both go out in
// one write (the caller flushes).
type hijackWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	hold bool
}

func (h hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := h.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := &batchConn{Conn: c}
	bc.pk.plain = directWrites && parkable(c)
	if h.hold {
		bc.begin()
	}
	if brw.Reader.Buffered() > 0 {
		return bc, brw, nil // gorilla refuses data sent before the handshake's end
	}
	// gorilla reads through this reader, so the engine knows when it is
	// empty (park.go).
	// Its buffer comes from the parked connections' pool (restoreBuf; no
	// one else sees the connection yet), where a connection that parks
	// gives it back: a connect storm reuses the same few buffers.
	bc.pk.br = new(bufio.Reader)
	bc.pk.restoreBuf(bc)
	bc.pk.noPark = !parkable(c)
	return bc, bufio.NewReadWriter(bc.pk.br, brw.Writer), nil
}

// upgradeConn answers the websocket handshake. With hold, the answer is
// not written yet: it goes out with the next flush (flushConn), or with
// closeConn.
func upgradeConn(w http.ResponseWriter, r *http.Request, cfg *config, hold bool) (*websocket.Conn, error) {
	c, err := cfg.upgraderFor().Upgrade(hijackWriter{w, http.NewResponseController(w), hold}, r, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(cfg.MaxPayload)
	cfg.setWriteCompression(c, 0) // only messages over the threshold are compressed
	return c, nil
}

// closeConn ends a websocket we do not keep: close frame (after what a
// held handshake still has to write), then socket.
func closeConn(c *websocket.Conn) {
	_ = c.WriteControl(websocket.CloseMessage, normalClose, time.Now().Add(closeFrameTimeout))
	_ = flushConn(c)
	_ = c.NetConn().Close()
}

// flushConn writes what a held handshake (upgradeConn) collected.
func flushConn(c *websocket.Conn) error {
	if bc, ok := c.NetConn().(*batchConn); ok {
		return bc.flush()
	}
	return nil
}

// handshakeWebSocket opens a session directly over websocket: the open
// packet first, then whatever the application queued meanwhile. The
// handshake's answer and the open packet go out in one write: on loopback
// a write costs about as much as the rest of a connect's own work.
func (srv *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request, cfg *config) {
	c, err := upgradeConn(w, r, cfg, true)
	if err != nil {
		if ce := cfg.Logger.Check(zap.DebugLevel, "websocket upgrade failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	// The session owns the websocket from the start, and this goroutine
	// writes the open packet before any writer goroutine starts (see
	// newSession).
	s := srv.newRegisteredSession(r, cfg, c)
	if s == nil {
		closeConn(c)
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	err = c.WriteMessage(websocket.TextMessage, cfg.openPacket(s.id, true))
	if ferr := flushConn(c); err == nil {
		err = ferr
	}
	s.mu.Lock()
	s.writing = false
	s.mu.Unlock()
	if err != nil {
		s.closeWith(ReasonTransportError, kindError, onCloseHere)
	}
	srv.runWebSocket(s, c)
}

// serveUpgrade takes a websocket for an existing polling session through
// the upgrade: "2probe" -> "3probe", then "5" switches the session to it.
// A websocket for a session that is already upgraded or upgrading is
// accepted and closed at once, as Node does.
func (srv *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, s *Session) {
	c, err := upgradeConn(w, r, s.cfg, false)
	if err != nil {
		if ce := s.log().Check(zap.DebugLevel, "websocket upgrade failed"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return
	}
	s.mu.Lock()
	ok := !s.closed && !s.onWS && s.probe == nil &&
		s.cfg.websocket && !s.cfg.DisableUpgrades
	if ok {
		s.probe = c
		s.probed = false
	}
	s.mu.Unlock()
	if !ok {
		closeConn(c)
		return
	}

	timer := s.cfg.clock.AfterFunc(s.cfg.UpgradeTimeout, func() {
		s.mu.Lock()
		stale := s.probe == c
		s.mu.Unlock()
		if stale {
			if ce := s.log().Check(zap.DebugLevel, "upgrade timed out"); ce != nil {
				ce.Write()
			}
			_ = c.NetConn().Close()
		}
	})
	switched := s.probeLoop(c)
	timer.Stop()
	if !switched {
		s.mu.Lock()
		if s.probe == c {
			s.probe = nil
			s.probed = false
		}
		s.mu.Unlock()
		closeConn(c)
		return
	}
	if ce := s.log().Check(zap.DebugLevel, "upgraded to websocket"); ce != nil {
		ce.Write()
	}
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	if u, ok := h.(UpgradeHandler); ok {
		u.OnUpgrade()
	}
	srv.runWebSocket(s, c)
}

// probeLoop reads the upgrade handshake from c. It returns true once the
// session has switched to c. Any other packet aborts the upgrade.
func (s *Session) probeLoop(c *websocket.Conn) bool {
	for {
		mt, p, err := s.readMessage(c)
		if err != nil || mt != websocket.TextMessage {
			return false
		}
		switch string(p) {
		case "2probe":
			_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err := c.WriteMessage(websocket.TextMessage, probeReply); err != nil {
				return false
			}
			s.mu.Lock()
			if s.probe == c {
				s.probed = true
				signal(s.pollNotify)
			}
			s.mu.Unlock()
		case "5":
			s.mu.Lock()
			if s.closed || s.probe != c {
				s.mu.Unlock()
				return false
			}
			s.probe = nil
			s.probed = false
			s.onWS = true
			s.setWS(c)
			s.wsLive = 1
			signal(s.pollNotify) // a pending GET ends with a noop
			s.mu.Unlock()
			return true
		default:
			return false
		}
	}
}

// runWebSocket serves an active websocket: a reader, parked while there
// is nothing to read (park.go) and otherwise a goroutine, and a writer
// goroutine while there is something to write (see wakeWriterLocked). The
// request's goroutine reads the first frame (readFirst) and returns, so an
// idle connection holds neither its stack nor net/http's buffers. The
// reader counts in Server.active from here until readLoop ends for good,
// parked or not.
func (srv *Server) runWebSocket(s *Session, c *websocket.Conn) {
	s.mu.Lock()
	if len(s.queue) > 0 || s.closed {
		s.wakeWriterLocked()
	}
	s.mu.Unlock()
	srv.track()
	s.readFirst(c)
}

// readFirst reads and handles the connection's first frame on the
// request's goroutine, then parks the reader at once when nothing more is
// buffered, or hands it to readLoop on a goroutine of its own. The
// request's stack has already grown through the HTTP server's handler
// chain, and a client's first frame, Socket.IO's CONNECT, takes the
// deepest path a connection runs (authentication, rules, rooms): on a new
// goroutine that stack would grow again, copy by copy, for every connect.
// The wait for that frame is readLoop's own (waitOrPark: readLinger, then
// parked). After it the reader does not linger: whether the client is a
// busy one is not known yet, and most connect and then wait, so a connect
// storm leaves no reader goroutine, deadline timer or peek behind each new
// connection; a client that goes on sending wakes its reader once.
//
// A connection that cannot park (TLS, a wrapped listener, parking
// disabled) gets its reader goroutine at once: its wait for the first
// frame would have no bound, and the request's goroutine, with Caddy's
// request and its stack, would be held for it. For the same reason the
// first frame is read here only when all of it has arrived
// (wholeFrame, on what the wait peeked at): a client that sends part of
// one and stalls gets a reader goroutine, not the request's.
func (s *Session) readFirst(c *websocket.Conn) {
	bc, ok := s.parking(c)
	if !ok {
		go s.readLoop(c, true)
		return
	}
	// The wait peeks at what arrived: a whole first frame is read here.
	peek := peekPool.Get().(*[firstFramePeek]byte)
	ready, n := waitReadable(bc.Conn, readLinger, peek[:])
	whole := ready && wholeFrame(peek[:n])
	peekPool.Put(peek)
	if !ready && s.parkRead(c) {
		return
	}
	if !whole {
		// Not parked, or part of a frame, a long one, a fragment or a
		// control frame: reading it here could block for as long as the
		// client likes.
		go s.readLoop(c, false)
		return
	}
	if !s.readOne(c) {
		return
	}
	if s.parkRead(c) {
		return
	}
	go s.readLoop(c, true)
}

// firstFramePeek bounds how much of a first frame readFirst peeks at: a
// Socket.IO CONNECT with a token fits; a longer first frame is read by a
// reader goroutine.
const firstFramePeek = 4096

// peekPool holds readFirst's peek buffers. The peek escapes to the heap
// (the system call takes it), and at 4 KiB it was the largest allocation
// of a connect: a sixth of all a connect storm allocated, and so of the
// collector's work in one.
var peekPool = sync.Pool{New: func() any { return new([firstFramePeek]byte) }}

// writerLinger is how long an idle writer goroutine waits for more before
// it ends; the next packet starts a new one. Under steady traffic (a
// packet at least every 250 ms) the writer stays; an idle connection (one
// ping per pingInterval) holds none. It was 1 s: in a connect storm every
// new session's writer, done after the CONNECT answer, lived a second
// longer (3,000 writers alive at 3,000 connects a second, with their
// stacks); at 250 ms the bench measured 14 % less RSS per idle connection
// after the storm (docs/performance.md). A session writing less often
// than this starts a writer (a goroutine) per packet.
var writerLinger = 250 * time.Millisecond // a variable only so that tests may shorten it (TestMain)

// wakeWriterLocked makes the websocket writer drain the queue, starting it
// if it is not running. s.mu must be held.
func (s *Session) wakeWriterLocked() {
	if s.writing {
		signal(s.wsNotify)
		return
	}
	if s.ws == nil {
		return // not switched yet: runWebSocket starts it
	}
	if s.writeDirectLocked() {
		return
	}
	s.writing = true
	s.wsLive++
	// The writer's own wake-up channel: an idle session, which has no
	// writer, holds none.
	s.wsNotify = make(chan struct{}, 1)
	s.srv.track()
	go func(c *websocket.Conn, notify chan struct{}) {
		defer s.srv.leave()
		s.writeLoop(c, notify)
	}(s.ws, s.wsNotify)
}

// readLoop reads until the connection fails or the session closes. Before
// each read, with nothing buffered, it waits up to readLinger for a frame
// and otherwise parks the reader (waitOrPark) and returns;
// the poller or Close runs it again, without park for the first read, on
// a new goroutine. When it ends for good it releases the session and
// leaves Server.active.
func (s *Session) readLoop(c *websocket.Conn, park bool) {
	for {
		if park && s.waitOrPark(c) {
			return
		}
		park = true
		if !s.readOne(c) {
			return
		}
	}
}

// readOne reads and handles one frame. false: the reader has ended
// (endRead ran).
func (s *Session) readOne(c *websocket.Conn) bool {
	mt, p, err := s.readMessage(c)
	if err != nil {
		s.closeWith(readErrorReason(err), kindError, onCloseHere)
		s.endRead()
		return false
	}
	pkt, err := s.decodeFrame(mt, p)
	if err != nil {
		s.closeWith(ReasonParseError, kindError, onCloseHere)
		s.endRead()
		return false
	}
	if !s.handlePacket(pkt) {
		s.endRead()
		return false
	}
	return true
}

// endRead is the reader's end: the session is released, then Server.Close
// stops waiting for it.
func (s *Session) endRead() {
	s.releaseWS()
	s.srv.leave()
}

// readErrorReason maps a read error to Node's close reason: the peer
// closing or vanishing is a "transport close", anything else (frame too
// large, protocol error) a "transport error".
func readErrorReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) {
		return ReasonTransportClose
	}
	return ReasonTransportError
}

// writeLoop is the only writer of c once the session uses it. It writes
// everything queued at each wake-up, and on close what the close kind
// requires, then closes the socket (which ends readLoop).
func (s *Session) writeLoop(c *websocket.Conn, notify <-chan struct{}) {
	var batch []outPacket
	var written int64  // bytes of the batch just written, still in the backlog
	var idle chanTimer // armed only while the writer waits: from its first wait on
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if written > 0 {
			s.wroteLocked(written) // written is set again below, after the next write
		}
		for len(s.queue) == 0 && !s.closed && s.pendingBytes == 0 {
			if _, direct := s.directConnLocked(); direct {
				// The next packet is written directly: no linger.
				// (While the process is short of CPU the writer
				// lingers, asking the gauge after each batch, and
				// ends once direct writes are back.)
				s.endWriterLocked()
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			if idle == nil {
				idle = s.cfg.clock.NewTimer(writerLinger)
			} else {
				idle.Reset(writerLinger)
			}
			select {
			case <-notify:
			case <-idle.Chan():
				s.mu.Lock()
				if len(s.queue) == 0 && !s.closed && s.pendingBytes == 0 {
					s.endWriterLocked()
					s.mu.Unlock()
					return
				}
				s.mu.Unlock()
			}
			s.mu.Lock()
		}
		closed, kind := s.closed, s.kind
		var n int64
		batch, n = s.takeQueueLocked(batch[:0])
		pending := s.pendingBytes
		s.pendingBytes = 0
		n += pending
		s.mu.Unlock()
		if closed {
			// What a direct write left is still in the socket's
			// batch, ahead of what finishWrites writes.
			s.finishWrites(c, kind, batch)
			return
		}
		err := s.writePending(c, pending)
		if err == nil {
			err = s.writeBatch(c, batch)
		}
		if err != nil {
			if ce := s.log().Check(zap.DebugLevel, "websocket write failed"); ce != nil {
				ce.Write(zap.Error(err))
			}
			s.closeWith(ReasonTransportError, kindError, onCloseHere)
			s.finishWrites(c, kindOverflow, nil)
			return
		}
		written = n
		clear(batch)
		if cap(batch) > maxIdleQueueCap {
			batch = nil
		}
	}
}

// endWriterLocked ends an idle writer, keeping the connection: the reader
// is still running, so wsLive stays above zero. s.mu is held.
func (s *Session) endWriterLocked() {
	s.writing = false
	s.wsNotify = nil
	s.wsLive--
}

// writePending writes, under a fresh write deadline, what a direct write
// left (pending: its bytes in the backlog; 0: nothing): the socket's
// batch (batchConn.buf) holds it.
func (s *Session) writePending(c *websocket.Conn, pending int64) error {
	if pending == 0 {
		return nil
	}
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	return flushConn(c)
}

// finishWrites writes what a closed session still owes its client (see
// closeKind), then closes the socket, which ends readLoop.
func (s *Session) finishWrites(c *websocket.Conn, kind closeKind, batch []outPacket) {
	defer s.releaseWS()
	defer c.NetConn().Close()
	switch kind {
	case kindOverflow:
		return
	case kindGraceful, kindShutdown:
		// What a direct write left first, under the write timeout
		// rather than the close frame's.
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if flushConn(c) != nil || s.writeBatch(c, batch) != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if c.WriteMessage(websocket.TextMessage, closePayload) == nil {
			_ = c.WriteControl(websocket.CloseMessage, normalClose, time.Now().Add(closeFrameTimeout))
		}
	default:
		_ = c.WriteControl(websocket.CloseMessage, normalClose, time.Now().Add(closeFrameTimeout))
	}
	// What a direct write left (kindError: the close frame follows it
	// into the socket's batch).
	_ = flushConn(c)
}

// controlFrames holds the one-byte text frames of data-less packets.
var controlFrames = [...][]byte{
	typePing:  {typePing},
	typePong:  {typePong},
	typeNoop:  {typeNoop},
	typeClose: {typeClose},
}

func (s *Session) writeBatch(c *websocket.Conn, batch []outPacket) error {
	bc, batching := c.NetConn().(*batchConn)
	batching = batching && len(batch) > 1
	if batching {
		bc.begin()
	}
	for _, p := range batch {
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		var err error
		if p.msg != nil {
			s.cfg.setWriteCompression(c, len(p.msg.frame))
			if s.v3 != nil && p.msg.binary {
				err = s.v3.writeBinaryV3(c, p.msg)
			} else {
				err = p.msg.writeTo(c)
			}
			s.cfg.setWriteCompression(c, 0)
		} else {
			err = c.WriteMessage(websocket.TextMessage, controlFrames[p.typ])
		}
		if err != nil {
			if batching {
				_ = bc.flush()
			}
			return err
		}
	}
	if batching {
		if err := bc.flush(); err != nil {
			return err
		}
	}
	if ce := s.log().Check(zap.DebugLevel, "websocket frames written"); ce != nil {
		ce.Write(zap.Int("count", len(batch)))
	}
	return nil
}

// releaseWS records that the reader or the writer has ended; the session
// is finalized after the last one.
func (s *Session) releaseWS() {
	s.mu.Lock()
	s.wsLive--
	s.unlockAndFinalize()
}
