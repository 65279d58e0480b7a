package engineio

import (
	"flag"
	"os"
	"testing"
	"time"
)

// TestMain shortens the idle writer's linger: the tests that wait for idle
// websockets to hold no goroutine (park_test.go) would otherwise wait
// 250 ms for each writer to end. Behaviour is the same, only sooner.
// Under -short both lingers are 20 ms, so that the parking tests of the
// fast loop wait less; make test keeps the linger of a real reader.
func TestMain(m *testing.M) {
	writerLinger = 100 * time.Millisecond
	flag.Parse()
	if testing.Short() {
		writerLinger, readLinger = 20*time.Millisecond, 20*time.Millisecond
	}
	os.Exit(m.Run())
}
