package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// teardownTimeout bounds how long closeAll waits for reader goroutines.
const teardownTimeout = 15 * time.Second

// pool holds the connected clients of a scenario and their read goroutines.
type pool struct {
	mu      sync.Mutex
	clients []*client
	readers sync.WaitGroup
	closing atomic.Bool
	dropped atomic.Int64 // sessions the server ended before teardown
}

// connectStats describes a connect phase.
type connectStats struct {
	OK, Failed int
	Elapsed    time.Duration
	Latency    *histogram
	FirstErr   error
}

// connectOpts are the knobs of connectMany.
type connectOpts struct {
	N           int
	Concurrency int
	Timeout     time.Duration // per client
	Query       url.Values
	Handler     handler
	Setup       func(*client) // runs before the client's reader starts
	// Alt, when set, takes every other client (a second node of a
	// cluster: subscribers split over two servers).
	Alt *target
}

// giveUpAfter is how many failed connects, with none succeeding, end a
// connect phase early: the server is down or refusing, and retrying
// thousands of times would only measure that.
const giveUpAfter = 50

// connectMany opens o.N clients with at most o.Concurrency handshakes in
// flight and starts a reader per client as soon as it is connected, so early
// clients answer pings while later ones connect. It stops early when ctx ends
// or when the first giveUpAfter attempts all failed.
func connectMany(ctx context.Context, t target, o connectOpts, p *pool) connectStats {
	st := connectStats{Latency: &histogram{}}
	conc := max(1, min(o.Concurrency, o.N))
	var next atomic.Int64
	var failed, ok atomic.Int64
	var errOnce sync.Once
	var workers sync.WaitGroup
	start := time.Now()
	for range conc {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.N) || ctx.Err() != nil {
					return
				}
				if ok.Load() == 0 && failed.Load() >= giveUpAfter {
					return
				}
				t0 := time.Now()
				tt := t
				if o.Alt != nil && i%2 == 1 {
					tt = *o.Alt
				}
				c, err := dial(ctx, tt, o.Query, o.Timeout)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { st.FirstErr = err })
					continue
				}
				st.Latency.Record(time.Since(t0))
				ok.Add(1)
				if o.Setup != nil {
					o.Setup(c)
				}
				p.add(c, o.Handler)
			}
		}()
	}
	workers.Wait()
	st.Elapsed = time.Since(start)
	st.OK, st.Failed = int(ok.Load()), int(failed.Load())
	return st
}

// add registers a connected client and starts its reader.
func (p *pool) add(c *client, h handler) {
	p.mu.Lock()
	p.clients = append(p.clients, c)
	p.mu.Unlock()
	p.readers.Add(1)
	go func() {
		defer p.readers.Done()
		_ = c.run(h) // a reader's end is counted below, its error is not reported
		if !p.closing.Load() {
			p.dropped.Add(1)
		}
		c.close(true)
	}()
}

// size returns the number of clients ever added.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

// closeAll resets every connection and waits, bounded, for the readers.
func (p *pool) closeAll() {
	p.closing.Store(true)
	p.mu.Lock()
	cs := p.clients
	p.mu.Unlock()
	for _, c := range cs {
		c.close(true)
	}
	done := make(chan struct{})
	go func() {
		p.readers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(teardownTimeout):
		fmt.Fprintln(os.Stderr, "sioload: some readers did not stop in time")
	}
}

// sleepCtx waits d or until ctx ends; it reports whether the full d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
