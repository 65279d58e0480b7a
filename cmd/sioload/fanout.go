package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"
)

// Publish pacing: the publisher wakes at the message interval but never more
// often than minTick (timer resolution) nor less often than maxTick.
const (
	minTick = time.Millisecond
	maxTick = 100 * time.Millisecond
	// drainPoll is how often the end of a window checks for stragglers.
	drainPoll = 20 * time.Millisecond
)

// fanoutParams configure a fan-out run.
type fanoutParams struct {
	N        int           // subscribers in the room
	Room     string        // room name (joined via the handshake query)
	Rate     float64       // publishes per second
	Duration time.Duration // publish window
	Drain    time.Duration // max wait for in-flight deliveries after the window
	Pad      int           // payload pad bytes
	Sample   int           // record latency of every Sample-th delivery (1 = all)
}

// window counts the deliveries of one publish window. Deliveries stamped
// before start belong to an earlier window and count as late.
type window struct {
	start    int64        // unix nanos; publisher stamps are >= start
	end      atomic.Int64 // unix nanos when publishing stopped, 0 while open
	inWindow atomic.Int64 // received before end
	total    atomic.Int64 // received before the drain gave up
	late     atomic.Int64
	bad      atomic.Int64 // "msg" events without a readable stamp
	lat      histogram
}

// fanout is a connected room of subscribers plus one publisher.
type fanout struct {
	p   fanoutParams
	co  common
	pl  pool
	pub *client
	cur atomic.Pointer[window]
	n   atomic.Int64 // deliveries seen, for sampling
}

// onMsg is the subscribers' handler: it times every "msg" event against the
// publisher's stamp.
func (fo *fanout) onMsg(_ *client, f frame, at time.Time) {
	if f.SIO != sioEvent || !eventIs(f.Data, "msg") {
		return
	}
	w := fo.cur.Load()
	if w == nil {
		return
	}
	t, ok := findStamp(f.Data)
	if !ok {
		w.bad.Add(1)
		return
	}
	if t < w.start {
		w.late.Add(1)
		return
	}
	now := at.UnixNano()
	w.total.Add(1)
	if e := w.end.Load(); e == 0 || now <= e {
		w.inWindow.Add(1)
	}
	if fo.p.Sample <= 1 || fo.n.Add(1)%int64(fo.p.Sample) == 0 {
		w.lat.Record(time.Duration(now - t))
	}
}

// setupFanout connects the subscribers and the publisher.
func setupFanout(ctx context.Context, co common, p fanoutParams) (*fanout, connectStats, error) {
	fo := &fanout{p: p, co: co}
	cs := connectMany(ctx, co.Target, connectOpts{
		N: p.N, Concurrency: co.Concurrency, Timeout: co.DialTimeout,
		Query: url.Values{"room": {p.Room}}, Handler: fo.onMsg, Alt: co.Target2,
	}, &fo.pl)
	if cs.OK == 0 {
		fo.pl.closeAll()
		return nil, cs, fmt.Errorf("connecting subscribers: %d failed: %v", cs.Failed, cs.FirstErr)
	}
	pub, err := dial(ctx, co.Target, nil, co.DialTimeout)
	if err != nil {
		fo.pl.closeAll()
		return nil, cs, fmt.Errorf("connecting publisher: %w", err)
	}
	fo.pub = pub
	fo.pl.add(pub, nil)
	return fo, cs, nil
}

func (fo *fanout) close() { fo.pl.closeAll() }

// windowResult is what one publish window measured.
type windowResult struct {
	Rate, Offered, Deliveries float64
	Sent, Expected, Received  int64
	Late, Bad                 int64
	LossPct                   float64
	P50, P99, Max             time.Duration
	ServerCPU                 time.Duration
	ServerCPUPct, ToolCPUPct  float64
	ServerRSSKiB              int64
	HaveServer                bool
	Elapsed                   time.Duration
	PublishErr                error
}

