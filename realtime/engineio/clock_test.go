package engineio

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test calls advance.
//
// Due timers fire synchronously, on advance's goroutine, one at a time in
// deadline order (ties in the order they were armed), each seeing Now()
// at its own deadline: an AfterFunc callback runs there, unlocked, and a
// NewTimer's channel (buffered 1) receives its value without blocking.
// advance returns once every timer due by the new time has fired,
// including those a callback armed or re-armed within it. So when advance
// returns, whatever the engine does on the timer's goroutine (a ping
// queued, a session closed and its OnClose run) is done; what other
// goroutines do in response (the websocket writer writing the ping) is
// not, and the test waits for it as for any network event.
//
// A timer armed with d <= 0 is due at once and fires at the next advance
// (advance(0) fires it). Stop and Reset clear a value a NewTimer's
// channel has not delivered yet, as Go 1.23+ timers do.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{}
	arms    uint64        // arm events so far (see mark)
	changed chan struct{} // closed and replaced when a timer is armed
}

type fakeTimer struct {
	c      *fakeClock
	f      func()         // AfterFunc's
	ch     chan time.Time // NewTimer's
	d      time.Duration  // armed for
	when   time.Time
	armSeq uint64
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:     time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		armed:   make(map[*fakeTimer]struct{}),
		changed: make(chan struct{}),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	t := &fakeTimer{c: c, f: f}
	t.Reset(d)
	return t
}

func (c *fakeClock) NewTimer(d time.Duration) chanTimer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.armed[t]
	delete(c.armed, t)
	t.drainLocked()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.armed[t]
	t.drainLocked()
	t.d = d
	t.when = c.now.Add(d)
	c.arms++
	t.armSeq = c.arms
	c.armed[t] = struct{}{}
	close(c.changed)
	c.changed = make(chan struct{})
	return was
}

func (t *fakeTimer) drainLocked() {
	if t.ch != nil {
		select {
		case <-t.ch:
		default:
		}
	}
}

// advance moves the clock forward by d, firing the timers due by then
// (see fakeClock).
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for t := range c.armed {
			if t.when.After(target) {
				continue
			}
			if next == nil || t.when.Before(next.when) || t.when.Equal(next.when) && t.armSeq < next.armSeq {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if next.when.After(c.now) {
			c.now = next.when
		}
		delete(c.armed, next)
		if next.ch != nil {
			select {
			case next.ch <- c.now:
			default:
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		next.f()
	}
}

// mark returns a point in the clock's arm events, for waitArmed.
func (c *fakeClock) mark() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arms
}

// waitArmed waits, in real time up to testTimeout, until a timer armed
// for d after mark (see mark) is pending: another goroutine of the engine
// has started the timer the test is about to run out.
func (c *fakeClock) waitArmed(t *testing.T, d time.Duration, mark uint64) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		c.mu.Lock()
		found := false
		for tm := range c.armed {
			if tm.d == d && tm.armSeq > mark {
				found = true
				break
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no timer of %v armed", d)
		}
	}
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	var fired []string
	at := func(name string) func() {
		return func() { fired = append(fired, name+"@"+c.Now().Sub(start).String()) }
	}
	c.AfterFunc(2*time.Second, at("b"))
	a := c.AfterFunc(time.Second, at("a"))
	stopped := c.AfterFunc(time.Second, at("stopped"))
	var rearm timer
	rearm = c.AfterFunc(1500*time.Millisecond, func() {
		at("r")()
		rearm.Reset(time.Second) // due within this advance
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of a pending timer")
	}
	ch := c.NewTimer(3 * time.Second)

	c.advance(time.Second - time.Nanosecond)
	if len(fired) != 0 {
		t.Fatalf("fired early: %v", fired)
	}
	c.advance(2 * time.Second)
	if got := strings.Join(fired, " "); got != "a@1s r@1.5s b@2s r@2.5s" {
		t.Errorf("fired %s", got)
	}
	if a.Reset(time.Second) {
		t.Error("Reset of a fired timer reports it pending")
	}
	select {
	case <-ch.Chan():
		t.Error("channel timer delivered early")
	default:
	}
	c.advance(time.Nanosecond)
	select {
	case v := <-ch.Chan():
		if v.Sub(start) != 3*time.Second {
			t.Errorf("channel timer delivered %v", v.Sub(start))
		}
	default:
		t.Error("channel timer not delivered")
	}
	ch.Reset(time.Second)
	c.advance(time.Second)
	ch.Reset(time.Second) // clears the undelivered value
	select {
	case <-ch.Chan():
		t.Error("value of the previous period delivered after Reset")
	default:
	}
}

// awaitingPong reports whether the session has sent a ping and waits for
// its pong.
func awaitingPong(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awaitingPong
}

// closedNow returns the reason of a session that is closed already: after
// a fake clock's advance, one that a timer closed. Its OnClose has run, or
// runs on a goroutine of its own (a ping timeout's), which this waits for.
func closedNow(t *testing.T, r *recorder) string {
	t.Helper()
	if !closedYet(r.s) {
		t.Fatal("the session is still open")
	}
	return r.waitClose(t)
}

// closedYet reports whether the session has started closing: closeWith
// sets closed on its caller's goroutine, before any OnClose runs.
func closedYet(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
