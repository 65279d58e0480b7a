//go:build live

package examples

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// Bounds of every wait on a process started here.
const (
	// readyTimeout is how long a started process gets to accept connections.
	readyTimeout = 20 * time.Second
	// validateTimeout bounds one `caddy validate`.
	validateTimeout = 30 * time.Second
	// exitTimeout is how long a process may take to exit after SIGTERM.
	exitTimeout = 10 * time.Second
	// clientWait bounds every wait for a client event or an HTTP answer.
	clientWait = 10 * time.Second
)

// TestMain removes the Caddy binary testkit.CaddyBinary built, once the
// tests have run.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// baseEnv is the environment of every process started here: the machine's
// PATH and nothing else of the caller's, a HOME of its own, plus vars. So a
// Caddyfile that needs a variable its text does not name fails here.
func baseEnv(home string, vars ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
	}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOTOOLCHAIN", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, vars...)
}

// testGlobal is the global options block the tests put in front of an
// example (or into its own block): a loopback admin port of the test's own,
// sites on loopback only, no persisted config, no change to the machine's
// trust store.
func testGlobal(adminPort int) string {
	return fmt.Sprintf("\tadmin 127.0.0.1:%d\n\tdefault_bind 127.0.0.1\n\tpersist_config off\n\tskip_install_trust\n", adminPort)
}

// withGlobal returns cfg with the test's global options: merged into the
// example's own global block if it has one, else in a block of their own.
func withGlobal(cfg string, adminPort int) string {
	lines := strings.SplitAfter(cfg, "\n")
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if s == "{" {
			return strings.Join(lines[:i+1], "") + testGlobal(adminPort) + strings.Join(lines[i+1:], "")
		}
		break
	}
	return "{\n" + testGlobal(adminPort) + "}\n\n" + cfg
}

// stripComments drops comment lines and blank lines at the start, so a
// Caddyfile's body can be compared with a copy in the docs.
func stripComments(cfg string) string {
	var out []string
	for _, line := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		out = append(out, line)
	}
	return strings.TrimSpace(collapseBlank(strings.Join(out, "\n"))) + "\n"
}

// collapseBlank turns runs of blank lines into one.
func collapseBlank(s string) string {
	for strings.Contains(s, "\n\n\n") {
		s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	}
	return s
}

// startCaddy writes cfg into a temporary directory and runs it from the
// repository root (the examples' `root` paths are relative to it) with
// env. It returns once getURL answers.
func startCaddy(t testing.TB, cfg string, env []string, client *http.Client, getURL string) *testkit.Process {
	t.Helper()
	bin := testkit.CaddyBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatalf("writing the Caddyfile: %v", err)
	}
	p := testkit.StartProcess(t, "caddy", testkit.RepoRoot(t), env, bin, "run", "--config", path, "--adapter", "caddyfile")
	p.WaitHTTP(t, client, getURL, 0, readyTimeout)
	return p
}

// readFile reads a file of the repository.
func readFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	return string(b)
}
