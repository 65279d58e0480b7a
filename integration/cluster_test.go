//go:build live

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// clusterAPISecret is the emit API's bearer secret on the cluster nodes.
const clusterAPISecret = "cluster-api-secret"

// clusterConfig is a Caddy node of a Redis cluster: sockets join the room
// their query names, "relay" is relayed to the sender's rooms, the emit
// API is under /api/, and server-side events go to backend.
func clusterConfig(port, admin int, redisURL, backend string) string {
	return fmt.Sprintf(`{
%s}

:%d {
	respond /app.js "ok" 200
	socketio_api /api/* {
		secrets %s
	}
	socketio {
		join {socketio.query.room}
		relay relay
		adapter redis %s {
			request_timeout 3s
			advertise 127.0.0.1:%d
		}
		webhook {
			secret hook-secret
			server_side %s/server-side
		}
	}
}
`, adminOptions(admin), port, clusterAPISecret, redisURL, port, backend)
}

type clusterNode struct {
	*caddyProc
	sc siteConfig
}

func startClusterNode(t *testing.T, redisURL, backend string) *clusterNode {
	t.Helper()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	return &clusterNode{startCaddyConfig(t, sc, clusterConfig(sc.Port, sc.AdminPort, redisURL, backend)), sc}
}

// api calls the node's emit API and decodes its JSON answer.
func (n *clusterNode) api(t *testing.T, method, endpoint string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.BaseURL+"/api/"+endpoint, rd)
	req.Header.Set("Authorization", "Bearer "+clusterAPISecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// metricValue reads one sample of the node's /metrics (admin endpoint); 0
// when it is absent.
func metricValue(t *testing.T, n *clusterNode, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatalf("reading metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// goroutines reads the process's goroutine count from the admin pprof.
func (n *clusterNode) goroutines(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + n.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("reading goroutines: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no goroutine total in %.200s", b)
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// serverSideBackend answers the server_side webhook with the ack
// "pong-from-caddy" and records the events.
type serverSideBackend struct {
	*httptest.Server
	mu     sync.Mutex
	events []string
}

func startServerSideBackend(t *testing.T) *serverSideBackend {
	b := &serverSideBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Type  string `json:"type"`
			Event string `json:"event"`
			Ack   bool   `json:"ack"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		b.mu.Lock()
		b.events = append(b.events, body.Type+":"+body.Event)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ack":["pong-from-caddy"]}`))
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *serverSideBackend) count(ev string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.events {
		if e == ev {
			n++
		}
	}
	return n
}

func waitNumSub(t *testing.T, r *testkit.Redis, want int64) {
	t.Helper()
	rc := r.Client()
	deadline := time.Now().Add(15 * time.Second)
	ch := "socket.io-request#/#"
	for {
		res, err := rc.PubSubNumSub(context.Background(), ch).Result()
		if err == nil && res[ch] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NUMSUB %s = %v (%v), want %d", ch, res, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits for in-flight deliveries before counting "exactly once".
const settle = 500 * time.Millisecond

func countEvents(c *nodeclient.Client, name string) int { return len(c.EventsNamed(name)) }

// TestClusterWithNode: two Caddy nodes and a Node socket.io server with
// @socket.io/redis-adapter 8.3 on one Redis, plus the redis-emitter 5.1,
// act as one cluster.
func TestClusterWithNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server, two Caddy nodes and Node")
	}
	r := testkit.StartRedis(t)
	backend := startServerSideBackend(t)
	peer := nodeclient.StartClusterPeer(t, r.URL(), "")
	n1 := startClusterNode(t, r.URL(), backend.URL)
	n2 := startClusterNode(t, r.URL(), backend.URL)
	waitNumSub(t, r, 3)

	d := nodeclient.Start(t)
	connect := func(id, base string) (*nodeclient.Client, string) {
		t.Helper()
		c := d.Connect(id, "4", base, map[string]any{
			"transports": []string{"websocket"}, "query": map[string]any{"room": "r"},
			"auth": map[string]any{"rooms": []string{"r"}}, "reconnection": false,
		})
		sid, err := c.WaitConnect(clientWait)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.SetAckReply("ask", []any{"ok-" + id})
		return c, sid
	}
	a, aid := connect("a", n1.BaseURL)
	b, bid := connect("b", n2.BaseURL)
	c, cid := connect("n", peer.URL)
	all := []*nodeclient.Client{a, b, c}

	t.Run("relay spans the three nodes exactly once with binary", func(t *testing.T) {
		for _, x := range all {
			x.Emit("relay", "from-"+x.ID(), []byte{1, 2, 3})
		}
		for _, x := range all {
			for range 2 {
				args, err := x.WaitEvent("relay", clientWait)
				if err != nil {
					t.Fatalf("%s: %v", x.ID(), err)
				}
				if bin, ok := args[1].([]byte); !ok || !bytes.Equal(bin, []byte{1, 2, 3}) {
					t.Fatalf("%s got %v, want the binary argument", x.ID(), args)
				}
			}
		}
		time.Sleep(settle)
		for _, x := range all {
			if got := countEvents(x, "relay"); got != 2 {
				t.Fatalf("%s got %d relays, want 2 (one from each other node)", x.ID(), got)
			}
		}
	})

	t.Run("the Node emitter reaches every node", func(t *testing.T) {
		date := "2026-01-02T03:04:05.678Z"
		if err := peer.Call(nil, "emitter_emit", map[string]any{"to": []string{"r"}, "event": "em",
			"args": []any{1, []byte{9}, map[string]any{"$date": date}}}); err != nil {
			t.Fatal(err)
		}
		for _, x := range all {
			args, err := x.WaitEvent("em", clientWait)
			if err != nil {
				t.Fatalf("%s: %v", x.ID(), err)
			}
			if len(args) != 3 || !bytes.Equal(asBytes(args[1]), []byte{9}) || args[2] != date {
				t.Fatalf("%s got %#v", x.ID(), args)
			}
		}
		if err := peer.Call(nil, "emitter_emit", map[string]any{"event": "em-except", "except": []string{aid}}); err != nil {
			t.Fatal(err)
		}
		if err := peer.Call(nil, "emitter_emit", map[string]any{"to": []string{bid}, "event": "em-sid"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WaitEvent("em-sid", clientWait); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*nodeclient.Client{b, c} {
			if _, err := x.WaitEvent("em-except", clientWait); err != nil {
				t.Fatalf("%s: %v", x.ID(), err)
			}
		}
		time.Sleep(settle)
		for _, x := range all {
			want := map[string]int{"a": 0, "b": 1, "n": 1}[x.ID()]
			if got := countEvents(x, "em-except"); got != want {
				t.Fatalf("%s got em-except %d times, want %d", x.ID(), got, want)
			}
			if got, want := countEvents(x, "em-sid"), map[string]int{"b": 1}[x.ID()]; got != want {
				t.Fatalf("%s got em-sid %d times, want %d", x.ID(), got, want)
			}
			if got := countEvents(x, "em"); got != 1 {
				t.Fatalf("%s got em %d times", x.ID(), got)
			}
		}
	})

	t.Run("Node fetchSockets and allRooms see Caddy's sockets", func(t *testing.T) {
		var sockets []struct {
			ID        string         `json:"id"`
			Rooms     []string       `json:"rooms"`
			Handshake map[string]any `json:"handshake"`
		}
		start := time.Now()
		if err := peer.Call(&sockets, "fetch_sockets", map[string]any{"to": []string{"r"}}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("fetchSockets took %v (timeout 3s): a node did not answer", d)
		}
		ids := []string{}
		for _, s := range sockets {
			ids = append(ids, s.ID)
			if s.ID == aid && (!slices.Contains(s.Rooms, "r") || s.Handshake["address"] == nil) {
				t.Fatalf("Caddy socket as Node sees it: %+v", s)
			}
		}
		slices.Sort(ids)
		want := []string{aid, bid, cid}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("fetchSockets ids %v, want %v", ids, want)
		}
		var rooms []string
		if err := peer.Call(&rooms, "all_rooms", nil); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"r", aid, bid, cid} {
			if !slices.Contains(rooms, w) {
				t.Fatalf("allRooms %v lacks %s", rooms, w)
			}
		}
	})

	t.Run("Node emitWithAck collects one ack per client of every node", func(t *testing.T) {
		var replies []any
		start := time.Now()
		if err := peer.Call(&replies, "emit_with_ack", map[string]any{"event": "ask", "timeout": 3000}); err != nil {
			t.Fatal(err)
		}
		if len(replies) != 3 || time.Since(start) > 2*time.Second {
			t.Fatalf("replies %v after %v", replies, time.Since(start))
		}
	})

	t.Run("Node socketsJoin, socketsLeave and disconnectSockets act once", func(t *testing.T) {
		if err := peer.Call(nil, "sockets_join", map[string]any{"to": []string{aid, bid}, "rooms": []string{"j"}}); err != nil {
			t.Fatal(err)
		}
		waitRoomSize(t, n1, "j", 2)
		if err := peer.Call(nil, "emit", map[string]any{"to": []string{"j"}, "event": "in-j"}); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*nodeclient.Client{a, b} {
			if _, err := x.WaitEvent("in-j", clientWait); err != nil {
				t.Fatalf("%s: %v", x.ID(), err)
			}
		}
		if err := peer.Call(nil, "sockets_leave", map[string]any{"to": []string{aid}, "rooms": []string{"j"}}); err != nil {
			t.Fatal(err)
		}
		waitRoomSize(t, n1, "j", 1)
		if err := peer.Call(nil, "emitter_sockets_join", map[string]any{"to": []string{bid}, "rooms": []string{"k"}}); err != nil {
			t.Fatal(err)
		}
		waitRoomSize(t, n1, "k", 1)
		time.Sleep(settle)
		if got := countEvents(c, "in-j"); got != 0 {
			t.Fatalf("the Node client got in-j %d times", got)
		}
	})

	t.Run("serverSideEmit reaches Caddy; the webhook's reply is the ack", func(t *testing.T) {
		if err := peer.Call(nil, "server_side_emit", map[string]any{"args": []any{"hello", 1}}); err != nil {
			t.Fatal(err)
		}
		var replies []any
		if err := peer.Call(&replies, "server_side_emit_with_ack", map[string]any{"args": []any{"q"}, "timeout": 3000}); err != nil {
			t.Fatal(err)
		}
		if len(replies) != 2 || replies[0] != "pong-from-caddy" || replies[1] != "pong-from-caddy" {
			t.Fatalf("serverSideEmitWithAck replies %v, want one per Caddy node", replies)
		}
		deadline := time.Now().Add(clientWait)
		for backend.count("server_side:hello") != 2 || backend.count("server_side:q") != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("backend saw %v", backend.events)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("every emit API endpoint spans the nodes", func(t *testing.T) {
		st, out := n1.api(t, http.MethodPost, "emit", map[string]any{"to": []string{"r"}, "event": "api"})
		if st != 200 {
			t.Fatalf("emit: %d %v", st, out)
		}
		for _, x := range all {
			if _, err := x.WaitEvent("api", clientWait); err != nil {
				t.Fatalf("%s: %v", x.ID(), err)
			}
		}
		st, out = n1.api(t, http.MethodPost, "emit", map[string]any{"to": []string{"r"}, "event": "ask", "ack": true, "timeout": "3s"})
		if replies, _ := out["replies"].([]any); st != 200 || len(replies) != 3 || out["timed_out"] != false {
			t.Fatalf("emit with acks: %d %v", st, out)
		}
		st, out = n1.api(t, http.MethodGet, "sockets?room=r", nil)
		if list, _ := out["sockets"].([]any); st != 200 || len(list) != 3 {
			t.Fatalf("sockets: %d %v", st, out)
		}
		st, out = n1.api(t, http.MethodPost, "join", map[string]any{"to": []string{cid, bid}, "rooms": []string{"api-room"}})
		if st != 200 {
			t.Fatalf("join: %d %v", st, out)
		}
		waitRoomSize(t, n2, "api-room", 2)
		st, _ = n1.api(t, http.MethodPost, "leave", map[string]any{"to": []string{cid}, "rooms": []string{"api-room"}})
		if st != 200 {
			t.Fatalf("leave: %d", st)
		}
		waitRoomSize(t, n2, "api-room", 1)
		st, _ = n1.api(t, http.MethodPost, "disconnect", map[string]any{"to": []string{bid}})
		if st != 200 {
			t.Fatalf("disconnect: %d", st)
		}
		if reason, err := b.WaitDisconnect(clientWait); err != nil || reason != "io server disconnect" {
			t.Fatalf("b: %q %v", reason, err)
		}
		time.Sleep(settle)
		if got := len(slices.DeleteFunc(b.Events(), func(e nodeclient.Event) bool { return e.Type != "disconnect" })); got != 1 {
			t.Fatalf("b disconnected %d times", got)
		}
	})

	t.Run("a reload keeps one subscription per node", func(t *testing.T) {
		n1.writeConfig(clusterConfig(n1.sc.Port, n1.sc.AdminPort, r.URL(), backend.URL))
		n1.command("reload", "--config", n1.cfgPath, "--adapter", "caddyfile", "--address", n1.admin, "--force")
		time.Sleep(settle)
		waitNumSub(t, r, 3)
		a.Emit("relay", "after-reload")
		if _, err := c.WaitEvent("relay", clientWait); err != nil {
			t.Fatal(err)
		}
	})
}

// waitRoomSize waits until the node's emit API lists room with size n
// (the API counts the sockets of every node).
func waitRoomSize(t *testing.T, n *clusterNode, room string, size int) {
	t.Helper()
	deadline := time.Now().Add(clientWait)
	for {
		_, out := n.api(t, http.MethodGet, "rooms", nil)
		list, _ := out["rooms"].([]any)
		got := 0
		for _, e := range list {
			if m, _ := e.(map[string]any); m["name"] == room {
				got = int(m["size"].(float64))
			}
		}
		if got == size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s has %d sockets, want %d (%v)", room, got, size, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterRedisOutage: Redis stopped for 3 s and restarted. Local
// delivery never stops, the emit API answers 503 for what needs the
// cluster, cross-node delivery resumes within 10 s, and no goroutine is
// left over.
func TestClusterRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and two Caddy nodes")
	}
	r := testkit.StartRedis(t)
	backend := startServerSideBackend(t)
	n1 := startClusterNode(t, r.URL(), backend.URL)
	n2 := startClusterNode(t, r.URL(), backend.URL)
	waitNumSub(t, r, 2)
	d := nodeclient.Start(t)
	connect := func(id, base string) *nodeclient.Client {
		c := d.Connect(id, "4", base, map[string]any{"transports": []string{"websocket"}, "query": map[string]any{"room": "r"}})
		if _, err := c.WaitConnect(clientWait); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return c
	}
	a, a2, b := connect("a", n1.BaseURL), connect("a2", n1.BaseURL), connect("b", n2.BaseURL)
	a.Emit("relay", "before")
	for _, x := range []*nodeclient.Client{a2, b} {
		if _, err := x.WaitEvent("relay", clientWait); err != nil {
			t.Fatal(err)
		}
	}
	// Hostile messages on the channels (several crash a stock Node 8.3
	// peer): logged, counted, ignored; the cluster goes on.
	rc := r.Client()
	for ch, payloads := range map[string][]string{
		"socket.io#/#":         {"", `{"not":"msgpack"}`, "¦abcdef", "¡a", "¡xÀ"},
		"socket.io#/#r#":       {"Ýÿÿÿÿ", "Á"},
		"socket.io-request#/#": {`{"type":5,"requestId":"x"}`, `{"type":2,"opts":{"rooms":5}}`, "¤type", "garbage"},
	} {
		for _, p := range payloads {
			if err := rc.Publish(context.Background(), ch, p).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Emit("relay", "after-garbage")
	if args, err := b.WaitEvent("relay", clientWait); err != nil || args[0] != "after-garbage" {
		t.Fatalf("relay after the hostile messages: %v %v", args, err)
	}
	if got := metricValue(t, n1, `caddy_socketio_redis_dropped_total{hub="/socket.io/",reason="malformed"}`); got < 10 {
		t.Fatalf("malformed drops counted: %v, want at least 10", got)
	}
	before := n1.goroutines(t)

	r.Stop()
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		a.Emit("relay", fmt.Sprintf("during-%d", i))
		if _, err := a2.WaitEvent("relay", 2*time.Second); err != nil {
			t.Fatalf("local delivery stopped during the outage: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	st, out := n1.api(t, http.MethodGet, "sockets", nil)
	if st != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "cluster unavailable") {
		t.Fatalf("sockets during the outage: %d %v", st, out)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the emit API took %v to fail", time.Since(start))
	}
	// An emit reaches this node's sockets and says the others were not.
	st, out = n1.api(t, http.MethodPost, "emit", map[string]any{"to": []string{"r"}, "event": "api-during"})
	if st != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "cluster unavailable") {
		t.Fatalf("emit during the outage: %d %v", st, out)
	}
	if _, err := a2.WaitEvent("api-during", clientWait); err != nil {
		t.Fatalf("the local socket did not get the emit: %v", err)
	}
	r.Start()
	restarted := time.Now()
	for {
		a.Emit("relay", "after")
		if args, err := b.WaitEvent("relay", 500*time.Millisecond); err == nil && args[0] == "after" {
			break
		}
		if time.Since(restarted) > 10*time.Second {
			t.Fatal("cross-node delivery did not resume within 10 s of the restart")
		}
	}
	t.Logf("cross-node delivery resumed %v after the restart", time.Since(restarted).Round(10*time.Millisecond))
	waitNumSub(t, r, 2)
	deadline = time.Now().Add(10 * time.Second)
	for {
		after := n1.goroutines(t)
		if after <= before+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d before the outage, %d after", before, after)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
