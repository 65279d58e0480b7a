//go:build live

package examples

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// makeTimeout bounds one `make example` run up to the point the test
// looks at it (it may run npm ci and go build first).
const makeTimeout = 5 * time.Minute

// makeEnv is the caller's environment (make needs go and npm with their
// caches) with Caddy's home in dir.
func makeEnv(dir string) []string {
	return append(os.Environ(),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
	)
}

// TestMakeExample runs the README's `make example` with the ports chosen by
// variables, as the troubleshooting section says: it refuses to start, and
// says why and what to do, when the site port is taken, and otherwise
// prints the page URL and serves the page until stopped.
func TestMakeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make example and its Caddy: skipped under -short (the fast loop)")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		testkit.SkipOrFail(t, "finding make: %v", err)
	}
	root := testkit.RepoRoot(t)
	// make example runs `make deps` first; when that is out of date it runs
	// npm ci, which replaces the node_modules other tests are using. Only
	// run on installed deps (make test installs them first).
	q := exec.Command(mk, "-q", "deps")
	q.Dir = root
	if err := q.Run(); err != nil {
		testkit.SkipOrFail(t, "make deps is not up to date (%v): run make deps first", err)
	}

	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		ctx, cancel := context.WithTimeout(context.Background(), makeTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, mk, "example", fmt.Sprintf("PORT=%d", port), fmt.Sprintf("ADMIN=127.0.0.1:%d", testkit.FreePort(t)))
		cmd.Dir = root
		cmd.Env = makeEnv(t.TempDir())
		cmd.WaitDelay = 2 * time.Second
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("make example started on a taken port:\n%s", out)
		}
		for _, want := range []string{fmt.Sprintf("port %d is already in use", port), "make example PORT="} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make example on a taken port does not say %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "Open http") {
			t.Errorf("make example printed a URL before refusing:\n%s", out)
		}
	})

	t.Run("free ports", func(t *testing.T) {
		port, admin := testkit.FreePort(t), testkit.FreePort(t)
		dir := t.TempDir()
		p := testkit.StartProcess(t, "make example", root, makeEnv(dir),
			mk, "example", fmt.Sprintf("PORT=%d", port), fmt.Sprintf("ADMIN=127.0.0.1:%d", admin))
		// Stop Caddy through its admin API, as `caddy stop` would; the
		// process cleanup is the backstop.
		t.Cleanup(func() {
			c := &http.Client{Timeout: 5 * time.Second}
			if resp, err := c.Post(fmt.Sprintf("http://127.0.0.1:%d/stop", admin), "", nil); err == nil {
				resp.Body.Close()
			}
			select {
			case <-p.Done():
			case <-time.After(exitTimeout):
			}
		})
		url := fmt.Sprintf("http://localhost:%d/?token=", port)
		if !p.Log.WaitFor(makeTimeout, p.Done(), func(log string) bool { return strings.Contains(log, url) }) {
			select {
			case <-p.Done():
				t.Fatalf("make example exited: %v\n%s", p.Err(), p.Log)
			default:
			}
			t.Fatalf("make example printed no %q within %v:\n%s", url, makeTimeout, p.Log)
		}
		p.WaitHTTP(t, nil, fmt.Sprintf("http://127.0.0.1:%d/app.js", port), http.StatusOK, readyTimeout)
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the page: %s", resp.Status)
		}
	})
}
