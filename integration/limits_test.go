//go:build live

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// dialer returns a dialer whose connections come from the loopback
// address src (Linux routes all of 127/8 to lo, so 127.0.0.2 is another
// client, or a proxy, to Caddy).
func dialer(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
}

// wsFrom opens an Engine.IO WebSocket to base from src with header, and
// reads the open packet; when the handshake is refused it returns the
// status and body instead. An open connection is closed when the test
// ends.
func wsFrom(t *testing.T, base, src string, header http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: clientWait, NetDialContext: dialer(src).DialContext}
	u := "ws" + strings.TrimPrefix(base, "http") + "?EIO=4&transport=websocket"
	c, resp, err := d.Dial(u, header)
	if err != nil {
		if resp == nil {
			t.Fatalf("dialing %s from %s: %v", u, src, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		return nil, resp.StatusCode, string(b)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(clientWait))
	_, open, err := c.ReadMessage()
	if err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open packet from %s: %q, %v", src, open, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, http.StatusSwitchingProtocols, ""
}

// pollFrom makes a polling handshake from src; it returns the status and
// the body.
func pollFrom(t *testing.T, base, src string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: clientWait, Transport: &http.Transport{DialContext: dialer(src).DialContext, DisableKeepAlives: true}}
	resp, err := client.Get(base + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatalf("polling handshake from %s: %v", src, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// TestCaddyConnectionLimits runs a real Caddy with the connection limits of
// two hubs and checks each under load on loopback:
//   - max_connections_per_ip counts Caddy's client IP: behind a proxy that
//     trusted_proxies lists, the X-Forwarded-For client (two clients behind
//     the one proxy are counted apart); from an untrusted peer, its own
//     address whatever X-Forwarded-For it sends (a spoofer cannot rotate
//     the header to get past the bound);
//   - the counts are the hub's: a `caddy reload` keeps them;
//   - handshake_rate holds for a client that floods handshakes, while
//     another address connects;
//   - each refusal is Node's 403 {"code":4,...}, is counted in
//     caddy_socketio_limited_total{limit}, and is logged once, not once per
//     refusal.
func TestCaddyConnectionLimits(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a real Caddy: skipped under -short (the fast loop)")
	}
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	ratePort := testkit.FreePort(t)
	cfg := fmt.Sprintf(`{
%s	servers {
		trusted_proxies static 127.0.0.2/32
		client_ip_headers X-Forwarded-For
	}
}

:%d {
	root * testdata/www
	socketio {
		limits {
			max_connections_per_ip 3
		}
	}
	file_server
}

:%d {
	socketio {
		name rate
		limits {
			handshake_rate 5 10
			max_connections_per_ip off
		}
	}
}
`, adminOptions(sc.AdminPort), sc.Port, ratePort)
	c := startCaddyConfig(t, sc, cfg)
	base := c.BaseURL + "/socket.io/"
	xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	const perIP = "too many connections from this address"

	t.Run("per client IP behind a trusted proxy", func(t *testing.T) {
		for i := range 3 {
			if w, status, body := wsFrom(t, base, "127.0.0.2", xff("198.51.100.7")); w == nil {
				t.Fatalf("client 198.51.100.7 connection %d refused: %d %s", i+1, status, body)
			}
		}
		if w, status, body := wsFrom(t, base, "127.0.0.2", xff("198.51.100.7")); w != nil || status != http.StatusForbidden || body != perIP {
			t.Fatalf("client 198.51.100.7's 4th connection: %d %q, want 403 %q", status, body, perIP)
		}
		// Another client behind the same proxy is not affected.
		for i := range 3 {
			if w, status, body := wsFrom(t, base, "127.0.0.2", xff("198.51.100.8")); w == nil {
				t.Fatalf("client 198.51.100.8 connection %d refused: %d %s", i+1, status, body)
			}
		}
	})
	t.Run("a spoofed X-Forwarded-For from an untrusted peer", func(t *testing.T) {
		for i := range 3 {
			if w, status, body := wsFrom(t, base, "127.0.0.5", xff(fmt.Sprintf("203.0.113.%d", i))); w == nil {
				t.Fatalf("spoofer connection %d refused: %d %s", i+1, status, body)
			}
		}
		for i := 3; i < 5; i++ {
			if w, status, body := wsFrom(t, base, "127.0.0.5", xff(fmt.Sprintf("203.0.113.%d", i))); w != nil || status != http.StatusForbidden || body != perIP {
				t.Fatalf("spoofer connection %d with a new X-Forwarded-For: %d %q, want 403", i+1, status, body)
			}
		}
		code, body := pollFrom(t, base, "127.0.0.5")
		if code != http.StatusForbidden || body != `{"code":4,"message":"`+perIP+`"}` {
			t.Fatalf("spoofer polling handshake: %d %s", code, body)
		}
	})
	t.Run("the counts survive caddy reload", func(t *testing.T) {
		// (Each subtest's connections close when it ends.)
		for i := range 3 {
			if w, status, body := wsFrom(t, base, "127.0.0.2", xff("198.51.100.9")); w == nil {
				t.Fatalf("client 198.51.100.9 connection %d refused: %d %s", i+1, status, body)
			}
		}
		c.command("reload", "--config", c.cfgPath, "--adapter", "caddyfile", "--address", c.admin, "--force")
		if w, status, body := wsFrom(t, base, "127.0.0.2", xff("198.51.100.9")); w != nil || status != http.StatusForbidden || body != perIP {
			t.Fatalf("client 198.51.100.9's 4th connection after a reload: %d %q, want 403 %q", status, body, perIP)
		}
	})
	c.expectSeries(t, `caddy_socketio_limited_total{hub="/socket.io/",limit="connections_per_ip"}`, "5")
	if n := strings.Count(c.Log.String(), "handshake refused: "+perIP); n != 1 {
		t.Errorf("%d log lines for 5 refusals within 10 s, want 1", n)
	}

	t.Run("handshakes per second per IP", func(t *testing.T) {
		rateBase := fmt.Sprintf("http://127.0.0.1:%d/socket.io/", ratePort)
		const flooders, each = 4, 15
		var mu sync.Mutex
		passed, refused := 0, 0
		start := time.Now()
		var wg sync.WaitGroup
		for range flooders {
			wg.Go(func() {
				for range each {
					code, body := pollFrom(t, rateBase, "127.0.0.3")
					mu.Lock()
					switch {
					case code == http.StatusOK && strings.HasPrefix(body, "0{"):
						passed++
					case code == http.StatusForbidden && body == `{"code":4,"message":"too many handshakes from this address, retry later"}`:
						refused++
					default:
						t.Errorf("flood handshake: %d %s", code, body)
					}
					mu.Unlock()
				}
			})
		}
		// Another address connects during the flood.
		if code, body := pollFrom(t, rateBase, "127.0.0.4"); code != http.StatusOK {
			t.Errorf("another address during the flood: %d %s", code, body)
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		t.Logf("%d handshakes from one address in %.2fs: %d passed, %d refused", flooders*each, el, passed, refused)
		if max := 10 + int(5*el) + 1; passed < 10 || passed > max {
			t.Errorf("%d passed, want 10..%d (burst 10, 5/s)", passed, max)
		}
		c.expectSeries(t, `caddy_socketio_limited_total{hub="rate",limit="handshake_rate"}`, fmt.Sprint(refused))
		if n := strings.Count(c.Log.String(), "handshake refused: too many handshakes from this address"); n != 1 {
			t.Errorf("%d log lines for %d refusals, want 1", n, refused)
		}
	})
}
