package testkit

import (
	"flag"
	"runtime"
	"strconv"
	"testing"
)

// shortParallel is how many parallel tests run at once in the fast loop
// (-short) when the command line does not say: per core, not per test.
const shortParallel = 4

// RunShortWide runs m with -test.parallel raised to shortParallel per core
// under -short, unless -test.parallel was given. The parallel tests of the
// fast loop wait on timers and loopback sockets, not on the CPU, and the
// default (GOMAXPROCS, 2 here) queued them one pair after another. A full
// run (make test, -race) keeps Go's default, so its timing is unchanged.
// Use it as func TestMain(m *testing.M) { os.Exit(testkit.RunShortWide(m)) }.
func RunShortWide(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if testing.Short() && !given {
		_ = flag.Set("test.parallel", strconv.Itoa(shortParallel*runtime.GOMAXPROCS(0)))
	}
	return m.Run()
}

// WaitsOnClock skips t under -short: it waits half a second or more on real
// timers (token expiry, a drain, a grace, a refused connection's backoff),
// or measures the heap or spends a second of CPU, which the fast loop
// cannot afford; `make test` runs it. Say why at the call.
func WaitsOnClock(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("waits on real timers for half a second or more: skipped under -short (make test runs it)")
	}
}
