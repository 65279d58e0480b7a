// Package testkit holds the helpers the tests of every package of this
// module share: raw Engine.IO clients over WebSocket and long-polling, JWT
// signers, a goroutine leak check, and what the live tests need to find
// the repository and a real Caddy (SkipOrFail, RepoRoot, CaddyBinary).
//
// It is imported by tests only, and imports nothing of this module, so the
// tests of any package (realtime included) can use it without a cycle.
// Every helper takes a testing.TB and fails the test on an error it
// cannot return; each wait is bounded.
package testkit

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// SkipOrFail skips the test when something it needs is missing from the
// machine, and fails it instead when CI=true, so that CI cannot pass
// without running it.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// RepoRoot is the module root: the first directory holding go.mod, walking
// up from the working directory (`go test` runs a package's tests in its
// own directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("getting the working directory: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("finding go.mod in %s or above", wd)
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
