package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeServer speaks just enough Engine.IO v4 / Socket.IO v5 to stand in for
// the bench servers: open, CONNECT reply, a ping right after connect (the
// client must answer), "publish" broadcast to the query room, "echo" acks.
type fakeServer struct {
	t        *testing.T
	relay    bool // forward "publish" itself to the sender's room, as Caddy's relay rule does
	mu       sync.Mutex
	rooms    map[string][]*fakeConn
	pongs    int
	received []string
}

type fakeConn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func (c *fakeConn) write(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

func (fs *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	c := &fakeConn{ws: ws}
	c.write(`0{"sid":"eiosid","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
	for {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		msg := string(b)
		switch {
		case msg == "40":
			if room := r.URL.Query().Get("room"); room != "" {
				fs.mu.Lock()
				fs.rooms[room] = append(fs.rooms[room], c)
				fs.mu.Unlock()
			}
			c.write(`40{"sid":"sock"}`)
			c.write("2")
		case msg == "3":
			fs.mu.Lock()
			fs.pongs++
			fs.mu.Unlock()
		case strings.HasPrefix(msg, `42["publish","`):
			rest := strings.TrimPrefix(msg, `42["publish","`)
			room, payload, _ := strings.Cut(rest, `",`)
			payload = strings.TrimSuffix(payload, "]")
			fs.mu.Lock()
			members := append([]*fakeConn(nil), fs.rooms[room]...)
			fs.mu.Unlock()
			for _, m := range members {
				switch {
				case !fs.relay:
					m.write(`42["msg",` + payload + `]`)
				case m != c:
					m.write(msg)
				}
			}
		case strings.HasPrefix(msg, "42"):
			f, err := parseFrame(b)
			if err == nil && f.AckID != noAck && eventIs(f.Data, "join") {
				c.write("43" + strconv.FormatInt(f.AckID, 10) + `[{"ok":true,"room":"e"}]`)
				continue
			}
			if err != nil || f.AckID == noAck || !eventIs(f.Data, "echo") {
				fs.t.Errorf("unexpected frame %q", msg)
				return
			}
			args := bytes.TrimPrefix(f.Data, []byte(`["echo",`))
			c.write("43" + strconv.FormatInt(f.AckID, 10) + "[" + string(args))
		default:
			fs.mu.Lock()
			fs.received = append(fs.received, msg)
			fs.mu.Unlock()
		}
	}
}

func startFake(t *testing.T) (*fakeServer, common) {
	t.Helper()
	fs := &fakeServer{t: t, rooms: map[string][]*fakeConn{}}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", fs)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return fs, common{
		Target: target{Addr: addr, Path: "/socket.io/"}, Label: "fake",
		Concurrency: 4, DialTimeout: 5 * time.Second,
	}
}

func metricValue(t *testing.T, r result, name string) float64 {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("%s: no metric %q in %+v", r.Scenario, name, r.Metrics)
	return 0
}

func TestConnectScenario(t *testing.T) {
	t.Parallel()
	fs, co := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runConnect(ctx, co, connectParams{N: 20, Hold: 200 * time.Millisecond})
	if got := metricValue(t, r, "connected"); got != 20 {
		t.Errorf("connected = %v, want 20 (notes %v)", got, r.Notes)
	}
	if got := metricValue(t, r, "connects/s"); got <= 0 {
		t.Errorf("connects/s = %v", got)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.pongs != 20 {
		t.Errorf("server got %d pongs, want one per client", fs.pongs)
	}
	if len(fs.received) != 0 {
		t.Errorf("unexpected frames at the server: %q", fs.received)
	}
}

func TestConnectGivesUpOnRefusal(t *testing.T) {
	t.Parallel()
	co := common{Target: target{Addr: "127.0.0.1:1", Path: "/socket.io/"}, Concurrency: 8, DialTimeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runConnect(ctx, co, connectParams{N: 5000, Hold: 0})
	failed := metricValue(t, r, "failed")
	if failed < giveUpAfter || failed > giveUpAfter+8 {
		t.Errorf("failed = %v, want about %d before giving up", failed, giveUpAfter)
	}
}

func TestFanoutScenario(t *testing.T) {
	t.Parallel()
	_, co := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runFanout(ctx, co, fanoutParams{N: 5, Room: "r1", Rate: 50, Duration: 400 * time.Millisecond, Drain: 2 * time.Second, Pad: 16})
	expected := metricValue(t, r, "expected")
	if expected != 5*20 {
		t.Errorf("expected = %v, want 100 (5 subscribers x 50/s x 0.4s)", expected)
	}
	if got := metricValue(t, r, "received"); got != expected {
		t.Errorf("received = %v of %v (notes %v)", got, expected, r.Notes)
	}
	if got := metricValue(t, r, "loss"); got != 0 {
		t.Errorf("loss = %v%%", got)
	}
	if p99 := metricValue(t, r, "latency p99"); p99 <= 0 || p99 > 1000 {
		t.Errorf("p99 = %v ms", p99)
	}
}

// TestFanoutRelay: against a server that relays "publish" to the sender's
// rooms, the publisher must be in the room and subscribers count "publish".
func TestFanoutRelay(t *testing.T) {
	t.Parallel()
	fs, co := startFake(t)
	fs.relay = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runFanout(ctx, co, fanoutParams{N: 4, Room: "r1", Rate: 50, Duration: 400 * time.Millisecond, Drain: 2 * time.Second, Pad: 16, Relay: true})
	expected := metricValue(t, r, "expected")
	if expected != 4*20 {
		t.Errorf("expected = %v, want 80", expected)
	}
	if got := metricValue(t, r, "received"); got != expected {
		t.Errorf("received = %v of %v (notes %v)", got, expected, r.Notes)
	}
}

// TestEchoRoomRequest: acks that do not repeat the arguments (a room
// request's {ok, room}) are timed by their ack id.
func TestEchoRoomRequest(t *testing.T) {
	t.Parallel()
	_, co := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runEcho(ctx, co, echoParams{Clients: 2, Window: 3, Duration: 300 * time.Millisecond, Drain: 2 * time.Second, Event: "join", Arg: `"e"`})
	if got := metricValue(t, r, "acks/s"); got <= 0 {
		t.Errorf("acks/s = %v (notes %v)", got, r.Notes)
	}
	if got := metricValue(t, r, "unanswered"); got != 0 {
		t.Errorf("unanswered = %v", got)
	}
	if p99 := metricValue(t, r, "ack p99"); p99 <= 0 || p99 > 1000 {
		t.Errorf("ack p99 = %v ms", p99)
	}
}

func TestEchoScenario(t *testing.T) {
	t.Parallel()
	_, co := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := runEcho(ctx, co, echoParams{Clients: 3, Window: 4, Duration: 300 * time.Millisecond, Drain: 2 * time.Second, Pad: 8})
	if got := metricValue(t, r, "acks/s"); got <= 0 {
		t.Errorf("acks/s = %v (notes %v)", got, r.Notes)
	}
	if got := metricValue(t, r, "unanswered"); got != 0 {
		t.Errorf("unanswered = %v", got)
	}
	for _, n := range r.Notes {
		if strings.Contains(n, "unreadable") {
			t.Errorf("note: %s", n)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, ok := range []string{"127.0.0.1:3000", "[::1]:3000", "localhost:3000"} {
		if err := checkLoopback(ctx, ok); err != nil {
			t.Errorf("checkLoopback(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:3000", "192.168.1.1:80", "nohostport"} {
		if err := checkLoopback(ctx, bad); err == nil {
			t.Errorf("checkLoopback(%s) accepted", bad)
		}
	}
}
