package realtime

import (
	"sync"
	"time"
)

// connectWait closes the connections that joined no namespace within
// Options.ConnectTimeout (Socket.IO v5's connectTimeout), with one timer
// for the whole server instead of one per connection. A runtime timer is
// about 100 bytes, and a stopped one stays in the runtime's timer heap
// until the runtime sweeps it, so every connection, long after its
// CONNECT, held one: a thirtieth of an idle connection's heap. Here a
// waiting connection is an entry in a queue, and the entry lets go of the
// connection as soon as it joins or closes.
//
// Connections wait in one queue per timeout, in the order they came, so
// that each queue is in due order (a reload that changes the timeout
// starts a second queue). The timer is armed for the earliest head.
type connectWait struct {
	mu     sync.Mutex
	queues map[time.Duration]*waitQueue
	timer  *time.Timer
	armed  time.Duration // the stamp the timer fires at; 0: not armed
	closed bool
}

// waitQueue holds the connections of one timeout in due order:
// entries[head:] wait (nil where one left early); entries[i] is ticket
// base+i.
type waitQueue struct {
	timeout time.Duration
	entries []waitEntry
	head    int
	base    uint64
}

type waitEntry struct {
	w   connectWaiter
	due time.Duration // a stamp (waitStamp)
}

// connectWaiter is what waits: a connection (conn), or a test's stand-in.
type connectWaiter interface {
	// waitTicket is where the waiter's place in a queue is kept; only
	// connectWait touches it, under its mutex.
	waitTicket() *waitTicket
	// onConnectTimeout runs when the timeout passed with the waiter still
	// in the queue, without connectWait's mutex.
	onConnectTimeout()
}

// waitTicket is a waiter's place: its queue (nil when it waits in none)
// and its number there.
type waitTicket struct {
	q   *waitQueue
	seq uint64
}

// waitEpoch and waitStamp give monotonic stamps as durations.
var waitEpoch = time.Now()

func waitStamp() time.Duration { return time.Since(waitEpoch) }

// add makes w wait for timeout. A stopped connectWait takes nothing (the
// server closes its connections itself).
func (cw *connectWait) add(w connectWaiter, timeout time.Duration) {
	due := waitStamp() + timeout
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.closed {
		return
	}
	q := cw.queues[timeout]
	if q == nil {
		if cw.queues == nil {
			cw.queues = make(map[time.Duration]*waitQueue, 1)
		}
		q = &waitQueue{timeout: timeout}
		cw.queues[timeout] = q
	}
	*w.waitTicket() = waitTicket{q: q, seq: q.base + uint64(len(q.entries))}
	q.entries = append(q.entries, waitEntry{w: w, due: due})
	if cw.armed == 0 || due < cw.armed {
		cw.armLocked(due)
	}
}

// remove ends w's wait (it joined a namespace, or closed): the queue lets
// go of it at once.
func (cw *connectWait) remove(w connectWaiter) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	t := w.waitTicket()
	q, seq := t.q, t.seq
	if q == nil {
		return
	}
	*t = waitTicket{}
	if cw.closed {
		return
	}
	if i := seq - q.base; seq >= q.base && i < uint64(len(q.entries)) {
		q.entries[i] = waitEntry{}
	}
	cw.trimLocked(q)
}

// trimLocked drops the entries at q's head that left early, compacts the
// queue once most of it is spent, and forgets a queue left empty (with its
// storage: a connect storm does not keep its high-water mark).
func (cw *connectWait) trimLocked(q *waitQueue) {
	for q.head < len(q.entries) && q.entries[q.head].w == nil {
		q.head++
	}
	switch {
	case q.head == len(q.entries):
		delete(cw.queues, q.timeout) // no ticket names it any more
	case q.head >= 64 && q.head >= len(q.entries)/2:
		n := copy(q.entries, q.entries[q.head:])
		clear(q.entries[n:])
		q.entries = q.entries[:n]
		q.base += uint64(q.head)
		q.head = 0
	}
}

// armLocked (re)arms the timer for the stamp at.
func (cw *connectWait) armLocked(at time.Duration) {
	cw.armed = at
	d := max(at-waitStamp(), 0)
	if cw.timer == nil {
		cw.timer = time.AfterFunc(d, cw.fire)
		return
	}
	cw.timer.Reset(d)
}

// fire times out every waiter that is due, then arms the timer for the
// next one.
func (cw *connectWait) fire() {
	now := waitStamp()
	var due []connectWaiter
	cw.mu.Lock()
	if cw.closed {
		cw.mu.Unlock()
		return
	}
	cw.armed = 0
	next := time.Duration(0)
	for _, q := range cw.queues {
		for q.head < len(q.entries) {
			e := q.entries[q.head]
			if e.w != nil && e.due > now {
				if next == 0 || e.due < next {
					next = e.due
				}
				break
			}
			if e.w != nil {
				*e.w.waitTicket() = waitTicket{}
				due = append(due, e.w)
			}
			q.entries[q.head] = waitEntry{}
			q.head++
		}
		cw.trimLocked(q)
	}
	if next != 0 {
		cw.armLocked(next)
	}
	cw.mu.Unlock()
	for _, w := range due {
		w.onConnectTimeout()
	}
}

// stop ends the timer and lets go of every waiter; add does nothing after
// it. The server calls it when it closes.
func (cw *connectWait) stop() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.closed = true
	if cw.timer != nil {
		cw.timer.Stop()
	}
	cw.queues = nil
}
