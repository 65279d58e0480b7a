package engineio

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxPooledBatch bounds the buffers kept in batchPool; a burst that needed
// more lets its buffer go.
const maxPooledBatch = 64 << 10

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// batchConn lets the websocket writer send a batch of frames with one
// write system call instead of one per frame: between begin and flush,
// what gorilla/websocket writes is collected in a pooled buffer. On
// loopback and busy servers the system call, not the framing, is the cost
// of a delivery, so this is what makes echo and fan-out cheap per message.
// Outside a batch writes go straight through.
type batchConn struct {
	net.Conn

	// mu is held for every write to the socket, so that a direct write
	// (direct.go), which only tries it, never lands inside another.
	mu  sync.Mutex
	buf *[]byte // non-nil while batching, or holding what a direct write left

	pk parker // the read side's parking (park.go)

	wdl atomic.Int64 // the write deadline last set, unix nanos; 0: none
}

// deadlineSlack is how much later a new write deadline may be than the
// current one and still keep the current one (see SetWriteDeadline).
const deadlineSlack = time.Second

// SetWriteDeadline implements net.Conn. gorilla/websocket sets the
// deadline before every frame it writes, and moving the runtime's timer
// that often is a measurable part of a delivery: a deadline later than the
// current one by less than deadlineSlack keeps the current one (a write
// may time out up to that much sooner than asked), as long as the current
// one has not passed: with a write timeout under deadlineSlack a kept
// deadline could otherwise already be over when the next frame is
// written. Earlier deadlines, and clearing it, always apply.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	if cur := b.wdl.Load(); cur != 0 && n >= cur && n-cur < int64(deadlineSlack) && cur > time.Now().UnixNano() {
		return nil
	}
	b.wdl.Store(n)
	return b.Conn.SetWriteDeadline(t)
}

// Write implements net.Conn. gorilla/websocket serializes its own writes;
// mu orders them against begin, flush and direct writes.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil {
		*b.buf = append(*b.buf, p...)
		var err error
		if len(*b.buf) >= maxPooledBatch {
			// A large batch goes out in pieces rather than growing
			// the buffer without bound.
			_, err = b.Conn.Write(*b.buf)
			*b.buf = (*b.buf)[:0]
		}
		return len(p), err
	}
	return b.Conn.Write(p)
}

// begin starts collecting writes.
func (b *batchConn) begin() {
	b.mu.Lock()
	if b.buf == nil {
		b.buf = batchPool.Get().(*[]byte)
	}
	b.mu.Unlock()
}

// flush writes what was collected in one call and stops collecting. The
// write deadline set by the last frame applies.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := b.buf
	b.buf = nil
	if buf == nil {
		return nil
	}
	var err error
	if len(*buf) > 0 {
		_, err = b.Conn.Write(*buf)
	}
	if cap(*buf) <= maxPooledBatch {
		*buf = (*buf)[:0]
		batchPool.Put(buf)
	}
	return err
}
