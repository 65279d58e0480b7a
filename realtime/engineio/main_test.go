package engineio

import (
	"os"
	"testing"
	"time"
)

// TestMain shortens the idle writer's linger: the tests that wait for idle
// websockets to hold no goroutine (park_test.go) would otherwise wait a
// second for each writer to end. Behaviour is the same, only sooner.
func TestMain(m *testing.M) {
	writerLinger = 100 * time.Millisecond
	os.Exit(m.Run())
}
