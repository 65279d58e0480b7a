package realtime

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeWaiter stands in for a connection in connectWait's queue.
type fakeWaiter struct {
	ticket   waitTicket
	timedOut atomic.Int64 // stamp of the time-out, 0 while none
}

func (f *fakeWaiter) waitTicket() *waitTicket { return &f.ticket }
func (f *fakeWaiter) onConnectTimeout()       { f.timedOut.Store(int64(waitStamp())) }

// Waiters time out when their own timeout has passed, in due order across
// timeouts (a reload that shortens the timeout does not make new
// connections wait for the old ones), and never while they wait less.
func TestConnectWaitOrder(t *testing.T) {
	var cw connectWait
	defer cw.stop()
	start := waitStamp()
	long, short := &fakeWaiter{}, &fakeWaiter{}
	cw.add(long, 600*time.Millisecond)
	cw.add(short, 150*time.Millisecond)
	waitFor(t, "the short timeout", func() bool { return short.timedOut.Load() != 0 })
	if long.timedOut.Load() != 0 {
		t.Fatal("the long timeout fired with the short one")
	}
	if got := time.Duration(short.timedOut.Load()) - start; got < 150*time.Millisecond {
		t.Fatalf("short timed out after %v, before its 150ms", got)
	}
	waitFor(t, "the long timeout", func() bool { return long.timedOut.Load() != 0 })
	if got := time.Duration(long.timedOut.Load()) - start; got < 600*time.Millisecond {
		t.Fatalf("long timed out after %v, before its 600ms", got)
	}
	if n := cw.waiting(); n != 0 {
		t.Fatalf("%d still waiting", n)
	}
}

// A waiter that leaves (it joined, or closed) never times out, and the
// queue lets go of it at once: a connect storm whose clients all join
// leaves no entry and no storage behind, whatever the order they join in.
func TestConnectWaitRemove(t *testing.T) {
	var cw connectWait
	defer cw.stop()
	const n = 10000
	ws := make([]*fakeWaiter, n)
	for i := range ws {
		ws[i] = &fakeWaiter{}
		cw.add(ws[i], time.Hour)
	}
	// Every other one leaves first, then the rest from the back.
	for i := 0; i < n; i += 2 {
		cw.remove(ws[i])
	}
	if got := cw.waiting(); got != n/2 {
		t.Fatalf("%d waiting, want %d", got, n/2)
	}
	for i := n - 1; i > 0; i -= 2 {
		cw.remove(ws[i])
		cw.remove(ws[i]) // twice: a close after a join
	}
	cw.mu.Lock()
	queues := len(cw.queues)
	cw.mu.Unlock()
	if queues != 0 || cw.waiting() != 0 {
		t.Fatalf("%d queues, %d waiting after every waiter left", queues, cw.waiting())
	}
	for i, w := range ws {
		if w.ticket != (waitTicket{}) {
			t.Fatalf("waiter %d keeps its ticket", i)
		}
	}
	// The queue starts over cleanly, and a waiter added now still times out.
	w := &fakeWaiter{}
	cw.add(w, 20*time.Millisecond)
	waitFor(t, "a time-out after the queue emptied", func() bool { return w.timedOut.Load() != 0 })
}

// Leaving in the order of arrival keeps the queue compact while others
// still wait behind.
func TestConnectWaitCompacts(t *testing.T) {
	var cw connectWait
	defer cw.stop()
	ws := make([]*fakeWaiter, 1000)
	for i := range ws {
		ws[i] = &fakeWaiter{}
		cw.add(ws[i], time.Hour)
	}
	for _, w := range ws[:990] {
		cw.remove(w)
	}
	cw.mu.Lock()
	q := cw.queues[time.Hour]
	held := len(q.entries)
	cw.mu.Unlock()
	if held > 100 {
		t.Fatalf("%d entries held for 10 waiters", held)
	}
	for _, w := range ws[990:] {
		cw.remove(w)
	}
	if cw.waiting() != 0 {
		t.Fatal("waiters left")
	}
}

// After stop nothing times out and add takes nothing.
func TestConnectWaitStop(t *testing.T) {
	var cw connectWait
	w := &fakeWaiter{}
	cw.add(w, 30*time.Millisecond)
	cw.stop()
	late := &fakeWaiter{}
	cw.add(late, time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if w.timedOut.Load() != 0 || late.timedOut.Load() != 0 {
		t.Fatal("a waiter timed out after stop")
	}
	cw.remove(w) // harmless after stop
}

// waiting is how many waiters are queued (tests).
func (cw *connectWait) waiting() int {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	n := 0
	for _, q := range cw.queues {
		for _, e := range q.entries[q.head:] {
			if e.w != nil {
				n++
			}
		}
	}
	return n
}
