package engineio

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The CPU gauge decides between the two ways a websocket frame goes out
// (direct.go). A direct write saves the writer goroutine's wake-up, which at
// moderate load is most of what a delivery costs besides the system call.
// But it writes every frame with a call of its own, while a writer that
// falls behind writes all that queued meanwhile with one: when the process
// is short of CPU, that coalescing carries several times the deliveries a
// direct write per frame can (the bench's 5000 clients x 100 msg/s: 112k/s
// delivered with direct writes only, 480k/s with writers). So the server
// samples the process's CPU time every gaugeWindow, and while the process
// uses at least gaugeBusy of the CPUs it may run on (GOMAXPROCS), direct
// writes step aside and every frame goes to a writer; below gaugeIdle
// they resume. The gap between the two keeps the mode from flapping: with
// coalescing writers a saturated server may use a little less CPU than it
// did with direct writes, and must not switch back for that.

// gaugeWindow is how often the gauge samples the process's CPU time. It
// spans many broadcasts: a room broadcast is a burst (5,000 writes take
// 50-70 ms of a core), and a window of 100 ms, as the first gauge had,
// caught one burst and a part of the next often enough to read a server
// at 70 % of its core as busy, which then stayed busy on the writers'
// dearer deliveries (the bench's 5000 x 10 msg/s: 14.2-14.6 us a delivery
// in such runs against 11-12 us). A second is still short next to an
// overload, which is what the gauge is for.
const gaugeWindow = time.Second

// The gauge's thresholds, in CPU time per wall time per GOMAXPROCS.
const (
	gaugeBusy = 0.90
	gaugeIdle = 0.75
)

// cpuGauge samples the process's CPU use. It has no goroutine of its own:
// whoever asks (a direct write about to happen) takes the next sample once
// gaugeWindow has passed since the last, so an idle server does no work
// for it, and a server that sends nothing keeps a stale answer nobody reads.
type cpuGauge struct {
	busy atomic.Bool  // the process was near its CPU limit in the last window
	next atomic.Int64 // a stamp (stampOf): when the next sample is due

	mu       sync.Mutex // held by the one taking a sample
	lastCPU  time.Duration
	lastWall time.Duration // a stamp; 0 before the first sample
}

// nextBusy is the gauge's rule: busy from gaugeBusy on, until below
// gaugeIdle.
func nextBusy(busy bool, util float64) bool {
	if busy {
		return util >= gaugeIdle
	}
	return util >= gaugeBusy
}

// gaugeStride is how many calls of busyNow read the clock, one in so many
// on average: a broadcast asks once per member, and the clock (about
// 40 ns here, more with its memory cold) was a measurable part of a
// delivery for a question whose answer changes once a gaugeWindow at
// most. At a rate that can make the process busy the sample is at most a
// few microseconds late; at a low rate a stale answer costs nothing (a
// frame that goes to the writer instead of directly). A power of two.
const gaugeStride = 64

// busyNow is isBusy at the current time, reading the clock on one call in
// gaugeStride (chosen at random, so that no call pattern of the sessions
// can keep the sample from being taken): between those calls it reports
// the last answer.
func (g *cpuGauge) busyNow(cpu func() time.Duration) bool {
	if rand.Uint32()&(gaugeStride-1) != 0 { //nolint:gosec // a sampling stride, not a secret
		return g.busy.Load()
	}
	return g.isBusy(stampOf(time.Now()), cpu)
}

// isBusy reports whether direct writes should step aside, sampling first
// when a sample is due. now is the current stamp. It never waits: when
// another caller is taking the sample, it answers from the last one.
func (g *cpuGauge) isBusy(now time.Duration, cpu func() time.Duration) bool {
	if int64(now) >= g.next.Load() && g.mu.TryLock() {
		g.sampleLocked(now, cpu(), runtime.GOMAXPROCS(0))
		g.mu.Unlock()
	}
	return g.busy.Load()
}

// sampleLocked takes a sample: the CPU time c used since the last one,
// over the wall time since then and procs CPUs. g.mu is held.
func (g *cpuGauge) sampleLocked(now, c time.Duration, procs int) {
	if int64(now) < g.next.Load() {
		return // another caller took it meanwhile
	}
	if g.lastWall != 0 {
		if wall := now - g.lastWall; wall > 0 && procs > 0 {
			util := float64(c-g.lastCPU) / float64(wall) / float64(procs)
			g.busy.Store(nextBusy(g.busy.Load(), util))
		}
	}
	g.lastCPU, g.lastWall = c, now
	g.next.Store(int64(now + gaugeWindow))
}
