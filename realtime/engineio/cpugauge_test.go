package engineio

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// The gauge turns busy at gaugeBusy of the CPUs and back only under
// gaugeIdle, per window, counting every CPU GOMAXPROCS allows.
func TestCPUGauge(t *testing.T) {
	var g cpuGauge
	// Times in windows: w(1.5) is one and a half gaugeWindows.
	w := func(k float64) time.Duration { return time.Duration(k * float64(gaugeWindow)) }
	steps := []struct {
		now, cpu time.Duration
		procs    int
		want     bool
	}{
		{w(1), 0, 1, false},        // the first sample only starts the count
		{w(1.5), w(0.5), 1, false}, // not due yet: no sample
		{w(2), w(0.95), 1, true},   // 95 % of one CPU
		{w(3), w(1.75), 1, true},   // 80 %: still busy
		{w(4), w(2.45), 1, false},  // 70 %: below gaugeIdle
		{w(5), w(3.30), 1, false},  // 85 %: not yet busy again
		{w(6), w(4.80), 2, false},  // 150 % of one CPU is 75 % of two
		{w(7), w(6.65), 2, true},   // 185 % of two CPUs: 92.5 %
		{w(17), w(7), 2, false},    // a long quiet gap counts in full
		{w(18), w(7), 0, false},    // no CPUs said: no change
		{w(19), w(17), 1, true},    // CPU time from a window not sampled counts too
	}
	for i, st := range steps {
		g.mu.Lock()
		g.sampleLocked(st.now, st.cpu, st.procs)
		g.mu.Unlock()
		if got := g.busy.Load(); got != st.want {
			t.Fatalf("step %d (%v, cpu %v, %d procs): busy %v, want %v", i, st.now, st.cpu, st.procs, got, st.want)
		}
	}
	// isBusy samples only when due, and never waits for a sampler.
	calls := 0
	cpu := func() time.Duration { calls++; return 0 }
	g.next.Store(int64(w(50)))
	g.isBusy(w(49), cpu)
	if calls != 0 {
		t.Fatalf("sampled %d times before the window passed", calls)
	}
	g.mu.Lock()
	g.isBusy(w(51), cpu)
	g.mu.Unlock()
	if calls != 0 {
		t.Fatal("waited for, or sampled beside, a sample in progress")
	}
	g.isBusy(w(51), cpu)
	if calls != 1 {
		t.Fatalf("%d samples once due, want 1", calls)
	}
}

// busyNow reads the clock on about one call in gaugeStride: a sample that
// is due is taken after that many calls on average, never on every call,
// and always eventually.
func TestCPUGaugeStride(t *testing.T) {
	var g cpuGauge
	samples := 0
	cpu := func() time.Duration { samples++; return 0 }
	const trials = 1000
	total := 0
	for range trials {
		g.next.Store(0) // due
		before := samples
		calls := 0
		for samples == before {
			if calls == 100*gaugeStride {
				t.Fatalf("no sample in %d calls while one was due", calls)
			}
			g.busyNow(cpu)
			calls++
		}
		total += calls
	}
	// Calls until a sample are geometric with mean gaugeStride; the mean
	// of 1000 trials is within 8 standard deviations of it here.
	if mean := float64(total) / trials; mean < 0.75*gaugeStride || mean > 1.25*gaugeStride {
		t.Fatalf("a due sample took %.1f calls on average, want about %d", mean, gaugeStride)
	}
}

// While the process is short of CPU, a send goes to the writer goroutine,
// whose batches carry more than a write per frame (cpugauge.go); once it
// is not, direct writes resume. A session's first gaugeExempt direct
// writes (a CONNECT's answer) do not wait for the gauge.
func TestDirectWriteStepsAsideWhenBusy(t *testing.T) {
	logs, c, r := directSession(t)
	g := &r.s.srv.cpu
	g.next.Store(math.MaxInt64) // no sample changes the answer below
	g.busy.Store(true)
	for i := range gaugeExempt {
		msg := fmt.Sprintf("first%d", i)
		if err := r.s.Send(TextMessageString(msg)); err != nil {
			t.Fatal(err)
		}
		expectText(t, c, "4"+msg)
	}
	if d, w := writes(logs); d != gaugeExempt || w != 0 {
		t.Fatalf("a new session's first sends while busy: %d direct writes and %d by the writer, want %d and 0", d, w, gaugeExempt)
	}
	if err := r.s.Send(TextMessageString("busy")); err != nil {
		t.Fatal(err)
	}
	expectText(t, c, "4busy")
	waitFor(t, "the writer's entry", func() bool { _, w := writes(logs); return w == 1 })
	if d, _ := writes(logs); d != gaugeExempt {
		t.Fatalf("%d direct writes while busy past the first %d", d-gaugeExempt, gaugeExempt)
	}
	g.busy.Store(false)
	idleWriter(t, r.s)
	if err := r.s.Send(TextMessageString("idle")); err != nil {
		t.Fatal(err)
	}
	expectText(t, c, "4idle")
	if d, _ := writes(logs); d != gaugeExempt+1 {
		t.Fatalf("%d direct writes once not busy, want 1", d-gaugeExempt)
	}
}