// runWindow publishes at rate for the window, then waits (bounded by Drain)
// until every expected delivery arrived. onSecond, if set, runs about once a
// second from window start to drain end (overload samples RSS there).
func (fo *fanout) runWindow(ctx context.Context, rate float64, onSecond func()) windowResult {
	subs := int64(fo.pl.size() - 1) // minus the publisher
	w := &window{start: time.Now().UnixNano()}
	fo.cur.Store(w)
	srv0, haveServer := fo.co.Watch.server()
	self0 := fo.co.Watch.self()

	stopTicker := make(chan struct{})
	tickerDone := make(chan struct{})
	go func() {
		defer close(tickerDone)
		if onSecond == nil {
			return
		}
		onSecond()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				onSecond()
			case <-stopTicker:
				return
			}
		}
	}()

	start := time.Now()
	sent, err := fo.publish(ctx, rate)
	elapsed := time.Since(start)
	w.end.Store(time.Now().UnixNano())
	expected := sent * subs
	drainUntil := time.Now().Add(fo.p.Drain)
	for w.total.Load() < expected && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(drainPoll)
	}
	close(stopTicker)
	<-tickerDone

	srv1, ok := fo.co.Watch.server()
	self1 := fo.co.Watch.self()
	res := windowResult{
		Rate: rate, Offered: rate * float64(subs), Sent: sent, Expected: expected,
		Received: w.total.Load(), Late: w.late.Load(), Bad: w.bad.Load(),
		Deliveries: float64(w.inWindow.Load()) / elapsed.Seconds(),
		P50:        w.lat.Quantile(0.5), P99: w.lat.Quantile(0.99), Max: w.lat.Max(),
		ToolCPUPct: cpuPct(self0, self1), Elapsed: elapsed, PublishErr: err,
	}
	if expected > 0 {
		res.LossPct = 100 * (1 - float64(res.Received)/float64(expected))
	}
	if haveServer && ok {
		res.HaveServer = true
		res.ServerCPU = srv1.CPU - srv0.CPU
		res.ServerCPUPct = cpuPct(srv0, srv1)
		res.ServerRSSKiB = srv1.RSSKiB
	}
	return res
}

