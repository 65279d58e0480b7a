//go:build live

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// No sticky sessions (issue 9, item 4): two real Caddy nodes sharing a real
// redis-server, behind a third Caddy whose reverse_proxy sends requests
// round robin, so consecutive requests of one session land on different
// nodes; the node that does not hold the session forwards them to the one
// that does.

// stickyClients is the acceptance test's number of polling-only clients.
const stickyClients = 20

// stickyNodeConfig is one cluster node: the page (for readiness), an access
// log (the test reads the forwarded requests and their statuses from it),
// and a socketio hub on the cluster that advertises this node's address.
// welcome names the node, so a client learns which node holds its session.
func stickyNodeConfig(name string, port, admin int, redisURL string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[3]d
	default_bind 127.0.0.1
	persist_config off
}

:%[2]d {
	log
	root * testdata/www
	socketio {
		join lobby
		emit welcome "%[1]s"
		relay chat
		room_requests join leave
		allow_rooms room-*
		adapter redis %[4]s {
			advertise 127.0.0.1:%[2]d
		}
	}
	file_server
}
`, name, port, admin, redisURL)
}

// stickyBalancerConfig is a plain Caddy load balancer in front of the
// nodes, round robin, no stickiness.
func stickyBalancerConfig(port, admin int, upstreams ...string) string {
	return fmt.Sprintf(`{
%s}

