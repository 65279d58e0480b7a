//go:build live

package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

const testTimeout = 10 * time.Second

// node is one engine with its registry and forwarder, on a loopback port
// it advertises: an echo server (every message comes back).
type node struct {
	t    testing.TB
	url  string // http://127.0.0.1:port/engine.io/
	addr string
	eng  *engineio.Server
	reg  *Registry
	fwd  *Forwarder
	hs   *httptest.Server
	rdb  *redis.Client
	sess sync.Map // sid -> *engineio.Session, the sessions this node holds
}

// session is the session sid held by n.
func (n *node) session(t *testing.T, sid string) *engineio.Session {
	t.Helper()
	v, ok := n.sess.Load(sid)
	if !ok {
		t.Fatalf("node %s holds no session %s", n.addr, sid)
	}
	return v.(*engineio.Session)
}

type echo struct{ s *engineio.Session }

func (e echo) OnMessage(data []byte, binary bool) {
	if binary {
		_ = e.s.Send(engineio.BinaryMessage(data))
		return
	}
	_ = e.s.Send(engineio.TextMessage(data))
}
func (echo) OnClose(string) {}

type nodeOpts struct {
	fwd     ForwarderOptions
	engine  engineio.Options
	noAdver bool
}

// startRedis is testkit.StartRedis, skipped under -short (the fast loop
// starts no server).
func startRedis(t *testing.T) *testkit.Redis {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real redis-server: skipped under -short")
	}
	return testkit.StartRedis(t)
}

