package engineio

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Parking idle websockets.
//
// An idle websocket reader would spend its time blocked in a read: a
// goroutine and its stack (4-8 KiB once it has run a handler) per
// connection, more than everything else an idle session holds. Where the
// platform allows it (park_linux.go: an epoll set), a reader that has
// nothing left to read parks instead: it registers the socket with the
// server's poller and its goroutine ends. When a frame arrives (or the
// peer hangs up) the poller starts a new reader goroutine, which reads
// until nothing is buffered and parks again. Elsewhere, and for
// connections that buffer on their own (TLS, wrapped listeners), the
// reader stays a goroutine blocked in its read, as before.
//
// gorilla/websocket reads through a bufio.Reader: bytes already in it
// would never wake the poller. The engine hands gorilla its own reader
// (see hijackWriter.Hijack), so a reader parks only when that buffer is
// empty; a frame split across reads is finished by a goroutine blocked in
// the read as usual. While a connection is parked its reader's buffer is lent to
// a pool (releaseBuf) and given back before a reader resumes (restoreBuf),
// so an idle connection holds no read buffer either.
//
// States of a parkable connection (parker.state, under parker.mu):
// reading (a goroutine owns the read side), parked (registered with the
// poller, no goroutine) and closed. Only the reader parks (reading to
// parked); the poller's wake-up (parked to reading) and Close (any to
// closed) start a new reader for a parked connection, so exactly one
// goroutine reads at a time and a parked connection that is closed by the
// server still has its reader end (and release the session) as it would
// have had it been blocked in the read. While parked, a reader still
// counts as running for the session (wsLive) and for Server.Close
// (active): nothing in the lifecycle tells the two apart.

// readLinger is how long a reader that has just read a frame waits, as a
// goroutine in the runtime's poller, before it parks. Waking a parked
// reader costs a thread switch and a new goroutine, several microseconds a
// frame: a busy connection keeps its reader, an idle one parks soon (a
// longer linger keeps more goroutines alive during a connect storm, whose
// stacks stay in the process's RSS).
var readLinger = 100 * time.Millisecond // a variable only so that tests may shorten it (TestMain)

// readBufferSize is gorilla's read buffer per connection: frame headers
// and small packets (larger payloads take more reads). gorilla reuses a
// reader handed to it only if it is larger than 256 bytes.
const readBufferSize = 512

const (
	parkReading uint8 = iota
	parkParked
	parkClosed
)

// parker is the parking state of one websocket connection, part of its
// batchConn.
type parker struct {
	mu         sync.Mutex
	state      uint8
	registered bool          // added to the poller (later parks re-arm it)
	noPark     bool          // not parkable (see parkable), or the poller refused it
	plain      bool          // parkable: direct writes may reach the socket (direct.go)
	id         uint64        // the poller's key, never reused
	br         *bufio.Reader // gorilla's reader: park only when it is empty
	s          *Session      // resumed by the poller or by Close
	c          *websocket.Conn
	poll       *poller
}