:%d {
	log
	reverse_proxy %s {
		lb_policy round_robin
	}
}
`, adminOptions(admin), port, strings.Join(upstreams, " "))
}

type stickyCluster struct {
	redis    *testkit.Redis
	nodes    [2]*caddyProc
	names    [2]string
	balancer *caddyProc
}

func startStickyCluster(t *testing.T) *stickyCluster {
	t.Helper()
	testkit.CaddyBinary(t) // skips under -short before redis-server starts
	c := &stickyCluster{redis: testkit.StartRedis(t), names: [2]string{"node-a", "node-b"}}
	var upstreams []string
	for i := range c.nodes {
		sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
		c.nodes[i] = startCaddyConfig(t, sc, stickyNodeConfig(c.names[i], sc.Port, sc.AdminPort, c.redis.URL()))
		upstreams = append(upstreams, fmt.Sprintf("127.0.0.1:%d", sc.Port))
	}
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c.balancer = startCaddyConfig(t, sc, stickyBalancerConfig(sc.Port, sc.AdminPort, upstreams...))
	return c
}

// forwardedRequests counts the requests a node's access log shows as
// forwarded by its peer.
func forwardedRequests(p *caddyProc) int {
	return strings.Count(p.Log.String(), `"X-Socketio-Forwarded":[`)
}

// statusCount counts access log entries with this status.
func statusCount(p *caddyProc, status int) int {
	return strings.Count(p.Log.String(), fmt.Sprintf(`"status":%d,`, status))
}

// TestStickyFree is the acceptance test: 20 polling-only socket.io-client
// 4.8 clients through round robin all connect, get their node's welcome,
// join a room with an ack and exchange relayed messages, with no 400
// anywhere; then a client that upgrades to websocket through the balancer
// does the same.
func TestStickyFree(t *testing.T) {
	c := startStickyCluster(t)
	drv := nodeclient.Start(t)
	base := c.balancer.BaseURL

	clients := make([]*nodeclient.Client, stickyClients)
	owner := make([]string, stickyClients)
	for i := range clients {
		clients[i] = drv.Connect(fmt.Sprintf("poll-%02d", i), "4", base, map[string]any{
			"transports": []any{"polling"}, "reconnection": false,
		})
	}
	perNode := map[string]int{}
	for i, cl := range clients {
		if _, err := cl.WaitConnect(clientWait); err != nil {
			t.Fatalf("client %d: %v\nbalancer log:\n%s", i, err, c.balancer.Log)
		}
		args, err := cl.WaitEvent("welcome", clientWait)
		if err != nil {
			t.Fatalf("client %d welcome: %v", i, err)
		}
		owner[i], _ = args[0].(string)
		perNode[owner[i]]++
	}
	t.Logf("sessions per node: %v", perNode)
	if perNode["node-a"] == 0 || perNode["node-b"] == 0 {
		t.Fatalf("sessions per node %v: want both nodes to hold some", perNode)
	}

	// Acks: each request crosses the balancer again (POST, then the GET
	// that carries the ack), whichever node it lands on.
	for i, cl := range clients {
		reply, err := cl.EmitWithAck(clientWait, "join", fmt.Sprintf("room-%d", i%4))
		if err != nil {
			t.Fatalf("client %d join: %v", i, err)
		}
		if m, _ := reply[0].(map[string]any); m["ok"] != true {
			t.Fatalf("client %d join: %v", i, reply)
		}
	}

	// Every client says something in the lobby; every other one hears it.
	for i, cl := range clients {
		cl.Emit("chat", fmt.Sprintf("hello from %d", i))
	}
	for i, cl := range clients {
		want := map[string]bool{}
		for j := range clients {
			if j != i {
				want[fmt.Sprintf("hello from %d", j)] = true
			}
		}
		deadline := time.Now().Add(2 * clientWait)
		for len(want) > 0 && time.Now().Before(deadline) {
			args, err := cl.WaitEvent("chat", time.Until(deadline))
			if err != nil {
				break
			}
			s, _ := args[0].(string)
			delete(want, s)
		}
		if len(want) > 0 {
			t.Fatalf("client %d (on %s) missed %d relayed messages: %v", i, owner[i], len(want), want)
		}
	}

	// The upgrade: polling first, then a websocket through the balancer to
	// whichever node, proxied to the owner when it is the other one.
	up := drv.Connect("upgrader", "4", base, map[string]any{"reconnection": false})
	if _, err := up.WaitConnect(clientWait); err != nil {
		t.Fatal(err)
	}
	if err := up.WaitUpgrade(clientWait); err != nil {
		t.Fatalf("upgrade through the balancer: %v", err)
	}
	if reply, err := up.EmitWithAck(clientWait, "join", "room-up"); err != nil || len(reply) == 0 {
		t.Fatalf("ack after the upgrade: %v %v", reply, err)
	}
	up.Emit("chat", "from the websocket")
	if args, err := clients[0].WaitEvent("chat", clientWait); err != nil || args[0] != "from the websocket" {
		t.Fatalf("relay from the upgraded client: %v %v", args, err)
	}

	for i, cl := range clients {
		for _, ev := range cl.Events() {
			if ev.Type == "disconnect" || ev.Type == "connect_error" || ev.Type == "error" {
				t.Errorf("client %d: %s %s%s", i, ev.Type, ev.Reason, ev.Message)
			}
		}
	}
	fa, fb := forwardedRequests(c.nodes[0]), forwardedRequests(c.nodes[1])
	t.Logf("requests forwarded to node-a: %d, to node-b: %d", fa, fb)
	if fa == 0 || fb == 0 {
		t.Errorf("forwarded requests a=%d b=%d: want both nodes to forward", fa, fb)
	}
	for _, p := range []*caddyProc{c.balancer, c.nodes[0], c.nodes[1]} {
		if n := statusCount(p, http.StatusBadRequest); n != 0 {
			t.Errorf("%s: %d responses with status 400", p.BaseURL, n)
		}
	}
}

// TestStickyHostile: what a client can try against a node with the sids
// and headers it sends, on real Caddy nodes; and a node that stops.
func TestStickyHostile(t *testing.T) {
	c := startStickyCluster(t)
	a, b := c.nodes[0], c.nodes[1]
	p := testkit.OpenPolling(t, a.BaseURL+"/socket.io/", nil, nil)
	atB := strings.Replace(p.URL, a.BaseURL, b.BaseURL, 1)
	p.MustPost("40")
	if status, body := p.Do(http.MethodGet, atB, ""); status != 200 || !strings.HasPrefix(body, "40{") {
		t.Fatalf("CONNECT answer through B: %d %q", status, body)
	}

	t.Run("spoofed mark", func(t *testing.T) {
		p.Header = http.Header{"X-Socketio-Forwarded": {"x"}}
		defer func() { p.Header = nil }()
		if status, body := p.Do(http.MethodGet, atB, ""); status != 400 || !strings.Contains(body, "Session ID unknown") {
			t.Fatalf("%d %q", status, body)
		}
	})

	t.Run("made-up node id", func(t *testing.T) {
		start := time.Now()
		bad := strings.Replace(atB, "sid="+p.SID, "sid=QQQQ"+p.SID[4:], 1)
		if status, _ := p.Do(http.MethodGet, bad, ""); status != 400 || time.Since(start) > time.Second {
			t.Fatalf("%d after %v", status, time.Since(start))
		}
	})

	t.Run("cross-origin request refused at the node it reaches", func(t *testing.T) {
		p.Header = http.Header{"Origin": {"http://evil.example"}}
		defer func() { p.Header = nil }()
		if status, _ := p.Do(http.MethodGet, atB, ""); status != 403 {
			t.Fatalf("%d", status)
		}
	})

	t.Run("owner stopped", func(t *testing.T) {
		a.Stop()
		for i := range 3 {
			start := time.Now()
			status, body := p.Do(http.MethodGet, atB, "")
			if status != 400 || !strings.Contains(body, "Session ID unknown") || time.Since(start) > 2*time.Second {
				t.Fatalf("try %d: %d %q after %v", i, status, body, time.Since(start))
			}
		}
	})
}

// TestStickyPollingLoad runs many polling sessions at once through the
// balancer with raw Engine.IO requests, to see that forwarding holds under
// concurrency (every request answered 200, none lost).
func TestStickyPollingLoad(t *testing.T) {
	c := startStickyCluster(t)
	const sessions, rounds = 50, 10
	base := c.balancer.BaseURL + "/socket.io/"
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	start := time.Now()
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pollSession(base, i, rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d sessions x %d ack round trips through round robin in %v", sessions, rounds, time.Since(start).Round(time.Millisecond))
}

// pollSession connects one socket over raw polling and makes rounds join
// requests with acks, each answered on a GET that may land on either node.
func pollSession(base string, n, rounds int) error {
	hc := &http.Client{Timeout: 30 * time.Second}
	do := func(method, u, body string) (int, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), err
	}
	status, body, err := do(http.MethodGet, base+"?EIO=4&transport=polling", "")
	if err != nil || status != 200 || !strings.HasPrefix(body, `0{"sid":"`) {
		return fmt.Errorf("session %d handshake: %d %q %v", n, status, body, err)
	}
	sid := body[len(`0{"sid":"`):][:20]
	u := base + "?" + url.Values{"EIO": {"4"}, "transport": {"polling"}, "sid": {sid}}.Encode()
	if status, body, err := do(http.MethodPost, u, "40"); err != nil || status != 200 {
		return fmt.Errorf("session %d CONNECT: %d %q %v", n, status, body, err)
	}
	want := func(prefix string) error {
		for range 5 { // a poll may carry other packets first (welcome, announcements)
			status, body, err := do(http.MethodGet, u, "")
			if err != nil || status != 200 {
				return fmt.Errorf("session %d waiting for %q: %d %q %v", n, prefix, status, body, err)
			}
			for _, pkt := range strings.Split(body, "\x1e") {
				if strings.HasPrefix(pkt, prefix) {
					return nil
				}
			}
		}
		return fmt.Errorf("session %d: no %q", n, prefix)
	}
	if err := want("40{"); err != nil {
		return err
	}
	for r := range rounds {
		if status, body, err := do(http.MethodPost, u, fmt.Sprintf(`42%d["join","room-%d"]`, r, r)); err != nil || status != 200 {
			return fmt.Errorf("session %d join %d: %d %q %v", n, r, status, body, err)
		}
		if err := want(fmt.Sprintf("43%d[", r)); err != nil {
			return err
		}
	}
	return nil
}

