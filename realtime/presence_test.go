package realtime

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a clock whose time moves only when the test says:
// advance fires the timers that are due, in order.
type manualClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

func newManualClock() *manualClock { return &manualClock{t: time.Unix(1_000_000, 0)} }

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) stopTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.t.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// advance moves the time by d, running each due timer (outside the lock,
// as time.AfterFunc runs them on their own goroutine).
func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	end := c.t.Add(d)
	c.mu.Unlock()
	for range 10000 {
		c.mu.Lock()
		slices.SortStableFunc(c.timers, func(a, b *manualTimer) int { return a.at.Compare(b.at) })
		var due *manualTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(end) {
				due = t
				c.timers = slices.Delete(c.timers, i, i+1)
			}
			break
		}
		if due == nil {
			c.t = end
			c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool { return t.stopped })
			c.mu.Unlock()
			return
		}
		c.t = due.at
		due.stopped = true
		c.mu.Unlock()
		due.f()
	}
	panic("manualClock: timers keep re-arming")
}

// presenceLog records a Presence's reports.
type presenceLog struct {
	mu  sync.Mutex
	got []string
}

func (l *presenceLog) add(s string) {
	l.mu.Lock()
	l.got = append(l.got, s)
	l.mu.Unlock()
}

func (l *presenceLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

func newTestPresence(opts PresenceOptions) (*Presence, *manualClock, *presenceLog) {
	log := &presenceLog{}
	opts.OnOnline = func(k string) { log.add("online " + k) }
	opts.OnOffline = func(k string) { log.add("offline " + k) }
	p := NewPresence(opts)
	c := newManualClock()
	p.clock, p.now = c, c.now
	return p, c, log
}

// TestPresenceTransitions: a key goes online with its first socket and
// offline once its last one has been gone for the grace; a socket back
// within the grace means no offline and no second online.
func TestPresenceTransitions(t *testing.T) {
	tests := []struct {
		name  string
		steps func(p *Presence, c *manualClock)
		want  []string
	}{
		{"one socket, gone past the grace", func(p *Presence, c *manualClock) {
			p.Add("alice")
			p.Remove("alice")
			c.advance(9 * time.Second)
			c.advance(2 * time.Second)
		}, []string{"online alice", "offline alice"}},
		{"one of two drops and returns", func(p *Presence, c *manualClock) {
			p.Add("alice")
			p.Add("alice")
			p.Remove("alice")
			c.advance(5 * time.Second)
			p.Add("alice")
			c.advance(time.Minute)
		}, []string{"online alice"}},
		{"both gone, one back within the grace", func(p *Presence, c *manualClock) {
			p.Add("alice")
			p.Add("alice")
			p.Remove("alice")
			p.Remove("alice")
			c.advance(9 * time.Second)
			p.Add("alice")
			c.advance(time.Minute)
		}, []string{"online alice"}},
		{"both gone past the grace: one offline", func(p *Presence, c *manualClock) {
			p.Add("alice")
			p.Add("alice")
			p.Remove("alice")
			c.advance(3 * time.Second)
			p.Remove("alice")
			c.advance(9 * time.Second) // 12s after the first, 9s after the last
			c.advance(2 * time.Second)
		}, []string{"online alice", "offline alice"}},
		{"back after the grace: online again", func(p *Presence, c *manualClock) {
			p.Add("bob")
			p.Remove("bob")
			c.advance(11 * time.Second)
			p.Add("bob")
		}, []string{"online bob", "offline bob", "online bob"}},
		{"graces end in order", func(p *Presence, c *manualClock) {
			p.Add("a")
			p.Add("b")
			p.Add("c")
			p.Remove("b")
			c.advance(time.Second)
			p.Remove("a")
			c.advance(time.Second)
			p.Remove("c")
			c.advance(time.Minute)
		}, []string{"online a", "online b", "online c", "offline b", "offline a", "offline c"}},
		{"a remove too many is ignored", func(p *Presence, c *manualClock) {
			p.Add("a")
			p.Remove("a")
			p.Remove("a")
			p.Remove("zed")
			c.advance(time.Minute)
		}, []string{"online a", "offline a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c, log := newTestPresence(PresenceOptions{Grace: 10 * time.Second})
			tt.steps(p, c)
			if got := log.take(); !slices.Equal(got, tt.want) {
				t.Errorf("reports = %q, want %q", got, tt.want)
			}
			if p.Len() == 0 && p.Bytes() != 0 {
				t.Errorf("no key left but %d bytes counted", p.Bytes())
			}
		})
	}
}

// TestPresenceHostileKeys: what clients with many subjects can make a
// Presence hold is bounded in bytes, with one timer whatever the number
// of keys waiting; long keys are refused; keys that went offline free
// their room.
func TestPresenceHostileKeys(t *testing.T) {
	t.Parallel()
	const maxBytes = 64 << 10
	p, c, log := newTestPresence(PresenceOptions{Grace: time.Second, MaxBytes: maxBytes, MaxKeyLength: 64})
	if p.Add(strings.Repeat("x", 65)) {
		t.Fatal("a key over MaxKeyLength was tracked")
	}
	if p.Add("") {
		t.Fatal("an empty key was tracked")
	}
	tracked := 0
	for i := range 100_000 {
		if p.Add(fmt.Sprintf("user-%06d", i)) {
			tracked++
		}
	}
	if p.Bytes() > maxBytes {
		t.Fatalf("holds %d bytes, bound %d", p.Bytes(), maxBytes)
	}
	want := maxBytes / int(keyCost("user-000000"))
	if tracked != want {
		t.Fatalf("tracked %d keys, want %d (the bound)", tracked, want)
	}
	for i := range tracked {
		p.Remove(fmt.Sprintf("user-%06d", i))
	}
	if n := c.pending(); n != 1 {
		t.Fatalf("%d timers armed for %d keys waiting, want 1", n, tracked)
	}
	c.advance(2 * time.Second)
	if got := len(log.take()); got != 2*tracked {
		t.Fatalf("%d reports, want %d onlines and as many offlines", got, tracked)
	}
	if p.Len() != 0 || p.Bytes() != 0 {
		t.Fatalf("after the grace: %d keys, %d bytes held", p.Len(), p.Bytes())
	}
	if !p.Add("late") {
		t.Fatal("no room for a new key after the others went offline")
	}
}

// TestPresenceClose: Close reports every key still online offline once,
// stops the timer and ignores what comes after.
func TestPresenceClose(t *testing.T) {
	p, c, log := newTestPresence(PresenceOptions{Grace: 10 * time.Second})
	p.Add("a")
	p.Add("b")
	p.Remove("a")
	p.Close()
	p.Close()
	got := log.take()
	slices.Sort(got)
	if want := []string{"offline a", "offline b", "online a", "online b"}; !slices.Equal(got, want) {
		t.Fatalf("reports = %q, want %q", got, want)
	}
	if c.pending() != 0 {
		t.Fatal("a timer is still armed after Close")
	}
	if p.Add("c") {
		t.Fatal("a closed Presence tracked a key")
	}
	p.Remove("b")
	c.advance(time.Minute)
	if got := log.take(); len(got) != 0 {
		t.Fatalf("reports after Close: %q", got)
	}
}

// TestPresenceRealTimer runs the grace on the real clock once, with -race:
// the timer's goroutine and Add/Remove share the lock.
func TestPresenceRealTimer(t *testing.T) {
	offline := make(chan string, 1)
	p := NewPresence(PresenceOptions{Grace: 20 * time.Millisecond, OnOffline: func(k string) { offline <- k }})
	defer p.Close()
	p.Add("a")
	p.Remove("a")
	select {
	case k := <-offline:
		if k != "a" {
			t.Fatalf("offline %q, want a", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no offline within 5s")
	}
	if p.Online("a") {
		t.Fatal("still online after its offline")
	}
}