// parkable reports whether a hijacked connection can be watched by the
// poller: only plain TCP and unix sockets, which hold no buffer of their
// own above the kernel's (a *tls.Conn does, and so may unknown wrappers).
func parkable(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// waitOrPark runs before each read of readLoop but the first after a
// wake-up. With nothing buffered it waits up to readLinger for the socket
// to become readable and, if it does not, parks the reader (true: the
// caller returns, see parkRead). false: read now.
func (s *Session) waitOrPark(c *websocket.Conn) bool {
	bc, ok := s.parking(c)
	if !ok {
		return false
	}
	var b [1]byte
	if ready, _ := waitReadable(bc.Conn, readLinger, b[:]); ready {
		return false
	}
	return s.parkRead(c)
}

// parking returns c's connection when its reader may park now: the
// engine's own (hijackWriter), parkable, parking not turned off, and
// nothing left in gorilla's buffer (bytes there would never wake the
// poller). Only the reader sets noPark, so it reads it unlocked.
func (s *Session) parking(c *websocket.Conn) (*batchConn, bool) {
	bc, ok := c.NetConn().(*batchConn)
	if !ok || bc.pk.br == nil || bc.pk.br.Buffered() > 0 || bc.pk.noPark || s.cfg.DisableParking {
		return nil, false
	}
	return bc, true
}

// parkRead parks the reader of c if it may: the connection is parkable,
// parking is enabled, gorilla has nothing buffered and the connection is
// not closed. It returns true if the reader parked: the caller's goroutine
// must then return without touching c; a later frame, hang-up or Close
// runs readLoop again on a new goroutine.
func (s *Session) parkRead(c *websocket.Conn) bool {
	bc, ok := s.parking(c)
	if !ok {
		return false
	}
	pk := &bc.pk
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.state != parkReading {
		return false
	}
	pk.s, pk.c = s, c
	// A connection stays with its poller while registered; otherwise it
	// takes the server's current one, and a poller retiring meanwhile
	// (its last connection just left) sends it to the next.
	for range 3 {
		if !pk.registered {
			pk.poll = s.srv.poller()
			if pk.poll == nil {
				return false
			}
		}
		err := pk.poll.arm(bc, pk)
		if err == nil {
			pk.state = parkParked
			pk.releaseBuf()
			return true
		}
		if errors.Is(err, errRetired) && !pk.registered {
			continue
		}
		if ce := s.log().Check(zap.DebugLevel, "websocket not parked"); ce != nil {
			ce.Write(zap.Error(err))
		}
		pk.noPark = true // keep reading with a goroutine from now on
		return false
	}
	return false // the reader blocks in this read, and tries again after it
}

// parkState is the server's poller, started by the first reader that
// parks and stopped by Server.Close.
type parkState struct {
	p       atomic.Pointer[poller]
	stopped bool // under Server.mu: no poller is started any more
	failed  bool // under Server.mu: starting one failed; readers do not park
}

// poller returns the server's poller, starting it if needed; nil once the
// server is closing, or if the platform has none.
func (srv *Server) poller() *poller {
	if p := srv.park.p.Load(); p != nil {
		return p
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if p := srv.park.p.Load(); p != nil {
		return p
	}
	if srv.closing || srv.park.stopped || srv.park.failed {
		return nil
	}
	p, err := newPoller(&srv.park)
	if err != nil {
		srv.park.failed = true
		if ce := srv.cfg.Load().Logger.Check(zap.DebugLevel, "websocket readers will not park"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return nil
	}
	srv.park.p.Store(p)
	return p
}

// stopPoller ends the server's poller (Server.Close). Connections still
// registered are closed by Close's own path, which resumes their readers
// (their forget then finds the set closed).
func (srv *Server) stopPoller() {
	srv.mu.Lock()
	srv.park.stopped = true
	p := srv.park.p.Load()
	srv.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// readerPool holds the read buffers of parked connections: a
// *bufio.Reader of readBufferSize, reading from nothing.
var readerPool sync.Pool

// releaseBuf lends the read buffer of a connection that parks to
// readerPool: gorilla's reader (pk.br, which gorilla keeps a pointer to)
// is left empty, so a parked connection holds no buffer. It is empty
// anyway (a reader parks only when nothing is buffered), and nothing
// reads it until restoreBuf. pk.mu is held.
func (pk *parker) releaseBuf() {
	lent := new(bufio.Reader)
	*lent = *pk.br
	lent.Reset(nil)
	*pk.br = bufio.Reader{}
	readerPool.Put(lent)
}

// restoreBuf gives gorilla's reader a buffer again before a reader
// resumes: one from readerPool, or a new one. pk.mu is held.
func (pk *parker) restoreBuf(bc *batchConn) {
	r, _ := readerPool.Get().(*bufio.Reader)
	if r == nil {
		r = bufio.NewReaderSize(bc, readBufferSize)
	} else {
		r.Reset(bc)
	}
	*pk.br = *r
}

// resume starts the reader of a connection that was parked.
func (pk *parker) resume() {
	go pk.s.readLoop(pk.c, false)
}

// wake is the poller's: the parked connection is readable (or hung up).
func (pk *parker) wake() {
	pk.mu.Lock()
	if pk.state != parkParked {
		pk.mu.Unlock()
		return
	}
	pk.state = parkReading
	pk.restoreBuf(pk.c.NetConn().(*batchConn))
	pk.mu.Unlock()
	pk.resume()
}

// Close implements net.Conn. A parked connection leaves the poller before
// its socket is closed (so the poller never sees a reused descriptor), and
// its reader is resumed to end as a blocked reader would: on the read
// error of a closed connection.
func (b *batchConn) Close() error {
	pk := &b.pk
	pk.mu.Lock()
	was := pk.state
	pk.state = parkClosed
	if pk.registered {
		pk.poll.forget(b, pk)
		pk.registered = false
	}
	err := b.Conn.Close()
	if was == parkParked {
		pk.restoreBuf(b)
	}
	pk.mu.Unlock()
	if was == parkParked {
		pk.resume()
	}
	return err
}

// wholeFrame reports whether b starts with one whole final text or binary
// frame as a client sends it (masked): its header and all of its payload.
func wholeFrame(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	fin, opcode := b[0]&0x80 != 0, b[0]&0x0f
	if !fin || (opcode != 1 && opcode != 2) {
		return false
	}
	size, n := uint64(b[1]&0x7f), 2
	switch size {
	case 126:
		if len(b) < 4 {
			return false
		}
		size, n = uint64(b[2])<<8|uint64(b[3]), 4
	case 127:
		if len(b) < 10 {
			return false
		}
		size = 0
		for _, x := range b[2:10] {
			size = size<<8 | uint64(x)
		}
		n = 10
	}
	if b[1]&0x80 != 0 {
		n += 4 // the mask key
	}
	return len(b) >= n && size <= uint64(len(b)-n)
}