// TestStickyNodeReloadAndStop: a reload of one node does not wait for the
// polls it forwards (they are released, as its own are) and drops no
// session; stopping it ends only its own sessions, quickly, while the
// other node's clients go on through the balancer (which retries the
// remaining upstream).
func TestStickyNodeReloadAndStop(t *testing.T) {
	testkit.CaddyBinary(t)
	rs := testkit.StartRedis(t)
	names := []string{"node-a", "node-b"}
	var nodes []*caddyProc
	var cfgs, upstreams []string
	for _, name := range names {
		sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
		cfg := stickyNodeConfig(name, sc.Port, sc.AdminPort, rs.URL())
		nodes = append(nodes, startCaddyConfig(t, sc, cfg))
		cfgs = append(cfgs, cfg)
		upstreams = append(upstreams, fmt.Sprintf("127.0.0.1:%d", sc.Port))
	}
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	lbCfg := strings.Replace(stickyBalancerConfig(sc.Port, sc.AdminPort, upstreams...),
		"lb_policy round_robin", "lb_policy round_robin\n\t\tlb_try_duration 5s\n\t\tfail_duration 30s", 1)
	lb := startCaddyConfig(t, sc, lbCfg)

	drv := nodeclient.Start(t)
	const n = 8
	clients := make([]*nodeclient.Client, n)
	owner := make([]string, n)
	for i := range clients {
		clients[i] = drv.Connect(fmt.Sprintf("c%d", i), "4", lb.BaseURL, map[string]any{
			"transports": []any{"polling"}, "reconnection": false,
		})
	}
	for i, cl := range clients {
		if _, err := cl.WaitConnect(clientWait); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		args, err := cl.WaitEvent("welcome", clientWait)
		if err != nil {
			t.Fatal(err)
		}
		owner[i], _ = args[0].(string)
	}
	acks := func(when string, only string) {
		t.Helper()
		for i, cl := range clients {
			if only != "" && owner[i] != only {
				continue
			}
			if _, err := cl.EmitWithAck(clientWait, "join", "room-"+when); err != nil {
				t.Fatalf("%s: client %d (on %s): %v", when, i, owner[i], err)
			}
		}
	}
	acks("before", "")

	// Reload node-b with a changed welcome: its HTTP server shuts down
	// while it holds forwarded polls of node-a's sessions.
	b := nodes[1]
	b.writeConfig(strings.Replace(cfgs[1], `emit welcome "node-b"`, `emit welcome "node-b2"`, 1))
	start := time.Now()
	b.command("reload", "--config", b.cfgPath, "--adapter", "caddyfile", "--address", b.admin, "--force")
	reload := time.Since(start)
	t.Logf("caddy reload of node-b: %v", reload.Round(time.Millisecond))
	if reload > 5*time.Second {
		t.Errorf("reload took %v: held by forwarded polls?", reload)
	}
	acks("after-reload", "")

	start = time.Now()
	b.Stop()
	stop := time.Since(start)
	t.Logf("caddy stop of node-b: %v", stop.Round(time.Millisecond))
	if stop > 5*time.Second {
		t.Errorf("stop took %v", stop)
	}
	acks("after-stop", "node-a")
	for i, cl := range clients {
		gone := false
		for _, ev := range cl.Events() {
			gone = gone || ev.Type == "disconnect"
		}
		if owner[i] == "node-a" && gone {
			t.Errorf("client %d on node-a disconnected when node-b stopped: %v", i, cl.Events())
		}
	}
}
