//go:build live

package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// Bounds of the live tests. Every wait on Caddy, a client or the browser
// uses one of these, so a hung process fails the test instead of hanging it.
const (
	// caddyReadyTimeout is how long a started Caddy gets to load its config
	// and accept connections on the site port.
	caddyReadyTimeout = 20 * time.Second
	// caddyCmdTimeout bounds `caddy reload` and `caddy stop`; above the
	// default ping interval (25 s), so that a stop held up by open sockets
	// is measured rather than cut short.
	caddyCmdTimeout = 45 * time.Second
	// caddyExitTimeout is how long Caddy may take to exit once asked to.
	// Stopping closes every socket at once, so this is generous.
	caddyExitTimeout = 15 * time.Second
	// clientWait bounds every wait for a client event.
	clientWait = 10 * time.Second
)

// testSecretEnv is the JWT_SECRET handed to Caddy, as Caddyfile.example
// reads the secret from {env.JWT_SECRET}.
const testSecretEnv = "integration-secret-0123456789abcdef-0123456789"

// TestMain removes the Caddy binary testkit.CaddyBinary built, once the
// tests have run.
func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// siteConfig describes how Caddyfile.example is turned into a test config.
type siteConfig struct {
	Port      int
	AdminPort int
	// Secret, when set, replaces {env.JWT_SECRET} by this literal (a rotated
	// secret for a reload); otherwise the example's placeholder stays and
	// Caddy reads JWT_SECRET from its environment.
	Secret string
	// AccessLog adds the `log` directive to the site.
	AccessLog bool
	// Audience adds `audience <value>` to the auth block.
	Audience string
}

// exampleConfig derives a Caddyfile from Caddyfile.example: the same socketio
// block and site, on a loopback port, with an admin endpoint for reload and
// stop. Every edit must find what it replaces, so a change to the example
// that these tests no longer follow fails loudly.
func exampleConfig(t testing.TB, sc siteConfig) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Caddyfile.example"))
	if err != nil {
		t.Fatalf("reading Caddyfile.example: %v", err)
	}
	cfg := string(b)
	replace := func(old, repl string) {
		t.Helper()
		if strings.Count(cfg, old) != 1 {
			t.Fatalf("Caddyfile.example: want exactly one %q to derive the test config, found %d", old, strings.Count(cfg, old))
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	site := fmt.Sprintf(":%d {", sc.Port)
	if sc.AccessLog {
		site += "\n\tlog"
	}
	replace(":8080 {", site)
	if sc.Secret != "" {
		replace("secret {env.JWT_SECRET}", "secret "+sc.Secret)
	}
	if sc.Audience != "" {
		replace("auth {\n", "auth {\n\t\t\taudience "+sc.Audience+"\n")
	}
	global := fmt.Sprintf(`{
%s}

`, adminOptions(sc.AdminPort))
	return global + cfg
}

// caddyProc is a running `caddy run`.
type caddyProc struct {
	*testkit.Process
	t       testing.TB
	bin     string
	dir     string // holds the config files and Caddy's home
	env     []string
	cfgPath string
	admin   string // host:port of the admin API
	BaseURL string // http://127.0.0.1:<site port>
}

// startCaddy writes cfg and runs `caddy run --config <file> --adapter
// caddyfile` from the repository root (Caddyfile.example's root is relative
// to it), with JWT_SECRET set and Caddy's home in a temporary directory. It
// returns once the site answers; t.Cleanup stops Caddy (bounded).
func startCaddy(t testing.TB, sc siteConfig) *caddyProc {
	t.Helper()
	return startCaddyConfig(t, sc, exampleConfig(t, sc))
}

// startCaddyConfig is startCaddy with a Caddyfile of the test's own; sc
// gives its admin and site ports (the site that is polled for readiness
// must serve /app.js with status 200).
func startCaddyConfig(t testing.TB, sc siteConfig, cfg string) *caddyProc {
	t.Helper()
	bin := testkit.CaddyBinary(t)
	dir := t.TempDir()
	p := &caddyProc{
		t:       t,
		bin:     bin,
		dir:     dir,
		cfgPath: filepath.Join(dir, "Caddyfile"),
		admin:   fmt.Sprintf("127.0.0.1:%d", sc.AdminPort),
		BaseURL: fmt.Sprintf("http://127.0.0.1:%d", sc.Port),
	}
	// Caddy keeps its data and config under HOME/XDG dirs; keep them out of
	// the real home.
	p.env = append(os.Environ(),
		"JWT_SECRET="+testSecretEnv,
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
	)
	p.writeConfig(cfg)
	p.Process = testkit.StartProcess(t, "caddy", testkit.RepoRoot(t), p.env, bin, "run", "--config", p.cfgPath, "--adapter", "caddyfile")
	p.ExitTimeout = caddyExitTimeout
	p.waitReady()
	return p
}

func (p *caddyProc) writeConfig(cfg string) {
	p.t.Helper()
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		p.t.Fatalf("writing the Caddyfile: %v", err)
	}
}

// waitReady polls the site until it serves the page's script.
func (p *caddyProc) waitReady() {
	p.t.Helper()
	p.WaitHTTP(p.t, nil, p.BaseURL+"/app.js", http.StatusOK, caddyReadyTimeout)
}

// command runs a caddy subcommand against this instance's admin API.
func (p *caddyProc) command(args ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caddyCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Dir = testkit.RepoRoot(p.t)
	cmd.Env = p.env
	cmd.WaitDelay = 2 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("caddy %s: %v\n%s\ncaddy log:\n%s", strings.Join(args, " "), err, out, p.Log)
	}
}

// Reload writes cfg and runs `caddy reload`; force reloads even an
// unchanged config (Caddy skips those otherwise).
func (p *caddyProc) Reload(sc siteConfig, force bool) {
	p.t.Helper()
	p.writeConfig(exampleConfig(p.t, sc))
	args := []string{"reload", "--config", p.cfgPath, "--adapter", "caddyfile", "--address", p.admin}
	if force {
		args = append(args, "--force")
	}
	p.command(args...)
}

// Stop runs `caddy stop` and waits for the process to exit; it returns how
// long that took from the start of the command.
func (p *caddyProc) Stop() time.Duration {
	p.t.Helper()
	start := time.Now()
	p.command("stop", "--address", p.admin)
	select {
	case <-p.Done():
		return time.Since(start)
	case <-time.After(caddyExitTimeout):
		p.t.Fatalf("caddy still running %v after `caddy stop`\n%s", caddyExitTimeout, p.Log)
	}
	return 0
}

// asBytes is v as the bytes a Node client decoded from a binary argument
// (nil when it is not binary).
func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// adminOptions are the global options every test's Caddyfile starts with
// (inside its own "{" and before its own extra options): the admin
// endpoint on adminPort, sites bound to loopback, no autosaved config.
func adminOptions(adminPort int) string {
	return fmt.Sprintf("\tadmin 127.0.0.1:%d\n\tdefault_bind 127.0.0.1\n\tpersist_config off\n", adminPort)
}
