package realtime

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeAckClock holds the acknowledgement timers until the test fires them.
type fakeAckClock struct {
	mu     sync.Mutex
	timers []*fakeAckTimer
	armed  chan time.Duration
}

type fakeAckTimer struct {
	mu      sync.Mutex
	f       func()
	stopped bool
}

func (t *fakeAckTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeAckClock) AfterFunc(d time.Duration, f func()) stopTimer {
	t := &fakeAckTimer{f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- d
	return t
}

// fire runs every timer not stopped, as if its time had come.
func (c *fakeAckClock) fire() {
	c.mu.Lock()
	timers := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, t := range timers {
		t.mu.Lock()
		run := !t.stopped
		t.stopped = true
		t.mu.Unlock()
		if run {
			t.f()
		}
	}
}

// TestAckTimeoutOnTheClock: EmitWithAckFunc's timeout comes from the
// socket layer's clock, so a test decides when it passes: before that the
// callback has not run, after it it gets ErrAckTimeout once, and a late
// ack from the client is ignored.
func TestAckTimeoutOnTheClock(t *testing.T) {
	t.Parallel()
	clk := &fakeAckClock{armed: make(chan time.Duration, 1)}
	got := make(chan error, 2)
	_, ts := newTestServerWith(t, func(o *Options) { o.clock = clk }, func(srv *Server) {
		srv.Of("/").OnConnection(func(s *Socket) {
			if err := s.EmitWithAckFunc(time.Minute, "ask", nil, func(_ []any, err error) { got <- err }); err != nil {
				t.Errorf("EmitWithAckFunc: %v", err)
			}
		})
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`420["ask"]`)
	select {
	case d := <-clk.armed:
		if d != time.Minute {
			t.Fatalf("ack timer armed for %v, want 1m", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ack timer armed")
	}
	select {
	case err := <-got:
		t.Fatalf("callback ran before the timeout: %v", err)
	default:
	}
	clk.fire()
	select {
	case err := <-got:
		if !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("callback error %v, want ErrAckTimeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fired timeout did not reach the callback")
	}
	c.Send(`430["late"]`) // the ack after the timeout is dropped
	c.Send("41")
	select {
	case err := <-got:
		t.Fatalf("callback ran twice: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}
