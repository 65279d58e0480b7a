package engineio

import (
	"sync"
	"time"
)

// beats keeps the heartbeat deadline of every session of one config
// (hbDeadline: the next ping, or the pong that is due) in one min-heap,
// with one timer armed for the earliest. A runtime timer per session, as
// time.AfterFunc makes, cost an idle session about 150 bytes (the
// *time.Timer, its callback and the runtime's heap slot) and a new
// goroutine at every ping; a slot here is 16 bytes, and one goroutine
// pings every session that is due.
//
// A session is in the heap at most once (Session.hbSlot), whatever its
// client sends: moving a deadline fixes the session's slot in place. A
// closing session leaves at once, so the heap never holds a closed one.
// The heap belongs to the config, as the clock and the intervals do:
// after a reload, the old config's sessions keep their heap, which stops
// its timer once the last of them has gone.
type beats struct {
	clock clock

	mu    sync.Mutex
	heap  []beat
	timer timer         // nil until first armed
	armed time.Duration // the stamp the timer is armed for; 0: not armed
}

type beat struct {
	s   *Session
	due time.Duration // a stamp (stampOf)
}

// beatBatch bounds how many due sessions one pass takes out of the heap
// before pinging them outside its lock.
const beatBatch = 64

// set makes due the session's deadline, adding it to the heap if it is
// not there. s.mu is held (lock order: Session.mu, then beats.mu).
func (b *beats) set(s *Session, due time.Duration) {
	b.mu.Lock()
	if i := int(s.hbSlot) - 1; i >= 0 {
		old := b.heap[i].due
		b.heap[i].due = due
		if due < old {
			b.up(i)
		} else {
			b.down(i)
		}
	} else {
		b.heap = append(b.heap, beat{s: s, due: due})
		s.hbSlot = int32(len(b.heap))
		b.up(len(b.heap) - 1)
	}
	b.syncLocked()
	b.mu.Unlock()
}

// remove takes the session out of the heap, if it is there.
func (b *beats) remove(s *Session) {
	b.mu.Lock()
	if i := int(s.hbSlot) - 1; i >= 0 {
		b.removeLocked(i)
		b.syncLocked()
	}
	b.mu.Unlock()
}

func (b *beats) removeLocked(i int) {
	last := len(b.heap) - 1
	if i != last {
		b.swap(i, last)
	}
	b.heap[last].s.hbSlot = 0
	b.heap[last] = beat{}
	b.heap = b.heap[:last]
	if i != last {
		b.down(i)
		b.up(i)
	}
	if len(b.heap) == 0 {
		b.heap = nil // a connect storm does not keep its high-water mark
	} else if cap(b.heap) > 64 && len(b.heap) < cap(b.heap)/4 {
		b.heap = append([]beat(nil), b.heap...)
	}
}

// syncLocked arms the timer for the earliest deadline, or stops it when
// no session is left.
func (b *beats) syncLocked() {
	if len(b.heap) == 0 {
		if b.armed != 0 {
			b.timer.Stop()
			b.armed = 0
		}
		return
	}
	at := b.heap[0].due
	if at == b.armed {
		return
	}
	b.armed = at
	d := max(at-stampOf(b.clock.Now()), 0)
	if b.timer == nil {
		b.timer = b.clock.AfterFunc(d, b.fire)
		return
	}
	b.timer.Reset(d)
}

// fire takes the sessions that are due out of the heap, beatBatch at a
// time, and runs their heartbeat (a ping, or the ping timeout) without the
// heap's lock; each one that stays open puts itself back.
func (b *beats) fire() {
	var batch [beatBatch]*Session
	b.mu.Lock()
	b.armed = 0 // fired: whatever comes next must arm it again
	for {
		now := stampOf(b.clock.Now())
		n := 0
		for n < beatBatch && len(b.heap) > 0 && b.heap[0].due <= now {
			batch[n] = b.heap[0].s
			b.removeLocked(0)
			n++
		}
		if n == 0 {
			b.syncLocked()
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		for i := range n {
			batch[i].onHeartbeat()
			batch[i] = nil
		}
		b.mu.Lock()
	}
}

func (b *beats) less(i, j int) bool { return b.heap[i].due < b.heap[j].due }

func (b *beats) swap(i, j int) {
	b.heap[i], b.heap[j] = b.heap[j], b.heap[i]
	b.heap[i].s.hbSlot = int32(i + 1)
	b.heap[j].s.hbSlot = int32(j + 1)
}

func (b *beats) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !b.less(i, p) {
			return
		}
		b.swap(i, p)
		i = p
	}
}

func (b *beats) down(i int) {
	n := len(b.heap)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && b.less(r, c) {
			c = r
		}
		if !b.less(c, i) {
			return
		}
		b.swap(i, c)
		i = c
	}
}