func startNode(t testing.TB, rs *testkit.Redis, o nodeOpts) *node {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	n := &node{t: t, hs: hs, addr: hs.Listener.Addr().String()}
	n.url = "http://" + n.addr + "/engine.io/"
	n.rdb = redis.NewClient(&redis.Options{Addr: rs.Addr(), DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
	adv := n.addr
	if o.noAdver {
		adv = ""
	}
	reg, err := NewRegistry(RegistryOptions{Client: n.rdb, Advertise: adv, LookupTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.reg = reg
	o.fwd.Registry = reg
	n.fwd = NewForwarder(o.fwd)
	eo := o.engine
	if eo.PingInterval == 0 {
		eo.PingInterval = time.Minute
	}
	eo.Forwarder = n.fwd
	eo.OnSession = func(s *engineio.Session) {
		n.sess.Store(s.ID(), s)
		s.SetHandler(echo{s})
	}
	n.eng = engineio.NewServer(eo)
	hs.Config.Handler = n.eng
	hs.Start()
	t.Cleanup(n.close)
	return n
}

var closeOnce sync.Map

func (n *node) close() {
	if _, done := closeOnce.LoadOrStore(n, true); done {
		return
	}
	n.eng.Close()
	n.fwd.Close()
	n.reg.Close()
	n.hs.Close()
	_ = n.rdb.Close()
}

// request sends one request to base with sid and returns status, headers
// and body.
func request(t *testing.T, method, base, sid, body string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	q := url.Values{"EIO": {"4"}, "transport": {"polling"}, "sid": {sid}}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+"?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

const unknownSid = `{"code":1,"message":"Session ID unknown"}`

func TestNodeIDStable(t *testing.T) {
	a, b := NodeIDFor("10.0.0.1:8080"), NodeIDFor("10.0.0.2:8080")
	if len(a) != NodeIDLength || a == b || a != NodeIDFor("10.0.0.1:8080") {
		t.Fatalf("node ids %q %q", a, b)
	}
	for _, bad := range []string{"", "host", ":8080", "host:0", "host:99999", "host:x", "http://host:80"} {
		if CheckAdvertise(bad) == nil {
			t.Errorf("advertise %q accepted", bad)
		}
	}
	if err := CheckAdvertise("[::1]:9000"); err != nil {
		t.Error(err)
	}
}

// TestPollingAcrossNodes: a session opened on A is served through B, each
// request alternating as a round-robin balancer sends them.
func TestPollingAcrossNodes(t *testing.T) {
	rs := startRedis(t)
	g := testkit.TrackGoroutines("cluster", "engineio")
	a := startNode(t, rs, nodeOpts{engine: engineio.Options{AllowedOrigins: []string{"*"}}})
	b := startNode(t, rs, nodeOpts{engine: engineio.Options{AllowedOrigins: []string{"*"}}})

	p := testkit.OpenPolling(t, a.url, nil, nil)
	if !strings.HasPrefix(p.SID, a.reg.NodeID()) {
		t.Fatalf("sid %q does not start with A's node id %q", p.SID, a.reg.NodeID())
	}
	bURL := strings.Replace(p.URL, a.addr, b.addr, 1)
	for i := range 5 {
		msg := "4hello-" + strconv.Itoa(i)
		postTo, getFrom := bURL, p.URL
		if i%2 == 1 {
			postTo, getFrom = p.URL, bURL
		}
		if status, body := p.Do(http.MethodPost, postTo, msg); status != 200 || body != "ok" {
			t.Fatalf("POST %d: %d %q", i, status, body)
		}
		if status, body := p.Do(http.MethodGet, getFrom, ""); status != 200 || body != msg {
			t.Fatalf("GET %d: %d %q", i, status, body)
		}
	}
	// One CORS value, the owner's, on a forwarded response.
	_, h, _ := request(t, http.MethodPost, b.url, p.SID, "4x", http.Header{"Origin": {"https://app.example"}})
	if v := h.Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "*" {
		t.Fatalf("Access-Control-Allow-Origin %q", v)
	}
	if st := b.fwd.Stats(); st.Forwarded < 6 || st.Failed != 0 {
		t.Fatalf("B's stats %+v", st)
	}
	if st := a.fwd.Stats(); st.Forwarded != 0 {
		t.Fatalf("A forwarded: %+v", st)
	}
	a.close()
	b.close()
	g.Check(t, testTimeout)
}

// TestUpgradeAcrossNodes: polling on A, the websocket upgrade arrives at
// B and is relayed to A; the upgraded session behaves as a local one, and
// the relayed websocket ends when B's engine closes.
func TestUpgradeAcrossNodes(t *testing.T) {
	rs := startRedis(t)
	a := startNode(t, rs, nodeOpts{})
	b := startNode(t, rs, nodeOpts{})
	p := testkit.OpenPolling(t, a.url, nil, nil)

	ws := testkit.DialWSURL(t, testkit.WSURL(b.url, url.Values{"sid": {p.SID}}), nil)
	ws.Send("2probe")
	ws.Expect("3probe")
	ws.Send("5")
	ws.Send("4over-ws")
	ws.Expect("4over-ws")
	ws.SendBinary([]byte{1, 2, 3})
	if f := ws.Next(testTimeout); !f.Binary || f.Data != "\x01\x02\x03" {
		t.Fatalf("binary echo %+v", f)
	}
	// Polling is over for this session, on either node.
	if status, _ := p.Get(); status != 400 {
		t.Fatalf("polling GET at A after upgrade: %d", status)
	}
	if status, _, _ := request(t, http.MethodGet, b.url, p.SID, "", nil); status != 400 {
		t.Fatalf("polling GET at B after upgrade: %d", status)
	}
	// A second websocket for the session, through B, is closed by A.
	ws2 := testkit.DialWSURL(t, testkit.WSURL(b.url, url.Values{"sid": {p.SID}}), nil)
	ws2.ExpectClosed(testTimeout)
	ws.Send("4still")
	ws.Expect("4still")

	// The relayed websocket belongs to a request of B's engine: closing B
	// ends it.
	b.eng.Close()
	ws.ExpectClosed(testTimeout)

	// The owner ends a relayed session (here by closing): the client's
	// connection to the relaying node is closed too, even if the client
	// would keep its half open, and the relaying node holds nothing.
	c := startNode(t, rs, nodeOpts{})
	p2 := testkit.OpenPolling(t, a.url, nil, nil)
	ws3 := testkit.DialWSURL(t, testkit.WSURL(c.url, url.Values{"sid": {p2.SID}}), nil)
	ws3.Send("2probe")
	ws3.Expect("3probe")
	ws3.Send("5")
	ws3.Send("4on-c")
	ws3.Expect("4on-c")
	if n := len(c.fwd.slots); n != 1 {
		t.Fatalf("C forwards %d requests, want 1", n)
	}
	a.eng.Close()
	ws3.ExpectPrefix("1") // the close packet from A, relayed
	ws3.ExpectClosed(testTimeout)
	waitFor(t, "C to release the relayed websocket", func() bool { return len(c.fwd.slots) == 0 })
}

// TestReleaseForwardedPolls: a GET that B forwards and A holds is answered
// with a noop when B's HTTP server shuts down (ReleasePolls: a reload) or
// B's engine closes, as B's own waiting GETs are; the session on A goes
// on and loses nothing.
func TestReleaseForwardedPolls(t *testing.T) {
	rs := startRedis(t)
	a := startNode(t, rs, nodeOpts{})
	b := startNode(t, rs, nodeOpts{})
	p := testkit.OpenPolling(t, a.url, nil, nil)
	bURL := strings.Replace(p.URL, a.addr, b.addr, 1)
	for _, release := range []struct {
		name string
		do   func()
	}{
		{"ReleasePolls", b.eng.ReleasePolls},
		{"Close", b.eng.Close},
	} {
		held := make(chan [2]string, 1)
		go func() {
			status, body, err := p.Try(http.MethodGet, bURL, "")
			if err != nil {
				body = err.Error()
			}
			held <- [2]string{strconv.Itoa(status), body}
		}()
		waitFor(t, "the GET to be forwarded", func() bool { return len(b.fwd.slots) == 1 })
		release.do()
		select {
		case res := <-held:
			if res != [2]string{"200", "6"} {
				t.Fatalf("%s: held GET got %v, want 200 \"6\"", release.name, res)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s: held GET not released", release.name)
		}
		// The owner ends its side of the forwarded GET once it sees the
		// relay's connection go; a packet sent before that would go to
		// the dying GET and be lost (docs/cluster.md), so wait for it.
		sa := a.session(t, p.SID)
		waitFor(t, "the owner to see the forwarded GET end", func() bool { return !sa.Writable() })
		p.MustPost("4after-" + release.name)
		if _, body := p.Get(); body != "4after-"+release.name {
			t.Fatalf("%s: session on A after the release: %q", release.name, body)
		}
	}
}

// TestHostileRequests: what a client can try against B with the sids it
// sends.
func TestHostileRequests(t *testing.T) {
	rs := startRedis(t)
	a := startNode(t, rs, nodeOpts{})
	b := startNode(t, rs, nodeOpts{})
	ctl := rs.Client()
	ctx := context.Background()
	p := testkit.OpenPolling(t, a.url, nil, nil)

	t.Run("spoofed mark is not forwarded", func(t *testing.T) {
		status, _, body := request(t, http.MethodGet, b.url, p.SID, "", http.Header{Header: {"1"}})
		if status != 400 || body != unknownSid {
			t.Fatalf("%d %q", status, body)
		}
		p.MustPost("4alive") // the session on A is untouched
		if _, body := p.Get(); body != "4alive" {
			t.Fatalf("A's session: %q", body)
		}
	})

	t.Run("oversized POST is refused by the owner, session kept", func(t *testing.T) {
		big := "4" + strings.Repeat("x", 2*engineio.DefaultMaxPayload)
		if status, _, _ := request(t, http.MethodPost, b.url, p.SID, big, nil); status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d, want 413", status)
		}
		p.MustPost("4small")
		if _, body := p.Get(); body != "4small" {
			t.Fatalf("after the refusal: %q", body)
		}
	})

	t.Run("unknown node id gets 400 fast", func(t *testing.T) {
		start := time.Now()
		status, _, body := request(t, http.MethodGet, b.url, "zzzz"+p.SID[4:], "", nil)
		if status != 400 || body != unknownSid || time.Since(start) > time.Second {
			t.Fatalf("%d %q after %v", status, body, time.Since(start))
		}
	})

	t.Run("malformed sids are not looked up", func(t *testing.T) {
		before := getCalls(t, ctl)
		for _, sid := range []string{p.SID + "x", p.SID[:19], p.SID[:19] + "+", "../../" + p.SID[6:]} {
			if status, _, body := request(t, http.MethodGet, b.url, sid, "", nil); status != 400 || body != unknownSid {
				t.Fatalf("sid %q: %d %q", sid, status, body)
			}
		}
		if n := getCalls(t, ctl) - before; n != 0 {
			t.Fatalf("%d Redis lookups for malformed sids", n)
		}
	})

	t.Run("dead owner gets 400 fast", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		id := NodeIDFor(dead)
		if err := ctl.Set(ctx, "socket.io-node#"+id, dead, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			start := time.Now()
			status, _, body := request(t, http.MethodPost, b.url, id+p.SID[4:], "4x", nil)
			if status != 400 || body != unknownSid || time.Since(start) > DefaultDialTimeout {
				t.Fatalf("try %d: %d %q after %v", i, status, body, time.Since(start))
			}
		}
		if st := b.fwd.Stats(); st.Failed != 1 {
			t.Fatalf("failed forwards %d, want 1 (then the node is taken as down)", st.Failed)
		}
	})

	t.Run("a stale entry cannot loop", func(t *testing.T) {
		// Node id "stal" claims B's address: A forwards to B once, B answers
		// it (marked) without forwarding again.
		if err := ctl.Set(ctx, "socket.io-node#stal", b.addr, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		aBefore, bBefore := a.fwd.Stats().Forwarded, b.fwd.Stats().Forwarded
		status, _, body := request(t, http.MethodGet, a.url, "stal"+p.SID[4:], "", nil)
		if status != 400 || body != unknownSid {
			t.Fatalf("%d %q", status, body)
		}
		if a.fwd.Stats().Forwarded != aBefore+1 || b.fwd.Stats().Forwarded != bBefore {
			t.Fatalf("hops: A %d B %d", a.fwd.Stats().Forwarded-aBefore, b.fwd.Stats().Forwarded-bBefore)
		}
		// An entry with B's own address is never used by B.
		status, _, _ = request(t, http.MethodGet, b.url, "stal"+p.SID[4:], "", nil)
		if status != 400 || b.fwd.Stats().Forwarded != bBefore {
			t.Fatalf("B forwarded to itself: %d", status)
		}
	})

	t.Run("garbage in Redis is not an address", func(t *testing.T) {
		for i, v := range []string{"http://evil.example/", "evil", "", "127.0.0.1:0"} {
			id := "gb" + strconv.Itoa(10+i)
			if err := ctl.Set(ctx, "socket.io-node#"+id, v, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if status, _, body := request(t, http.MethodGet, b.url, id+p.SID[4:], "", nil); status != 400 || body != unknownSid {
				t.Fatalf("entry %q: %d %q", v, status, body)
			}
		}
	})

	t.Run("origin checked before forwarding", func(t *testing.T) {
		before := b.fwd.Stats().Forwarded
		status, _, _ := request(t, http.MethodGet, b.url, p.SID, "", http.Header{"Origin": {"https://evil.example"}})
		if status != 403 || b.fwd.Stats().Forwarded != before {
			t.Fatalf("cross-origin request: %d, forwarded %d", status, b.fwd.Stats().Forwarded-before)
		}
	})

	t.Run("random node ids are looked up within a rate", func(t *testing.T) {
		before := getCalls(t, ctl)
		start := time.Now()
		const tries = 200
		for i := range tries {
			sid := strconv.Itoa(1000+i) + p.SID[4:]
			if status, _, _ := request(t, http.MethodGet, b.url, sid, "", nil); status != 400 {
				t.Fatalf("sid %q: %d", sid, status)
			}
		}
		elapsed := time.Since(start)
		n := getCalls(t, ctl) - before
		limit := int64(lookupBurst + lookupRate*elapsed.Seconds() + 2)
		t.Logf("%d requests with random node ids in %v: %d Redis lookups (bound %d)", tries, elapsed.Round(time.Millisecond), n, limit)
		if n > limit {
			t.Fatalf("%d lookups, want at most %d", n, limit)
		}
	})
}

// TestMaxForwards: past the bound a forwarded request gets 503, and the
// slot comes back when a request ends.
func TestMaxForwards(t *testing.T) {
	rs := startRedis(t)
	a := startNode(t, rs, nodeOpts{})
	b := startNode(t, rs, nodeOpts{fwd: ForwarderOptions{MaxForwards: 1}})
	p := testkit.OpenPolling(t, a.url, nil, nil)
	bURL := strings.Replace(p.URL, a.addr, b.addr, 1)
	held := make(chan string, 1)
	go func() {
		_, body, err := p.Try(http.MethodGet, bURL, "") // held on A until a packet comes
		if err != nil {
			body = err.Error()
		}
		held <- body
	}()
	deadline := time.Now().Add(testTimeout)
	for len(b.fwd.slots) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("GET never forwarded")
		}
		time.Sleep(5 * time.Millisecond) // the GET runs on another goroutine; its slot is the signal
	}
	if status, _, _ := request(t, http.MethodPost, b.url, p.SID, "4x", nil); status != 503 {
		t.Fatalf("second forwarded request: %d", status)
	}
	p.MustPost("4freed") // straight to A: the held GET returns
	select {
	case body := <-held:
		if body != "4freed" {
			t.Fatalf("held GET: %q", body)
		}
	case <-time.After(testTimeout):
		t.Fatal("held GET did not return")
	}
	waitFor(t, "the slot to be freed", func() bool { return len(b.fwd.slots) == 0 })
	if status, _, _ := request(t, http.MethodPost, b.url, p.SID, "4y", nil); status != 200 {
		t.Fatalf("after the slot freed: %d", status)
	}
	if st := b.fwd.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRegistryLifecycle: a node registers with its first session (not
// before: `caddy validate` writes nothing), Close removes its entry; a
// node that cannot reach Redis at start registers once Redis is back;
// lookups while Redis is down fail within the lookup timeout.
func TestRegistryLifecycle(t *testing.T) {
	rs := startRedis(t)
	ctl := rs.Client()
	a := startNode(t, rs, nodeOpts{})
	key := "socket.io-node#" + a.reg.NodeID()
	if n := ctl.Exists(context.Background(), key).Val(); n != 0 {
		t.Fatal("registered before its first session")
	}
	testkit.OpenPolling(t, a.url, nil, nil) // registers before the handshake's answer
	if v := ctl.Get(context.Background(), key).Val(); v != a.addr {
		t.Fatalf("entry %q after the first session, want %q", v, a.addr)
	}
	if ttl := ctl.TTL(context.Background(), key).Val(); ttl <= 0 || ttl > DefaultTTL {
		t.Fatalf("entry TTL %v", ttl)
	}
	a.close()
	if n := ctl.Exists(context.Background(), key).Val(); n != 0 {
		t.Fatal("entry left after Close")
	}

	rs.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	reg, err := NewRegistry(RegistryOptions{Client: rdb, Advertise: "127.0.0.1:1", TTL: 600 * time.Millisecond, LookupTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	start := time.Now()
	reg.Start()
	if time.Since(start) > time.Second {
		t.Fatalf("Start with Redis down took %v", time.Since(start))
	}
	start = time.Now()
	if _, ok := reg.Lookup(context.Background(), "abcd"); ok || time.Since(start) > time.Second {
		t.Fatalf("lookup with Redis down: ok=%v after %v", ok, time.Since(start))
	}
	rs.Start()
	waitFor(t, "the node to register once Redis is back", func() bool {
		return ctl.Get(context.Background(), "socket.io-node#"+reg.NodeID()).Val() == "127.0.0.1:1"
	})
}

// TestNoAdvertise: a node without an address forwards but makes plain
// session ids.
func TestNoAdvertise(t *testing.T) {
	rs := startRedis(t)
	a := startNode(t, rs, nodeOpts{})
	c := startNode(t, rs, nodeOpts{noAdver: true})
	if c.reg.NodeID() != "" {
		t.Fatalf("node id %q without an address", c.reg.NodeID())
	}
	p := testkit.OpenPolling(t, a.url, nil, nil)
	if status, _, body := request(t, http.MethodPost, c.url, p.SID, "4via-c", nil); status != 200 || body != "ok" {
		t.Fatalf("POST through C: %d %q", status, body)
	}
	if _, body := p.Get(); body != "4via-c" {
		t.Fatalf("GET at A: %q", body)
	}
}

func getCalls(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polled state of another goroutine or process
	}
}
