package main

import (
	"context"
	"slices"
	"sync"
)

// runOverload drives a fan-out the server (or this tool) cannot keep up with
// and samples the server RSS once a second. The readers keep reading as fast
// as they can; what matters is whether the server bounds its queues (memory
// flat) or buffers without limit (memory grows).
func runOverload(ctx context.Context, co common, p fanoutParams) result {
	r := result{Scenario: "overload", Label: co.Label, Params: map[string]any{
		"n": p.N, "rate": p.Rate, "duration_s": p.Duration.Seconds(), "pad": p.Pad,
		"drain_s": p.Drain.Seconds(), "sample": p.Sample,
	}}
	fo, cs, err := setupFanout(ctx, co, p)
	if err != nil {
		r.note("%v", err)
		return r
	}
	defer fo.close()
	r.add("subscribers", float64(cs.OK), "", "")

	var mu sync.Mutex
	var series []float64
	onSecond := func() {
		if s, ok := co.Watch.server(); ok {
			mu.Lock()
			series = append(series, mib(s.RSSKiB))
			mu.Unlock()
		}
	}
	wr := fo.runWindow(ctx, p.Rate, onSecond)
	// The window result's last sample is taken after the ticker stopped.
	onSecond()
	mu.Lock()
	r.RSSSeries = slices.Clone(series)
	mu.Unlock()

	r.add("offered deliveries/s", wr.Offered, "1/s", "")
	r.add("deliveries/s", wr.Deliveries, "1/s", higherBetter)
	r.add("loss", wr.LossPct, "%", lowerBetter)
	r.add("latency p50", ms(wr.P50), "ms", lowerBetter)
	r.add("latency p99", ms(wr.P99), "ms", lowerBetter)
	if n := len(r.RSSSeries); n > 0 {
		first, last := r.RSSSeries[0], r.RSSSeries[n-1]
		r.add("server rss start", first, "MiB", "")
		r.add("server rss min", slices.Min(r.RSSSeries), "MiB", lowerBetter)
		r.add("server rss max", slices.Max(r.RSSSeries), "MiB", lowerBetter)
		r.add("server rss last", last, "MiB", lowerBetter)
		r.addTarget("server rss growth", slices.Max(r.RSSSeries)-first, "MiB", lowerBetter)
	}
	if wr.HaveServer {
		r.add("server cpu", wr.ServerCPUPct, "%", "")
	}
	r.add("tool cpu", wr.ToolCPUPct, "%", "")
	r.add("dropped", float64(fo.pl.dropped.Load()), "", "")
	if wr.PublishErr != nil {
		r.note("publisher stopped: %v", wr.PublishErr)
	}
	return r
}
