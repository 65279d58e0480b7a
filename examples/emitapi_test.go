//go:build live

package examples

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

const apiSecret = "examples-api-secret-0123456789abcdef-0123"

// TestEmitAPIExample runs examples/emit-api/Caddyfile: a client connected to
// the site receives what `POST /emit` on the loopback listener sends, a
// wrong secret is refused, and the example as written binds the API's port
// to 127.0.0.1 only.
func TestEmitAPIExample(t *testing.T) {
	home := t.TempDir()
	sport, apiPort, adminPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	site := fmt.Sprintf("http://127.0.0.1:%d", sport)
	cfg := withGlobal(readFile(t, "examples/emit-api/Caddyfile"), adminPort)
	caddy := startCaddy(t, cfg, baseEnv(home,
		"SOCKETIO_API_SECRET="+apiSecret, "SITE_ADDRESS="+site, fmt.Sprintf("API_PORT=%d", apiPort)), nil, site+"/")

	drv := nodeclient.Start(t)
	c := drv.Connect("page", "4", site, map[string]any{"reconnection": false})
	if _, err := c.WaitConnect(clientWait); err != nil {
		t.Fatalf("connecting: %v\n%s", err, lastLines(caddy.Log.String(), 20))
	}

	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	post := func(secret, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, api+"/emit", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := (&http.Client{Timeout: clientWait}).Do(req)
		if err != nil {
			t.Fatalf("POST /emit: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The README's and the example's curl body.
	status, body := post(apiSecret, `{"event": "news", "args": ["hello"]}`)
	var ok struct{ OK bool }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ok) != nil || !ok.OK {
		t.Fatalf("POST /emit: %d %s", status, body)
	}
	args, err := c.WaitEvent("news", clientWait)
	if err != nil || !slices.Equal(args, []any{"hello"}) {
		t.Errorf("the client got news %v, %v; want [hello]", args, err)
	}
	if status, body := post("not-the-secret", `{"event": "news"}`); status != http.StatusForbidden {
		t.Errorf("a wrong secret: %d %s, want 403", status, body)
	}

	checkAPIListen(t, home)
}

// checkAPIListen adapts the example as written and checks that the server
// holding socketio_api listens on 127.0.0.1 only. (The live part above runs
// every site on loopback anyway, so it cannot show what `bind` does.)
func checkAPIListen(t *testing.T, home string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.CaddyBinary(t), "adapt", "--config", "examples/emit-api/Caddyfile", "--adapter", "caddyfile")
	cmd.Dir = testkit.RepoRoot(t)
	cmd.Env = baseEnv(home)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v", err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, out)
	}
	servers, _ := json.Marshal(cfg.Apps.HTTP.Servers)
	found := false
	for name, srv := range cfg.Apps.HTTP.Servers {
		if slices.Contains(srv.Listen, "127.0.0.1:2020") {
			found = true
			if len(srv.Listen) != 1 {
				t.Errorf("server %s listens on %v, want 127.0.0.1:2020 only", name, srv.Listen)
			}
		}
		for _, l := range srv.Listen {
			if strings.HasSuffix(l, ":2020") && l != "127.0.0.1:2020" {
				t.Errorf("server %s listens on %s: the API port is open beyond loopback", name, l)
			}
		}
	}
	if !found {
		t.Errorf("no server listens on 127.0.0.1:2020: %s", servers)
	}
}
