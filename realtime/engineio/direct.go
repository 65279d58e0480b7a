package engineio

import (
	"errors"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Direct writes. A websocket session with no writer goroutine running
// writes what is queued straight to its socket, from the goroutine that
// queued it (a broadcast, the heartbeat, a reply), in one non-blocking
// write system call: no goroutine is woken or started, no timer armed. At
// moderate rates (a packet to each client every few hundred milliseconds)
// the hand-off to a writer goroutine and its wake-up cost about as much as
// the write itself; Node writes in the same way, from the event loop.
//
// The fast path applies only when nothing else can write to the socket in
// between and the frames need no work a writer would do:
//   - no writer goroutine runs (Session.writing) and the session is open;
//   - the connection is the engine's own, over plain TCP or a unix socket
//     (parker.plain; a *tls.Conn keeps its own buffers), with no batch
//     open (nor what an earlier direct write left, which waits in one);
//   - batchConn.mu is free: every other write to the socket (gorilla's,
//     from the writer or from the reader's pong and close replies) holds
//     it for the whole write, so a direct write never lands inside one,
//     and a client that keeps such a write blocked only sends its
//     packets back to the writer goroutine, never stalls the caller;
//   - every frame is uncompressed and is not an Engine.IO v3 binary one;
//   - the process is not short of CPU (cpugauge.go): then writers, which
//     write all that queued while they were behind with one call, carry
//     more than a call per frame can.
//
// What the socket does not take at once (its send buffer is full) is kept
// in the socket's batch (batchConn.buf), where every later write lands
// after it, and the writer goroutine is started to write it, with the
// usual write deadline: the frame order is the queue's. A socket that
// takes nothing leaves the packets queued for the writer, and an error
// does the same, so the writer meets it again and closes the session as it
// would have. The rest's packets count in the
// backlog (writingBytes, pendingBytes) until it is written.

// errNoDescriptor: the connection has no socket to write to directly.
var errNoDescriptor = errors.New("connection has no descriptor")

// maxDirectWrite bounds the bytes of one direct write; a larger batch goes
// to the writer goroutine.
const maxDirectWrite = maxPooledBatch

// writeDirectLocked tries the fast path for everything queued; the caller
// (wakeWriterLocked) has checked that no writer runs and that the session
// has its websocket. true: all of it is written. false: the caller starts
// the writer, either because the fast path does not apply (nothing was
// written or changed) or to finish what the socket did not take
// (pendingBytes > 0). s.mu is held; the call never blocks.
func (s *Session) writeDirectLocked() bool {
	if s.closed || len(s.queue) == 0 {
		return false
	}
	bc, ok := s.directConnLocked()
	if !ok {
		return false
	}
	wire, pooled, ok := s.directFrames()
	if !ok {
		return false
	}
	n := bc.tryWrite(wire)
	releaseDirect(pooled)
	if n == 0 {
		// Nothing went out: the writer writes it, or meets the error.
		return false
	}

	if s.directs < gaugeExempt {
		s.directs++
	}
	count := len(s.queue)
	clear(s.queue)
	s.queue = s.queue[:0]
	sent := s.queuedBytes
	s.queuedBytes = 0
	if n < len(wire) {
		// The writer finishes the frames; their bytes stay in the
		// backlog until then.
		s.writingBytes += sent
		s.pendingBytes += sent
		s.checkBacklogLocked()
		if ce := s.log().Check(zap.DebugLevel, "direct write incomplete, the writer finishes it"); ce != nil {
			ce.Write(zap.Int("count", count), zap.Int("written_bytes", n), zap.Int("left_bytes", len(wire)-n))
		}
		return false
	}
	s.checkBacklogLocked()
	if ce := s.log().Check(zap.DebugLevel, "websocket frames written"); ce != nil {
		ce.Write(zap.Int("count", count), zap.Bool("direct", true))
	}
	return true
}

// tryWrite writes p directly if no other write holds the socket and no
// batch is open, and returns how much the socket took: 0 when nothing
// went out (busy, full or an error, which the writer meets again). The
// rest of a partial write is kept as the socket's batch, so that every
// later write lands after it and the writer flushes it (writePending).
func (b *batchConn) tryWrite(p []byte) int {
	if !b.mu.TryLock() {
		return 0
	}
	defer b.mu.Unlock()
	if b.buf != nil {
		return 0
	}
	n, err := b.writeNow(p)
	if err != nil {
		return 0
	}
	if n > 0 && n < len(p) {
		rest := batchPool.Get().(*[]byte)
		*rest = append((*rest)[:0], p[n:]...)
		b.buf = rest
	}
	return n
}

// setWS makes c the session's websocket, and its connection the target of
// direct writes when they may reach it: the engine's own, plain, and
// direct writes not turned off. A broadcast asks this of every member, so
// the answer is kept where the session's lock already is (a websocket's
// and a parker's fields are memory a delivery would otherwise touch for
// it). s.mu is held, or no one else sees s yet.
func (s *Session) setWS(c *websocket.Conn) {
	s.ws = c
	s.direct = nil
	if bc, ok := c.NetConn().(*batchConn); ok && bc.pk.plain && !s.cfg.DisableDirectWrites {
		s.direct = bc
	}
}

// directConnLocked returns the session's connection when direct writes
// may reach it now (setWS) and, past the session's first gaugeExempt
// direct writes, the process is not short of CPU. s.mu is held.
func (s *Session) directConnLocked() (*batchConn, bool) {
	bc := s.direct
	if bc == nil {
		return nil, false
	}
	if s.directs >= gaugeExempt && s.srv.cpu.busyNow(processCPU) {
		return nil, false
	}
	return bc, true
}

// gaugeExempt is how many direct writes a session makes before the CPU
// gauge applies to it. A writer's coalescing pays only where frames queue
// faster than they are written; a new session's first frames (the
// CONNECT answer, what the application sends on connection) meet an
// empty queue. In a connect storm the gauge reads busy, and a writer
// goroutine per connect for that one answer, lingering with its stack,
// cost more than the write: 5 % of a storm's CPU, and stacks that stayed
// in the process's memory after it.
const gaugeExempt = 2

// directFrames returns the websocket frames of the queue as they go on the
// wire: a shared message's own frame when it is the only one, otherwise
// the frames built in a pooled buffer (returned as pooled, for
// releaseDirect). ok is false when a packet needs the writer.
func (s *Session) directFrames() (wire []byte, pooled *[]byte, ok bool) {
	size := 0
	for _, p := range s.queue {
		if p.msg == nil {
			size += 3
			continue
		}
		if s.v3 != nil && p.msg.binary {
			return nil, nil, false
		}
		if s.cfg.Compression.WebSocket && len(p.msg.frame) >= s.cfg.Compression.Threshold {
			return nil, nil, false
		}
		size += frameHeaderLen(len(p.msg.frame)) + len(p.msg.frame)
	}
	if size > maxDirectWrite {
		return nil, nil, false
	}
	if len(s.queue) == 1 && s.queue[0].msg != nil && s.queue[0].msg.prepared != nil {
		return s.queue[0].msg.prepared.wireFrame(s.queue[0].msg), nil, true
	}
	pooled = batchPool.Get().(*[]byte)
	b := (*pooled)[:0]
	for _, p := range s.queue {
		if p.msg == nil {
			b = append(b, 0x80|opText, 1, p.typ)
			continue
		}
		b = appendFrame(b, p.msg)
	}
	*pooled = b
	return b, pooled, true
}

// releaseDirect returns a buffer of directFrames to the pool.
func releaseDirect(pooled *[]byte) {
	if pooled == nil {
		return
	}
	if cap(*pooled) <= maxPooledBatch {
		*pooled = (*pooled)[:0]
		batchPool.Put(pooled)
	}
}

// Websocket opcodes (RFC 6455, 5.2).
const (
	opText   = 1
	opBinary = 2
)

// frameHeaderLen is the length of an unmasked frame header for a payload
// of n bytes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// appendFrame appends m as one final, unmasked, uncompressed frame, as a
// server sends it.
func appendFrame(b []byte, m *Message) []byte {
	op := byte(opText)
	if m.binary {
		op = opBinary
	}
	n := len(m.frame)
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		for i := 7; i >= 0; i-- {
			b = append(b, byte(uint64(n)>>(8*i)))
		}
	}
	return append(b, m.frame...)
}

// wireFrame returns m's frame as it goes on the wire, built once.
func (pf *preparedFrame) wireFrame(m *Message) []byte {
	pf.wireOnce.Do(func() {
		pf.wire = appendFrame(make([]byte, 0, frameHeaderLen(len(m.frame))+len(m.frame)), m)
	})
	return pf.wire
}

// writeNow makes one non-blocking write of p to the socket and returns
// how much of it the socket took (0 when its buffer is full). b.mu is
// held. The write deadline plays no part: this write cannot block, and
// the writer sets its own before its next write.
func (b *batchConn) writeNow(p []byte) (int, error) {
	return b.rawWrite(p)
}
