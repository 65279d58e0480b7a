//go:build unix

package engineio

import (
	"sync"
	"syscall"
	"time"
)

// directWrites: this platform has the write system call direct.go needs.
const directWrites = true

// rawWrite is one write(2) of p on the socket, inside RawConn.Control so
// that the descriptor stays open (and is not reused) meanwhile. Control,
// not RawConn.Write: the write never waits for the socket, so it needs
// neither the poller's state (Write resets it first, memory a broadcast
// would touch once per member) nor the net package's write lock, which
// b.mu already stands for (every write to the socket holds it).
func (b *batchConn) rawWrite(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	sc, ok := b.Conn.(syscall.Conn)
	if !ok {
		return 0, errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	c := rawWriteCalls.Get().(*rawWriteCall)
	c.p = p
	err = rc.Control(c.fn)
	n, werr := c.n, c.err
	*c = rawWriteCall{fn: c.fn}
	rawWriteCalls.Put(c)
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

// rawWriteCall is one rawWrite's callback and what it found, pooled: a
// closure handed to RawConn.Write escapes, and with it the variables it
// sets, three allocations on every direct write.
type rawWriteCall struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) // write, bound once
}

var rawWriteCalls = sync.Pool{New: func() any {
	c := new(rawWriteCall)
	c.fn = c.write
	return c
}}

func (c *rawWriteCall) write(fd uintptr) {
	for {
		c.n, c.err = sockWrite(int(fd), c.p)
		if c.err != syscall.EINTR {
			break
		}
	}
}

// processCPU is the CPU time the process has used so far, user and
// system (the cpu gauge's sample); 0 if the system does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
