package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BuildTimeout bounds `go build ./cmd/caddy`: a cold build compiles all of
// Caddy's standard modules, which takes minutes on 2 cores.
const BuildTimeout = 10 * time.Minute

var (
	buildMu   sync.Mutex
	buildDir  string // made on the first build, removed by Main
	buildPath string
	errBuild  error
	buildSkip string
	buildDone bool
)

// Main runs the tests of a package that calls CaddyBinary and removes the
// binary afterwards: func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	buildMu.Lock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	buildMu.Unlock()
	return code
}

// CaddyBinary builds ./cmd/caddy from the repository root once per test
// binary and returns its path. It skips the test under -short (the fast
// loop starts no Caddy process), and skips (fails under CI=true) when the
// go command is missing.
func CaddyBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real Caddy: skipped under -short (the fast loop)")
	}
	root := RepoRoot(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	if !buildDone {
		buildDone = true
		build(t, root)
	}
	if buildSkip != "" {
		SkipOrFail(t, "%s", buildSkip)
	}
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return buildPath
}

func build(t testing.TB, root string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		buildSkip = fmt.Sprintf("finding the go command to build Caddy: %v", err)
		return
	}
	dir, err := os.MkdirTemp("", "caddy-socketio-test-caddy-")
	if err != nil {
		errBuild = fmt.Errorf("creating a directory for the caddy binary: %w", err)
		return
	}
	buildDir = dir
	out := filepath.Join(dir, "caddy")
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/caddy")
	cmd.Dir = root
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		errBuild = fmt.Errorf("building ./cmd/caddy: %w\n%s", err, b)
		return
	}
	t.Logf("built ./cmd/caddy in %v", time.Since(start).Round(time.Millisecond))
	buildPath = out
}
