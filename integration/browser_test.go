//go:build live

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

const (
	// chromiumPath is Debian's chromium; the test never downloads a browser.
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds the whole playwright script (it bounds itself
	// at 75 s; this is the backstop).
	browserTimeout = 100 * time.Second
)

// browserResult is the JSON line testdata/browser/join-rooms.cjs prints.
type browserResult struct {
	OK          bool      `json:"ok"`
	Error       string    `json:"error"`
	Browser     string    `json:"browser"`
	A           pageState `json:"a"`
	B           pageState `json:"b"`
	Screenshots []string  `json:"screenshots"`
	Logs        []string  `json:"logs"`
}

type pageState struct {
	Status string     `json:"status"`
	Events []string   `json:"events"`
	Raw    []rawEvent `json:"raw"`
}

// rawEvent is the event name and text behind one line of the page.
type rawEvent struct {
	Event string `json:"event"`
	Text  string `json:"text"`
}

// TestBrowserJoinRooms opens the example page as two users in a headless
// Chromium, joins room 7 in both, and checks what a person sees: the first
// page shows the second user's join by name, each page shows the other's
// message with its sender, and the tutorial's own events keep their names
// and texts. The screenshots are kept in testdata/artifacts/.
func TestBrowserJoinRooms(t *testing.T) {
	t.Parallel()
	root, node := needBrowser(t, "playwright-core/package.json")
	ensureBundle(t, root)

	c := startCaddy(t, siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)})
	tokA := testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": "alice"})
	tokB := testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": "bob"})

	artifacts := filepath.Join(root, "testdata", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatalf("creating %s: %v", artifacts, err)
	}
	shot := filepath.Join(artifacts, "join-rooms.png")

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "join-rooms.cjs"), c.BaseURL, tokA, tokB, shot)
	cmd.Dir = filepath.Join(root, "testdata")
	// Chromium writes caches and crash reports under HOME.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "CHROMIUM_PATH="+chromiumPath)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("join-rooms.cjs ran %v", time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Logf("join-rooms.cjs stderr:\n%s", stderr.String())
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res browserResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("join-rooms.cjs: %v; no JSON result (%v) in stdout:\n%s\ncaddy log:\n%s", runErr, err, stdout.String(), c.Log)
	}
	if !res.OK || runErr != nil {
		t.Fatalf("join-rooms.cjs failed (%v): %s\npage A: %q %q\npage B: %q %q\ncaddy log:\n%s",
			runErr, res.Error, res.A.Status, res.A.Events, res.B.Status, res.B.Events, c.Log)
	}
	t.Logf("browser %s; screenshots %v", res.Browser, res.Screenshots)

	// A: its join and B's; B: its own. The tutorial's text is unchanged.
	checkPage(t, "A", res.A, "alice", 2,
		"You joined room 7 as alice", "bob joined room 7", "You say hello from page A", "bob says hello from page B")
	checkPage(t, "B", res.B, "bob", 1,
		"You joined room 7 as bob", "alice says hello from page A", "You say hello from page B")
	if slices.Contains(res.A.Events, "alice says hello from page A") {
		t.Errorf("page A got its own message back: %q", res.A.Events)
	}
	if slices.Contains(res.B.Events, "bob joined room 7") {
		t.Errorf("page B announced its own join as someone else's: %q", res.B.Events)
	}
	if !slices.Contains(res.B.Raw, rawEvent{"message_from_client", "hello from page A"}) {
		t.Errorf("page B has no message_from_client event with the text: %+v", res.B.Raw)
	}

	if len(res.Screenshots) != 3 {
		t.Errorf("screenshots = %v, want the combined one and one per page", res.Screenshots)
	}
	for _, f := range res.Screenshots {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("screenshot: %v", err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 1000 {
			t.Errorf("screenshot %s is not a plausible PNG (%d bytes)", f, len(b))
		}
	}
}

// checkPage checks one page: the status names its user, the tutorial's
// room-userId announcement came joins times with the tutorial's text, the
// welcome names the user, and the page shows the given lines.
func checkPage(t *testing.T, name string, p pageState, sub string, joins int, want ...string) {
	t.Helper()
	if !strings.HasPrefix(p.Status, "connected as "+sub+" ") {
		t.Errorf("page %s status %q, want connected as %s", name, p.Status, sub)
	}
	n := 0
	for _, e := range p.Raw {
		if e == (rawEvent{"room-userId", "You are in room number: 7"}) {
			n++
		}
	}
	if n != joins {
		t.Errorf("page %s shows %d room-userId announcements, want %d: %+v", name, n, joins, p.Raw)
	}
	welcome := fmt.Sprintf("Message: welcome %s, your socket id is ", sub)
	if !slices.ContainsFunc(p.Raw, func(e rawEvent) bool {
		return e.Event == "message_from_server" && strings.HasPrefix(e.Text, welcome)
	}) {
		t.Errorf("page %s has no message_from_server %q: %+v", name, welcome, p.Raw)
	}
	for _, w := range want {
		if !slices.Contains(p.Events, w) {
			t.Errorf("page %s does not show %q: %q", name, w, p.Events)
		}
	}
	for _, e := range p.Raw {
		if e.Event == "connect_error" {
			t.Errorf("page %s shows a refusal: %q", name, e.Text)
		}
	}
}

// ensureBundle puts the socket.io client bundle where the page loads it
// from, as `make deps` does, when it is not there yet (the vendor directory
// is git-ignored). The copy is atomic so a concurrent reader never sees
// half a file.
func ensureBundle(t *testing.T, root string) {
	t.Helper()
	dst := filepath.Join(root, "testdata", "www", "vendor", "socket.io.min.js")
	if _, err := os.Stat(dst); err == nil {
		return
	}
	src := filepath.Join(root, "testdata", "node_modules", "socket.io-client", "dist", "socket.io.min.js")
	b, err := os.ReadFile(src)
	if err != nil {
		testkit.SkipOrFail(t, "reading the client bundle: %v (cd testdata && npm ci)", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatalf("creating %s: %v", filepath.Dir(dst), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".socket.io.min.js-*")
	if err != nil {
		t.Fatalf("copying the client bundle: %v", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		t.Fatalf("copying the client bundle: %v", err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatalf("copying the client bundle: %v", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		t.Fatalf("copying the client bundle: %v", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		t.Fatalf("copying the client bundle: %v", err)
	}
}

// needBrowser skips t under -short and when node, Chromium or one of the
// files (paths under testdata/node_modules) is missing (fails under
// CI=true), and returns the repository root and node's path.
func needBrowser(t *testing.T, files ...string) (root, node string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Chromium and a real Caddy: skipped under -short (the fast loop)")
	}
	root = testkit.RepoRoot(t)
	node, err := exec.LookPath("node")
	if err != nil {
		testkit.SkipOrFail(t, "finding node for the browser test: %v", err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.SkipOrFail(t, "finding chromium: %v (apt-get install chromium)", err)
	}
	modules := filepath.Join(root, "testdata", "node_modules")
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(modules, f)); err != nil {
			testkit.SkipOrFail(t, "finding %s: %v (cd testdata && npm ci)", f, err)
		}
	}
	return root, node
}
