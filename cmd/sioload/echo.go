package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// echoParams configure the echo-with-ack scenario.
type echoParams struct {
	Clients  int
	Window   int           // emits with ack outstanding per client
	Duration time.Duration // send window
	Drain    time.Duration // max wait for outstanding acks
	Pad      int
	// Event is emitted with an ack ("echo" by default). Arg, when set, is
	// the one JSON argument sent instead of the stamp and pad: a Caddy
	// with `room_requests join` answers `join("e")` with {ok, room}, the
	// round trip configuration alone can make.
	Event string
	Arg   string
}

// echoState is shared by the readers (acks) and the senders (emits).
type echoState struct {
	end     atomic.Int64 // unix nanos when sending stopped, 0 while open
	inWin   atomic.Int64 // acks received before end
	acks    atomic.Int64 // all acks received
	sent    atomic.Int64
	bad     atomic.Int64
	lat     histogram
	mu      sync.Mutex
	clients map[*client]*echoClient
}

// echoClient is one client's window: a token per ack it may still await
// (closed loop), and the send time of each outstanding ack id. Ids are
// sequential and at most window are outstanding, so id % window never
// names two outstanding emits.
type echoClient struct {
	credits chan struct{}
	sentAt  []atomic.Int64
}

func (es *echoState) onAck(c *client, f frame, at time.Time) {
	if f.SIO != sioAck || f.AckID < 0 {
		return
	}
	es.mu.Lock()
	ec := es.clients[c]
	es.mu.Unlock()
	if ec == nil {
		es.bad.Add(1)
		return
	}
	t := ec.sentAt[f.AckID%int64(len(ec.sentAt))].Load()
	now := at.UnixNano()
	es.acks.Add(1)
	if e := es.end.Load(); e == 0 || now <= e {
		es.inWin.Add(1)
	}
	es.lat.Record(time.Duration(now - t))
	select {
	case ec.credits <- struct{}{}:
	default: // more acks than emits: a server bug, do not block the reader
	}
}

func (p echoParams) event() string {
	if p.Event == "" {
		return "echo"
	}
	return p.Event
}

// runEcho keeps Window emits with ack outstanding on each of Clients
// connections for Duration and reports acks/s and ack latency.
func runEcho(ctx context.Context, co common, p echoParams) result {
	r := result{Scenario: "echo", Label: co.Label, Params: map[string]any{
		"clients": p.Clients, "window": p.Window, "duration_s": p.Duration.Seconds(), "pad": p.Pad,
		"event": p.event(), "arg": p.Arg,
	}}
	es := &echoState{clients: map[*client]*echoClient{}}
	var pl pool
	cs := connectMany(ctx, co.Target, connectOpts{
		N: p.Clients, Concurrency: co.Concurrency, Timeout: co.DialTimeout,
		Handler: es.onAck,
		Setup: func(c *client) {
			ec := &echoClient{credits: make(chan struct{}, p.Window), sentAt: make([]atomic.Int64, p.Window)}
			for range p.Window {
				ec.credits <- struct{}{}
			}
			es.mu.Lock()
			es.clients[c] = ec
			es.mu.Unlock()
		},
	}, &pl)
	defer pl.closeAll()
	if cs.OK == 0 {
		r.note("no client connected: %v", cs.FirstErr)
		return r
	}

	srv0, haveServer := co.Watch.server()
	self0 := co.Watch.self()
	start := time.Now()
	stop := make(chan struct{})
	timer := time.AfterFunc(p.Duration, func() { close(stop) })
	defer timer.Stop()
	padArg := []byte(strconv.Quote(makePad(p.Pad)))
	event := p.event()
	var senders sync.WaitGroup
	es.mu.Lock()
	for c, ec := range es.clients {
		senders.Add(1)
		go func() {
			defer senders.Done()
			var id int64
			buf := make([]byte, 0, 64+len(padArg))
			stamp := make([]byte, 0, 20)
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-ec.credits:
				}
				now := time.Now().UnixNano()
				ec.sentAt[id%int64(len(ec.sentAt))].Store(now)
				if p.Arg != "" {
					buf = appendEmit(buf[:0], id, event, []byte(p.Arg))
				} else {
					stamp = strconv.AppendInt(stamp[:0], now, 10)
					buf = appendEmit(buf[:0], id, event, stamp, padArg)
				}
				id++
				if err := c.send(buf); err != nil {
					return
				}
				es.sent.Add(1)
			}
		}()
	}
	es.mu.Unlock()
	senders.Wait()
	elapsed := time.Since(start)
	es.end.Store(time.Now().UnixNano())
	drainUntil := time.Now().Add(p.Drain)
	for es.acks.Load() < es.sent.Load() && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(drainPoll)
	}
	srv1, ok := co.Watch.server()
	self1 := co.Watch.self()

	r.add("clients", float64(cs.OK), "", "")
	r.addTarget("acks/s", float64(es.inWin.Load())/elapsed.Seconds(), "1/s", higherBetter)
	r.add("ack p50", ms(es.lat.Quantile(0.5)), "ms", lowerBetter)
	r.add("ack p99", ms(es.lat.Quantile(0.99)), "ms", lowerBetter)
	r.add("ack max", ms(es.lat.Max()), "ms", lowerBetter)
	r.add("unanswered", float64(es.sent.Load()-es.acks.Load()), "", lowerBetter)
	if haveServer && ok {
		if n := es.acks.Load(); n > 0 {
			r.add("server cpu per ack", float64((srv1.CPU-srv0.CPU).Nanoseconds())/1e3/float64(n), "us", lowerBetter)
		}
		r.add("server cpu", cpuPct(srv0, srv1), "%", "")
		r.add("server rss end", mib(srv1.RSSKiB), "MiB", lowerBetter)
	}
	tool := cpuPct(self0, self1)
	r.add("tool cpu", tool, "%", "")
	r.add("dropped", float64(pl.dropped.Load()), "", lowerBetter)
	if n := es.bad.Load(); n > 0 {
		r.note("%d unreadable acks", n)
	}
	if tool > 90 {
		r.note("load tool used %.0f%% of its core: numbers may be tool-bound", tool)
	}
	return r
}
