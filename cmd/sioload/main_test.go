package main

import (
	"os"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// TestMain widens the fast loop's parallel tests, which wait on loopback
// sockets and timers rather than the CPU (see testkit.RunShortWide).
func TestMain(m *testing.M) { os.Exit(testkit.RunShortWide(m)) }
