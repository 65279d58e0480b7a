package testkit

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Goroutines is a snapshot of the goroutines whose stack contains one of
// its filters (every goroutine when there is none), leaving out the test
// goroutines themselves (those under testing.tRunner). Take one before the
// code under test starts, then Check that nothing new outlives it.
type Goroutines struct {
	filters []string
	ids     map[string]bool
}

// TrackGoroutines snapshots the goroutines that match filters now.
func TrackGoroutines(filters ...string) *Goroutines {
	g := &Goroutines{filters: filters, ids: map[string]bool{}}
	for id := range g.matching() {
		g.ids[id] = true
	}
	return g
}

// Check waits, up to within, until every matching goroutine that was not
// in the snapshot has ended, and fails the test with their stacks
// otherwise (t.Errorf, so it may run in a t.Cleanup).
func (g *Goroutines) Check(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := g.New()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines (matching %q) left after %v:\n%s", len(left), g.filters, within, strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// New returns the stacks of the matching goroutines started since the
// snapshot and still running, sorted.
func (g *Goroutines) New() []string {
	var left []string
	for id, stack := range g.matching() {
		if !g.ids[id] {
			left = append(left, stack)
		}
	}
	sort.Strings(left)
	return left
}

// matching dumps every goroutine and keeps the matching ones by id.
func (g *Goroutines) matching() map[string]string {
	out := make(map[string]string)
	for _, stack := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(stack, "testing.tRunner") || !g.matches(stack) {
			continue
		}
		header, _, _ := strings.Cut(stack, "\n")
		if f := strings.Fields(header); len(f) >= 2 && f[0] == "goroutine" {
			out[f[1]] = stack
		}
	}
	return out
}

func (g *Goroutines) matches(stack string) bool {
	if len(g.filters) == 0 {
		return true
	}
	for _, f := range g.filters {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
