package testkit

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// livePackages are the folders whose tests are all live (a Caddy process,
// Node, Chromium, redis-server): their test files carry the live build tag,
// so that the fast loop (go test -short ./...) does not link a test binary
// for them, and `make test` (-tags live) runs them. Keep in step with the
// Makefile and docs/development.md.
var livePackages = []string{"integration", "examples", "internal/nodeclient", "realtime/cluster", "realtime/redispresence"}

const liveTag = "//go:build live"

// TestLiveTag: every test file of livePackages starts with the live tag
// (one without it would be built alone in the fast loop, away from its
// helpers, or run a live test there), and no other file uses the tag (its
// tests would silently leave the fast loop).
func TestLiveTag(t *testing.T) {
	root := RepoRoot(t)
	seen := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		tagged := firstLine(t, path) == liveTag
		live := strings.HasSuffix(name, "_test.go") && slices.Contains(livePackages, filepath.ToSlash(filepath.Dir(rel)))
		switch {
		case live && !tagged:
			t.Errorf("%s: a test of a live package; its first line must be %q", rel, liveTag)
		case !live && tagged:
			t.Errorf("%s: has the live tag but is not a test file of %v (add its folder there, to the Makefile and docs/development.md, or drop the tag)", rel, livePackages)
		case live:
			seen++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the repository: %v", err)
	}
	if seen < len(livePackages) {
		t.Errorf("%d tagged test files in %v, want at least one per folder", seen, livePackages)
	}
}

func firstLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path) //nolint:gosec // a file of the repository
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}
