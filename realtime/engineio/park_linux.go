//go:build linux

package engineio

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// poller is an epoll set of parked websocket connections and the goroutine
// that waits on it (see park.go). Each connection is registered one-shot:
// an event disarms it, and the reader re-arms it when it parks again, so
// exactly one wake-up follows each park. A poller lives while it has
// connections: the last one to leave retires it (its goroutine ends, as
// every goroutine of a server without sessions does), and the next park
// starts a new one.
type poller struct {
	owner *parkState
	epfd  int
	wake  [2]int // a pipe: a byte on wake[1] ends run
	done  chan struct{}

	// rw orders epoll_ctl calls (read-locked) before run closes the
	// descriptors (write-locked); closed is set under it.
	rw     sync.RWMutex
	closed bool

	mu      sync.Mutex
	conns   map[uint64]*parker // by parker.id; 0 is the wake pipe
	next    uint64
	retired bool // no connection may join any more; run is ending
}

// pollEvents is how many events one epoll_wait returns at most.
const pollEvents = 256

func newPoller(owner *parkState) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the epoll set: %w", err)
	}
	p := &poller{owner: owner, epfd: epfd, done: make(chan struct{}), conns: make(map[uint64]*parker)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("creating the poller's wake pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("watching the poller's wake pipe: %w", err)
	}
	go p.run()
	return p, nil
}

func (p *poller) closeFDs() {
	_ = syscall.Close(p.epfd)
	_ = syscall.Close(p.wake[0])
	_ = syscall.Close(p.wake[1])
}

// run waits for events until the poller retires, and resumes the reader
// of each connection that became readable. It closes the set on its way
// out, once no epoll_ctl is running.
func (p *poller) run() {
	defer func() {
		p.rw.Lock()
		p.closed = true
		p.rw.Unlock()
		p.closeFDs()
		close(p.done)
	}()
	events := make([]syscall.EpollEvent, pollEvents)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return // the set is unusable; parked readers are resumed by Close
		}
		for i := range n {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				return
			}
			p.mu.Lock()
			pk := p.conns[id]
			p.mu.Unlock()
			if pk != nil {
				pk.wake()
			}
		}
	}
}

// retire makes the poller refuse new connections and ends run, once; it
// reports whether this call did it. p.mu is held.
func (p *poller) retireLocked() bool {
	if p.retired {
		return false
	}
	p.retired = true
	p.owner.p.CompareAndSwap(p, nil)
	// The pipe is open until run reads this byte and ends.
	_, _ = syscall.Write(p.wake[1], []byte{0})
	return true
}

// stop retires the poller and waits for run to end (Server.Close).
func (p *poller) stop() {
	p.mu.Lock()
	p.retireLocked()
	clear(p.conns)
	p.mu.Unlock()
	<-p.done
}

// errRetired: the poller was retiring when a reader tried to park; the
// reader tries the server's next poller.
var errRetired = errors.New("poller retired")

// arm registers bc (first park) or re-arms it; pk.mu is held.
func (p *poller) arm(bc *batchConn, pk *parker) error {
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.closed {
		return errRetired
	}
	op := syscall.EPOLL_CTL_MOD
	if !pk.registered {
		op = syscall.EPOLL_CTL_ADD
		p.mu.Lock()
		if p.retired {
			p.mu.Unlock()
			return errRetired
		}
		p.next++
		pk.id = p.next
		p.conns[pk.id] = pk
		p.mu.Unlock()
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(pk.id)),
		Pad:    int32(uint32(pk.id >> 32)),
	}
	if err := p.ctl(bc, op, &ev); err != nil {
		if !pk.registered {
			p.mu.Lock()
			delete(p.conns, pk.id)
			if len(p.conns) == 0 {
				p.retireLocked()
			}
			p.mu.Unlock()
		}
		return err
	}
	pk.registered = true
	return nil
}

// forget removes bc from the set before its socket is closed, and
// retires the poller if it was the last; pk.mu is held.
func (p *poller) forget(bc *batchConn, pk *parker) {
	p.rw.RLock()
	if !p.closed {
		_ = p.ctl(bc, syscall.EPOLL_CTL_DEL, &syscall.EpollEvent{})
	}
	p.rw.RUnlock()
	p.mu.Lock()
	delete(p.conns, pk.id)
	if len(p.conns) == 0 {
		p.retireLocked()
	}
	p.mu.Unlock()
}

// ctl runs epoll_ctl on bc's socket while the net package holds it open,
// so the descriptor cannot be closed (and reused) meanwhile.
func (p *poller) ctl(bc *batchConn, op int, ev *syscall.EpollEvent) error {
	sc, ok := bc.Conn.(syscall.Conn)
	if !ok {
		return errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("reaching the socket: %w", err)
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.epfd, op, int(fd), ev)
	}); err != nil {
		return fmt.Errorf("reaching the socket: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("epoll_ctl: %w", cerr)
	}
	return nil
}

// waitReadable waits up to d, in the runtime's poller, until c has bytes
// to read (or the peer hung up, or c is closed); false if d passed first.
// It peeks into peek, taking nothing from the socket, and returns how many
// bytes it saw there (the readers pass one byte; readFirst enough for a
// first frame). The read deadline it sets is cleared before it returns,
// so the next read has none (the engine sets no read deadline of its own).
func waitReadable(c net.Conn, d time.Duration, peek []byte) (ready bool, n int) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true, 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, 0
	}
	readable := func(fd uintptr) bool {
		// A peek, because the runtime may report a socket ready that
		// gorilla has already drained.
		var perr error
		n, _, perr = syscall.Recvfrom(int(fd), peek, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(perr, syscall.EAGAIN)
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	err = rc.Read(readable)
	_ = c.SetReadDeadline(time.Time{})
	return !errors.Is(err, os.ErrDeadlineExceeded), max(n, 0)
}