// publish emits publish(room, {"t":now,"pad":...}) at rate for the window and
// returns how many were sent. Pacing is by schedule (message k is due at
// k/rate), so a late wake-up sends the backlog instead of lowering the rate.
func (fo *fanout) publish(ctx context.Context, rate float64) (int64, error) {
	if rate <= 0 {
		return 0, errors.New("publishing: rate must be positive")
	}
	total := int64(rate * fo.p.Duration.Seconds())
	tick := time.Duration(float64(time.Second) / rate)
	tick = min(max(tick, minTick), maxTick)
	pad := makePad(fo.p.Pad)
	room := []byte(fmt.Sprintf("%q", fo.p.Room))
	buf := make([]byte, 0, 64+len(pad))
	payload := make([]byte, 0, 48+len(pad))
	start := time.Now()
	hardStop := start.Add(fo.p.Duration + time.Second)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var sent int64
	for sent < total {
		due := min(int64(time.Since(start).Seconds()*rate)+1, total)
		for ; sent < due; sent++ {
			payload = appendStampPayload(payload[:0], time.Now().UnixNano(), pad)
			buf = appendEmit(buf[:0], noAck, "publish", room, payload)
			if err := fo.pub.send(buf); err != nil {
				return sent, fmt.Errorf("publishing: %w", err)
			}
		}
		if sent >= total || time.Now().After(hardStop) {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
	}
	return sent, nil
}

// addWindowMetrics reports a window's numbers on r.
func addWindowMetrics(r *result, wr windowResult, targets bool) {
	add := r.add
	if targets {
		add = r.addTarget
	}
	r.add("offered deliveries/s", wr.Offered, "1/s", "")
	r.add("deliveries/s", wr.Deliveries, "1/s", higherBetter)
	r.add("expected", float64(wr.Expected), "", "")
	r.add("received", float64(wr.Received), "", higherBetter)
	r.add("loss", wr.LossPct, "%", lowerBetter)
	r.add("latency p50", ms(wr.P50), "ms", lowerBetter)
	r.add("latency p99", ms(wr.P99), "ms", lowerBetter)
	r.add("latency max", ms(wr.Max), "ms", lowerBetter)
	if wr.HaveServer {
		if wr.Received > 0 {
			add("server cpu per delivery", float64(wr.ServerCPU.Nanoseconds())/1e3/float64(wr.Received), "us", lowerBetter)
		}
		r.add("server cpu", wr.ServerCPUPct, "%", "")
		r.add("server rss end", mib(wr.ServerRSSKiB), "MiB", lowerBetter)
	}
	r.add("tool cpu", wr.ToolCPUPct, "%", "")
	if wr.Late+wr.Bad > 0 {
		r.note("%d late and %d unreadable deliveries ignored", wr.Late, wr.Bad)
	}
	if wr.PublishErr != nil {
		r.note("publisher stopped: %v", wr.PublishErr)
	}
	if wr.ToolCPUPct > 90 {
		r.note("load tool used %.0f%% of its core: numbers may be tool-bound", wr.ToolCPUPct)
	}
}

// runFanout measures one publish rate.
func runFanout(ctx context.Context, co common, p fanoutParams) result {
	r := result{Scenario: "fanout", Label: co.Label, Params: map[string]any{
		"n": p.N, "rate": p.Rate, "duration_s": p.Duration.Seconds(), "pad": p.Pad,
	}}
	fo, cs, err := setupFanout(ctx, co, p)
	if err != nil {
		r.note("%v", err)
		return r
	}
	defer fo.close()
	r.add("subscribers", float64(cs.OK), "", "")
	wr := fo.runWindow(ctx, p.Rate, nil)
	addWindowMetrics(&r, wr, true)
	r.add("dropped", float64(fo.pl.dropped.Load()), "", lowerBetter)
	return r
}

// sweepParams configure the saturation search.
type sweepParams struct {
	StartRate float64
	Factor    float64
	MaxSteps  int
	MaxP99    time.Duration // a step with a higher p99 is not sustained
	MinRatio  float64       // delivered/offered below this is not sustained
}

// runSweep raises the publish rate step by step on one room until the server
// stops keeping up (p99 above MaxP99, deliveries below MinRatio of offered,
// or deliveries no longer growing) and reports the highest sustained
// deliveries/s.
func runSweep(ctx context.Context, co common, p fanoutParams, sp sweepParams) result {
	r := result{Scenario: "fanout-sweep", Label: co.Label, Params: map[string]any{
		"n": p.N, "start_rate": sp.StartRate, "factor": sp.Factor, "step_s": p.Duration.Seconds(),
		"pad": p.Pad, "max_p99_ms": ms(sp.MaxP99),
	}}
	fo, cs, err := setupFanout(ctx, co, p)
	if err != nil {
		r.note("%v", err)
		return r
	}
	defer fo.close()
	r.add("subscribers", float64(cs.OK), "", "")
	var best, peak sweepStep
	var prev float64
	rate := sp.StartRate
	for i := 0; i < sp.MaxSteps && ctx.Err() == nil; i++ {
		wr := fo.runWindow(ctx, rate, nil)
		s := sweepStep{
			Rate: rate, Offered: wr.Offered, Deliveries: wr.Deliveries, LossPct: wr.LossPct,
			P50Ms: ms(wr.P50), P99Ms: ms(wr.P99), ServerCPUPct: wr.ServerCPUPct,
			ToolCPUPct: wr.ToolCPUPct, ServerRSSMiB: mib(wr.ServerRSSKiB),
		}
		if wr.Received > 0 && wr.HaveServer {
			s.CPUPerDeliver = float64(wr.ServerCPU.Nanoseconds()) / 1e3 / float64(wr.Received)
		}
		s.Sustained = wr.P99 <= sp.MaxP99 && wr.Deliveries >= sp.MinRatio*wr.Offered && wr.PublishErr == nil
		r.Steps = append(r.Steps, s)
		fmt.Fprintf(logOut, "sioload: sweep rate %s/s: %s deliveries/s, p99 %s ms, sustained %v\n",
			fmtNum(rate), fmtNum(wr.Deliveries), fmtNum(s.P99Ms), s.Sustained)
		if s.Deliveries > peak.Deliveries {
			peak = s
		}
		if !s.Sustained {
			break
		}
		if s.Deliveries > best.Deliveries {
			best = s
		}
		if prev > 0 && s.Deliveries < prev*1.05 {
			r.note("deliveries/s stopped growing at rate %s/s", fmtNum(rate))
			break
		}
		prev = s.Deliveries
		rate *= sp.Factor
	}
	if len(r.Steps) > 0 && !r.Steps[0].Sustained {
		r.note("the first rate was already not sustained: start lower (-rate)")
	}
	r.addTarget("max sustained deliveries/s", best.Deliveries, "1/s", higherBetter)
	r.add("at publish rate", best.Rate, "1/s", "")
	r.add("p99 at max sustained", best.P99Ms, "ms", lowerBetter)
	r.add("server cpu per delivery at max", best.CPUPerDeliver, "us", lowerBetter)
	r.add("peak deliveries/s", peak.Deliveries, "1/s", higherBetter)
	r.add("dropped", float64(fo.pl.dropped.Load()), "", lowerBetter)
	if len(r.Steps) > 0 && r.Steps[len(r.Steps)-1].Sustained && len(r.Steps) == sp.MaxSteps {
		r.note("sweep ended at max steps before saturation")
	}
	if best.ToolCPUPct > 90 {
		r.note("load tool used %.0f%% of its core at the best step: saturation may be the tool's", best.ToolCPUPct)
	}
	return r
}
