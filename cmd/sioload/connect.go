package main

import (
	"context"
	"time"
)

// common carries the flags every scenario shares.
type common struct {
	Target      target
	Target2     *target // fanout: every other subscriber's server, or nil
	Watch       watcher
	Label       string
	Concurrency int           // handshakes in flight
	DialTimeout time.Duration // per client handshake
}

// connectParams configure the connect-and-hold scenario.
type connectParams struct {
	N    int
	Hold time.Duration // idle time before the "after" RSS sample
}

// runConnect opens N clients as fast as the concurrency allows (a full
// Socket.IO connect: until 40{"sid"} is read), holds them idle and reports
// connects/s and the server's resident memory per idle connection. RSS is
// taken after a settle time because neither server can be told to collect
// garbage from outside.
func runConnect(ctx context.Context, co common, p connectParams) result {
	r := result{Scenario: "connect", Label: co.Label, Params: map[string]any{
		"n": p.N, "concurrency": co.Concurrency, "hold_s": p.Hold.Seconds(),
	}}
	base, haveServer := co.Watch.server()
	self0 := co.Watch.self()

	var pl pool
	cs := connectMany(ctx, co.Target, connectOpts{
		N: p.N, Concurrency: co.Concurrency, Timeout: co.DialTimeout,
	}, &pl)
	defer pl.closeAll()
	connected, _ := co.Watch.server()
	self1 := co.Watch.self()

	r.addTarget("connects/s", float64(cs.OK)/cs.Elapsed.Seconds(), "1/s", higherBetter)
	r.add("connected", float64(cs.OK), "", higherBetter)
	r.add("failed", float64(cs.Failed), "", lowerBetter)
	r.add("connect p50", ms(cs.Latency.Quantile(0.5)), "ms", lowerBetter)
	r.add("connect p99", ms(cs.Latency.Quantile(0.99)), "ms", lowerBetter)
	if cs.FirstErr != nil {
		r.note("first connect error: %v", cs.FirstErr)
	}
	if haveServer && cs.OK > 0 {
		r.add("server cpu per connect", float64((connected.CPU-base.CPU).Microseconds())/float64(cs.OK), "us", lowerBetter)
	}
	r.add("tool cpu", cpuPct(self0, self1), "%", "")

	sleepCtx(ctx, p.Hold)
	after, ok := co.Watch.server()
	if haveServer && ok && cs.OK > 0 {
		r.add("server rss baseline", mib(base.RSSKiB), "MiB", "")
		r.add("server rss holding", mib(after.RSSKiB), "MiB", lowerBetter)
		r.addTarget("mem per idle conn", float64(after.RSSKiB-base.RSSKiB)/float64(cs.OK), "KiB", lowerBetter)
	}
	r.add("dropped", float64(pl.dropped.Load()), "", lowerBetter)
	return r
}

// cpuPct is the CPU used between two samples as a percentage of one core.
func cpuPct(a, b procSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}
