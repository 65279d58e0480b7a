package testkit

import (
	"bytes"
	"sync"
	"time"
)

// SyncBuffer collects a process's output (its Stdout and Stderr at once)
// for later assertions; WaitFor waits on what the process writes.
type SyncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced by every Write
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return n, err
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor waits until cond holds for the output so far, checking after
// every write. It returns false after within, or once stop is closed (the
// process has exited) and cond still does not hold.
func (b *SyncBuffer) WaitFor(within time.Duration, stop <-chan struct{}, cond func(out string) bool) bool {
	timer := time.NewTimer(within)
	defer timer.Stop()
	stopped := false
	for {
		b.mu.Lock()
		out := b.buf.String()
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if cond(out) {
			return true
		}
		if stopped {
			return false
		}
		select {
		case <-changed:
		case <-stop:
			stopped = true // look once more: the last lines may have just come
		case <-timer.C:
			return false
		}
	}
}
