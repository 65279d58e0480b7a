//go:build unix

package engineio

import (
	"syscall"
	"time"
)

// directWrites: this platform has the write system call direct.go needs.
const directWrites = true

// rawWrite is one write(2) of p on the socket, through the net package so
// that the descriptor stays open (and is not reused) meanwhile.
func (b *batchConn) rawWrite(p []byte) (int, error) {
	sc, ok := b.Conn.(syscall.Conn)
	if !ok {
		return 0, errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				break
			}
		}
		return true // never wait for the socket: the writer does that
	})
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

// processCPU is the CPU time the process has used so far, user and
// system (the cpu gauge's sample); 0 if the system does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
