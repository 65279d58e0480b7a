//go:build unix

package engineio

import (
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// directFD is a socket's descriptor as direct writes use it: written with
// write(2) itself, not through the net package. That saves, per write, the
// poller's deadline bookkeeping, the descriptor's own write lock and an
// allocation (a sixth of a delivery's CPU at 5000 x 10 msg/s, most of it
// cache misses on thousands of connections' structures). What the net
// package would guarantee it guarantees itself:
//   - the descriptor is not closed, and so not reused by another
//     connection, while a direct write is on it: batchConn.Close, the only
//     way the engine closes the socket, waits (close) for the write in
//     flight, which never blocks, and turns direct writes off first;
//   - no other write runs at the same time: direct writes happen under
//     batchConn.mu, which every other write holds (direct.go).
//
// The state is one word: 0 when direct writes are off (not a plain socket,
// or closed), otherwise the descriptor plus one, with directBusy set while
// a write is on it.
type directFD struct {
	v atomic.Int32
}

// directBusy marks a write in flight; descriptors stay below it.
const directBusy = 1 << 30

// open turns direct writes on for c's descriptor, if c has one that
// fits. The descriptor stays open as long as c: only its Close, after
// close, ends it.
func (d *directFD) open(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if fd < directBusy-1 {
			d.v.Store(int32(fd) + 1)
		}
	})
}

// usable reports whether direct writes are on.
func (d *directFD) usable() bool { return d.v.Load() != 0 }

// write makes one non-blocking write(2) of p and returns how much the
// socket took: 0, nil when its buffer is full; an error when direct writes
// are off or the call failed (nothing written).
func (d *directFD) write(p []byte) (int, error) {
	v := d.v.Load()
	if v == 0 || v&directBusy != 0 || !d.v.CompareAndSwap(v, v|directBusy) {
		return 0, errNoDescriptor
	}
	var n int
	var err error
	for {
		n, err = syscall.Write(int(v-1), p)
		if err != syscall.EINTR {
			break
		}
	}
	d.v.Store(v) // close waits for this, and changes nothing meanwhile
	switch {
	case err == syscall.EAGAIN:
		return 0, nil
	case err != nil:
		return 0, err
	}
	return n, nil
}

// close turns direct writes off, waiting for a write in flight (one
// non-blocking system call) to end.
func (d *directFD) close() {
	for {
		v := d.v.Load()
		if v == 0 {
			return
		}
		if v&directBusy == 0 && d.v.CompareAndSwap(v, 0) {
			return
		}
		runtime.Gosched()
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
