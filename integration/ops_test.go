//go:build live

package integration

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// TestCaddyBasicAuthUserRooms: behind a real basic_auth, each socket joins
// user-{http.auth.user.id}; the announcement to one user's room reaches
// that user's sockets only.
func TestCaddyBasicAuthUserRooms(t *testing.T) {
	t.Parallel()
	bin := testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	hash := hashPassword(t, bin, "wonderland")
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	basic_auth /socket.io/* {
		alice %s
		bob %s
	}
	socketio {
		join user-{http.auth.user.id}
		announce hello "{http.auth.user.id} joined {socketio.room}"
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, hash, hash)
	c := startCaddyConfig(t, sc, cfg)
	ws := fmt.Sprintf("ws://127.0.0.1:%d/socket.io/", sc.Port)
	dial := func(user string) *testkit.WS {
		h := http.Header{"Authorization": {"Basic " + basicAuth(user, "wonderland")}}
		w := testkit.DialWS(t, ws, nil, h)
		w.ConnectSocket("")
		return w
	}
	alice1 := dial("alice")
	alice1.Expect(`42["hello","alice joined user-alice"]`)
	bob := dial("bob")
	bob.Expect(`42["hello","bob joined user-bob"]`)
	alice2 := dial("alice")
	alice2.Expect(`42["hello","alice joined user-alice"]`)
	alice1.Expect(`42["hello","alice joined user-alice"]`)
	bob.Quiet(300 * time.Millisecond)
	if code, _ := rawGet(t, c.BaseURL, "/socket.io/?EIO=4&transport=polling", nil); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d, want 401", code)
	}
}

// TestCaddyStopDrains: `caddy stop` with a few hundred sockets and drain
// 3s: every client sees a close packet, spread over the period, and the
// process exits within the drain plus 2 s.
func TestCaddyStopDrains(t *testing.T) {
	t.Parallel()
	const n, drain = 300, 3 * time.Second
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	socketio {
		drain 3s
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port)
	c := startCaddyConfig(t, sc, cfg)
	ws := fmt.Sprintf("ws://127.0.0.1:%d/socket.io/", sc.Port)
	clients := make([]*testkit.WS, n)
	for i := range clients {
		clients[i] = testkit.DialWS(t, ws, nil, nil)
		clients[i].ConnectSocket("")
	}
	start := time.Now()
	var mu sync.Mutex
	var at []time.Duration
	var wg sync.WaitGroup
	for _, w := range clients {
		wg.Go(func() {
			deadline := time.After(drain + 5*time.Second)
			for {
				select {
				case f, ok := <-w.Frames():
					if !ok {
						return
					}
					if f.Data == "1" {
						mu.Lock()
						at = append(at, time.Since(start))
						mu.Unlock()
					}
				case <-deadline:
					t.Errorf("a connection still open after %v", drain+5*time.Second)
					return
				}
			}
		})
	}
	took := c.Stop()
	wg.Wait()
	slices.Sort(at)
	if len(at) != n {
		t.Fatalf("%d of %d clients saw a close packet", len(at), n)
	}
	early := 0
	for _, d := range at {
		if d < drain/4 {
			early++
		}
	}
	t.Logf("caddy stop with %d sockets, drain %v: exited after %v; closes first %v, median %v, last %v, %d in the first quarter",
		n, drain, took, at[0], at[n/2], at[n-1], early)
	if took > drain+2*time.Second {
		t.Fatalf("caddy exited %v after `caddy stop`, want within %v", took, drain+2*time.Second)
	}
	if at[n-1] < drain/2 || early > n/2 {
		t.Fatalf("closes not spread: last %v, %d of %d in the first quarter", at[n-1], early, n)
	}
}

// TestReloadReleasesWaitingPolls: a reload answers the long-poll GET that
// the old HTTP server holds (the hub's shutdown hook on Caddy's server,
// ReleasePolls), so the reload does not wait out the poll (up to the ping
// interval, 25 s), and the session goes on under the new config.
func TestReloadReleasesWaitingPolls(t *testing.T) {
	t.Parallel()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	socketio
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port)
	c := startCaddyConfig(t, sc, cfg)
	p := testkit.OpenPolling(t, c.BaseURL+"/socket.io/", nil, nil)
	p.MustPost("40")
	p.ReadUntil("40{", 5*time.Second)
	sent, result := p.Pending()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll GET was not sent")
	}
	start := time.Now()
	c.command("reload", "--config", c.cfgPath, "--adapter", "caddyfile", "--address", c.admin, "--force")
	reloaded := time.Since(start)
	select {
	case r := <-result:
		answered := time.Since(start)
		if r.Err != nil || r.Status != http.StatusOK || r.Body != "6" {
			t.Fatalf("the waiting poll: %d %q %v, want 200 and a noop", r.Status, r.Body, r.Err)
		}
		t.Logf("reload took %v; the waiting poll was answered %v after it began", reloaded, answered)
		if answered > 5*time.Second {
			t.Fatalf("the waiting poll was answered %v after the reload began, want within 5 s", answered)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the waiting poll not answered 20 s after the reload began (the reload took %v)", reloaded)
	}
	// The session lives on: a CONNECT to an unknown namespace is refused
	// on it, by the new config's handler.
	p.MustPost("40/nope,")
	p.ReadUntil("44/nope,", 5*time.Second)
}
