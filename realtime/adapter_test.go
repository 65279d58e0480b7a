package realtime

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// TestSocketContextEndsWithSocket: Context is live while the socket is
// connected and done once it disconnects.
func TestSocketContextEndsWithSocket(t *testing.T) {
	s := connectedSocket(t, nil)
	ctx := s.Context()
	select {
	case <-ctx.Done():
		t.Fatal("context done while connected")
	default:
	}
	s.Disconnect(false)
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("context still live after Disconnect")
	}
}

// TestDeliverLocal drives the exported delivery primitive as an adapter
// outside the package would: encode once, deliver by id with an ack
// callback; unknown ids are skipped, an answer reaches OnAck once, and
// after AckTimeout a late answer is dropped.
func TestDeliverLocal(t *testing.T) {
	t.Parallel()
	got := make(chan *Socket, 1)
	_, ts := newTestServerWith(t, nil, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) { got <- s })
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	s := <-got
	n := s.Namespace()

	msgs, err := EncodeBroadcast(eventPacket("/", parser.NoID, "plain", []any{1}))
	if err != nil {
		t.Fatal(err)
	}
	if sent := n.DeliverLocal([]string{"nobody", s.ID()}, Delivery{Messages: msgs}); sent != 1 {
		t.Fatalf("sent to %d, want 1", sent)
	}
	c.Expect(`42["plain",1]`)

	acks := make(chan []any, 2)
	id := n.NextAckID()
	msgs, err = EncodeBroadcast(eventPacket("/", id, "ask", nil))
	if err != nil {
		t.Fatal(err)
	}
	sent := n.DeliverLocal([]string{s.ID()}, Delivery{Messages: msgs, AckID: id,
		OnAck: func(a []any) { acks <- a }, AckTimeout: 300 * time.Millisecond})
	if sent != 1 {
		t.Fatalf("sent to %d, want 1", sent)
	}
	c.Expect(`42` + itoa(id) + `["ask"]`)
	c.Send(`43` + itoa(id) + `["yes"]`)
	select {
	case a := <-acks:
		if len(a) != 1 || a[0] != "yes" {
			t.Fatalf("ack args %v", a)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ack")
	}
	c.Send(`43` + itoa(id) + `["twice"]`)

	id = n.NextAckID()
	msgs, _ = EncodeBroadcast(eventPacket("/", id, "late", nil))
	n.DeliverLocal([]string{s.ID()}, Delivery{Messages: msgs, AckID: id,
		OnAck: func(a []any) { acks <- a }, AckTimeout: 50 * time.Millisecond})
	c.Expect(`42` + itoa(id) + `["late"]`)
	time.Sleep(150 * time.Millisecond) // the ack timeout is what is tested
	c.Send(`43` + itoa(id) + `["too late"]`)
	select {
	case a := <-acks:
		t.Fatalf("an answer after the timeout or a second answer reached OnAck: %v", a)
	case <-time.After(150 * time.Millisecond):
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestHandshakeJSON: a handshake serialises to Node's fetchSockets shape
// without credentials, and reads back.
func TestHandshakeJSON(t *testing.T) {
	hs := &Handshake{
		Headers: http.Header{"Authorization": {"Bearer secret-token"}, "Cookie": {"sid=1"},
			"User-Agent": {"ua"}, "X-Multi": {"a", "b"}, "Origin": {"http://x"}},
		Query:   url.Values{"room": {"1", "2"}},
		Auth:    map[string]any{"token": "secret-token"},
		Address: "127.0.0.1:5",
		Time:    time.UnixMilli(1700000000123),
		URL:     "/socket.io/?EIO=4",
		Secure:  true,
	}
	b, err := json.Marshal(SocketInfo{ID: "abc", Rooms: []string{"abc"}, Handshake: hs})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "sid=1") {
		t.Fatalf("credentials serialised: %s", b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	h, _ := m["handshake"].(map[string]any)
	if h["issued"] != float64(1700000000123) || h["xdomain"] != true || h["secure"] != true {
		t.Fatalf("handshake fields: %s", b)
	}
	if hd, _ := h["headers"].(map[string]any); hd["x-multi"] != "a, b" || hd["user-agent"] != "ua" {
		t.Fatalf("headers: %s", b)
	}
	var back SocketInfo
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Handshake.Address != hs.Address || !back.Handshake.Time.Equal(hs.Time) ||
		back.Handshake.Query.Get("room") != "1" || back.Handshake.Headers.Get("User-Agent") != "ua" {
		t.Fatalf("read back: %+v", back.Handshake)
	}
	// Node's lists and a missing issued.
	var fromNode Handshake
	err = json.Unmarshal([]byte(`{"headers":{"x":["1","2"]},"time":"Tue Dec 01 2026 11:09:07 GMT+0000 (Coordinated Universal Time)","query":{"q":"v"}}`), &fromNode)
	if err != nil || len(fromNode.Headers.Values("X")) != 2 || fromNode.Query.Get("q") != "v" {
		t.Fatalf("node handshake: %+v %v", fromNode, err)
	}
}

// TestDeliverLocalSplit: a delivery to many sockets is split between
// goroutines (DeliverLocal), and still each socket gets one caller's
// deliveries in order, each once, and the count is every socket's.
func TestDeliverLocalSplit(t *testing.T) {
	defer func(c, p int) { deliverChunk = c; runtime.GOMAXPROCS(p) }(deliverChunk, runtime.GOMAXPROCS(4))
	deliverChunk = 2
	const clients, rounds = 12, 30
	got := make(chan *Socket, clients)
	_, ts := newTestServerWith(t, nil, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) { got <- s })
	})
	cs := make([]*testkit.WS, clients)
	ids := make([]string, clients)
	var n *Namespace
	for i := range cs {
		cs[i] = dialRaw(t, ts, "")
		cs[i].Send("40")
		cs[i].ExpectPrefix("40{")
		s := <-got
		ids[i], n = s.ID(), s.Namespace()
	}
	for r := range rounds {
		msgs, err := EncodeBroadcast(eventPacket("/", parser.NoID, "r", []any{r}))
		if err != nil {
			t.Fatal(err)
		}
		if sent := n.DeliverLocal(ids, Delivery{Messages: msgs}); sent != clients {
			t.Fatalf("round %d: sent to %d, want %d", r, sent, clients)
		}
	}
	for i, c := range cs {
		for r := range rounds {
			if f := c.Next(2 * time.Second); f.Data != `42["r",`+itoa(int64(r))+`]` {
				t.Fatalf("client %d, round %d: got %q", i, r, f.Data)
			}
		}
	}
}
