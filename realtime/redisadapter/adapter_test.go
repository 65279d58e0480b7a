package redisadapter

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// node is one realtime.Server in a cluster over a test's Redis.
type node struct {
	srv     *realtime.Server
	ts      *httptest.Server
	cluster *Cluster
	drops   *counter
}

type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// newNode starts a server whose sockets join the rooms named by their
// CONNECT auth's "rooms" and answer "ask" acks with their id.
func newNode(t *testing.T, r *testkit.Redis) *node {
	t.Helper()
	return newNodeWith(t, r, nil)
}

// newNodeWith is newNode with recovery options made from the node's
// cluster (nil: recovery off).
func newNodeWith(t *testing.T, r *testkit.Redis, recovery func(*Cluster) *realtime.RecoveryOptions) *node {
	t.Helper()
	n := &node{drops: &counter{}}
	cl, err := New(Options{
		Client:         redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: 1, DialTimeout: time.Second}),
		RequestTimeout: 2 * time.Second,
		Observer:       Observer{OnDrop: n.drops.add},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.cluster = cl
	opts := realtime.Options{
		Engine:     engineio.Options{PingInterval: time.Second, PingTimeout: 2 * time.Second, AllowedOrigins: []string{"*"}},
		NewAdapter: cl.NewAdapter,
	}
	if recovery != nil {
		opts.Recovery = recovery(cl)
	}
	n.srv = realtime.NewServer(opts)
	n.srv.Of("/").Use(func(s *realtime.Socket) error {
		if rooms, ok := s.Handshake().Auth["rooms"].([]any); ok {
			for _, r := range rooms {
				if r, ok := r.(string); ok {
					_ = s.Join(r)
				}
			}
		}
		return nil
	})
	n.ts = httptest.NewServer(n.srv)
	t.Cleanup(func() {
		n.srv.Close()
		n.ts.Close()
		if err := cl.Close(); err != nil {
			t.Errorf("closing the cluster: %v", err)
		}
	})
	return n
}

func (n *node) dial(t *testing.T, auth string) (*testkit.WS, string) {
	t.Helper()
	c := testkit.DialWSURL(t, "ws"+strings.TrimPrefix(n.ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	c.Wait = 3 * time.Second
	if open := c.Next(3 * time.Second); !strings.HasPrefix(open.Data, "0{") {
		t.Fatalf("first frame %q", open.Data)
	}
	return c, c.ConnectSocket(auth)
}

// waitMembers waits until n nodes subscribe the request channel of "/".
func waitMembers(t *testing.T, rc *redis.Client, channel string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := rc.PubSubNumSub(context.Background(), channel).Result()
		if err == nil && res[channel] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NUMSUB %s = %v (%v), want %d", channel, res, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitUp(t *testing.T, nodes ...*node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for !n.cluster.Up() {
			if time.Now().After(deadline) {
				t.Fatal("cluster not up within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func twoNodes(t *testing.T) (*testkit.Redis, *node, *node) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	r := testkit.StartRedis(t)
	a, b := newNode(t, r), newNode(t, r)
	waitUp(t, a, b)
	waitMembers(t, r.Client(), "socket.io-request#/#", 2)
	return r, a, b
}

func TestCluster(t *testing.T) {
	leaks := testkit.TrackGoroutines("redisadapter", "go-redis")
	t.Cleanup(func() { leaks.Check(t, 5*time.Second) })
	r, a, b := twoNodes(t)
	ca, ida := a.dial(t, `{"rooms":["r"]}`)
	cb, idb := b.dial(t, `{"rooms":["r","only-b"]}`)
	nsA, _ := a.srv.Namespace("/")
	nsB, _ := b.srv.Namespace("/")
	ctx := context.Background()

	t.Run("room broadcast with binary reaches both nodes once", func(t *testing.T) {
		if err := nsA.To("r").Emit("hi", 1, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*testkit.WS{ca, cb} {
			c.Expect(`451-["hi",1,{"_placeholder":true,"num":0}]`)
			if f := c.Next(3 * time.Second); !f.Binary || f.Data != "\x01\x02\x03" {
				t.Fatalf("attachment %q", f.Data)
			}
		}
		ca.Quiet(200 * time.Millisecond)
		cb.Quiet(10 * time.Millisecond)
	})

	t.Run("except and socket id rooms", func(t *testing.T) {
		if err := nsA.Except(ida).Emit("not-a"); err != nil {
			t.Fatal(err)
		}
		cb.Expect(`42["not-a"]`)
		if err := nsA.To(idb).Emit("to-b"); err != nil {
			t.Fatal(err)
		}
		cb.Expect(`42["to-b"]`)
		if err := nsB.To("only-b").Except(idb).Emit("nobody"); err != nil {
			t.Fatal(err)
		}
		ca.Quiet(200 * time.Millisecond)
		cb.Quiet(10 * time.Millisecond)
	})

	t.Run("fetch sockets and all rooms span nodes", func(t *testing.T) {
		start := time.Now()
		infos, err := nsA.In("r").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 2 || time.Since(start) > time.Second {
			t.Fatalf("%d sockets in %v: %+v", len(infos), time.Since(start), infos)
		}
		var remote *realtime.SocketInfo
		for i := range infos {
			if infos[i].ID == idb {
				remote = &infos[i]
			}
		}
		if remote == nil || !remote.Remote || !slices.Contains(remote.Rooms, "only-b") || remote.Handshake == nil {
			t.Fatalf("remote socket %+v", remote)
		}
		rooms, err := nsA.AllRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"r", "only-b", ida, idb} {
			if !slices.Contains(rooms, want) {
				t.Fatalf("all rooms %v lack %q", rooms, want)
			}
		}
	})

	t.Run("remote join, leave and disconnect act once", func(t *testing.T) {
		if err := nsA.In(idb).SocketsJoin(ctx, "joined"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return nsB.Adapter().(*Adapter).HasRoom("joined") })
		if err := nsA.In("joined").SocketsLeave(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		sb, _ := nsB.Socket(idb)
		waitFor(t, func() bool { return !slices.Contains(sb.Rooms(), "r") })
		if err := nsB.In("r").SocketsJoin(ctx, "from-b"); err != nil { // ca only
			t.Fatal(err)
		}
		sa, _ := nsA.Socket(ida)
		waitFor(t, func() bool { return slices.Contains(sa.Rooms(), "from-b") })
		if err := nsA.To("only-b").DisconnectSockets(ctx, false); err != nil {
			t.Fatal(err)
		}
		cb.Expect("41")
		cb.Quiet(300 * time.Millisecond)
	})

	t.Run("broadcast with acks collects every node's", func(t *testing.T) {
		cb2, idb2 := b.dial(t, `{"rooms":["r"]}`)
		defer cb2.Close()
		done := make(chan [][]any, 1)
		go func() {
			replies, err := nsA.Timeout(2*time.Second).EmitWithAck(ctx, "ask")
			if err != nil {
				t.Errorf("EmitWithAck: %v", err)
			}
			done <- replies
		}()
		for _, c := range []*testkit.WS{ca, cb2} {
			got := c.ExpectPrefix("42")
			id := strings.TrimSuffix(strings.TrimPrefix(got, "42"), `["ask"]`)
			c.Send("43" + id + `["ok"]`)
		}
		start := time.Now()
		select {
		case replies := <-done:
			if len(replies) != 2 {
				t.Fatalf("replies %v", replies)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no result")
		}
		if time.Since(start) > time.Second {
			t.Fatalf("took %v: did not complete on the counts", time.Since(start))
		}
		_ = idb2
	})

	t.Run("server side emit with ack", func(t *testing.T) {
		nsB.OnServerSideEmit(func(args []any, ack func(any)) {
			if ack != nil && len(args) > 0 && args[0] == "ping" {
				ack("pong-b")
			}
		})
		replies, err := nsA.ServerSideEmitWithAck(ctx, "ping", 1)
		if err != nil || len(replies) != 1 || replies[0] != "pong-b" {
			t.Fatalf("replies %v, %v", replies, err)
		}
		// A node without a handler never answers, as a Node peer.
		_, err = nsB.ServerSideEmitWithAck(ctx, "ping")
		if !errors.Is(err, realtime.ErrAckTimeout) {
			t.Fatalf("to a node without a handler: %v, want a timeout", err)
		}
	})

	t.Run("hostile messages are ignored", func(t *testing.T) {
		rc := r.Client()
		before := a.drops.get("malformed")
		bad := map[string]string{
			"socket.io#/#":         `{"not":"msgpack"}`,
			"socket.io#/#r#":       "\x93\xa6abcdef\x83", // truncated
			"socket.io#/#\x00#":    "",                   // no such room: not even decoded
			"socket.io-request#/#": `{"type":5,"requestId":"x1"}`,
		}
		for ch, payload := range bad {
			if err := rc.Publish(ctx, ch, payload).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for _, payload := range []string{"", "\xc1", `{"type":2,"opts":{"rooms":5}}`, "\x81\xa4type\x07",
			`{"type":99,"requestId":"x"}`, `{"type":4}`, `[1,2]`, `{"type":6}`} {
			if err := rc.Publish(ctx, "socket.io-request#/#", payload).Err(); err != nil {
				t.Fatal(err)
			}
		}
		_ = rc.Publish(ctx, "socket.io-response#/#", `{"requestId":5}`).Err()
		waitFor(t, func() bool { return a.drops.get("malformed") >= before+9 })
		if err := nsB.To("r").Emit("still-works"); err != nil {
			t.Fatal(err)
		}
		ca.Expect(`42["still-works"]`)
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisOutage: with Redis gone, local broadcasts go on and cluster
// requests fail fast with ErrClusterUnavailable; once it is back, the
// nodes resubscribe by themselves and cross-node delivery resumes.
func TestRedisOutage(t *testing.T) {
	leaks := testkit.TrackGoroutines("redisadapter", "go-redis")
	t.Cleanup(func() { leaks.Check(t, 5*time.Second) })
	r, a, b := twoNodes(t)
	ca, _ := a.dial(t, "")
	cb, _ := b.dial(t, "")
	nsA, _ := a.srv.Namespace("/")

	r.Stop()
	waitFor(t, func() bool { return !a.cluster.Up() })
	err := nsA.Emit("local")
	if !errors.Is(err, realtime.ErrClusterUnavailable) {
		t.Fatalf("emit during the outage: %v, want ErrClusterUnavailable", err)
	}
	ca.Expect(`42["local"]`)
	start := time.Now()
	if _, err := nsA.To().FetchSockets(context.Background()); !errors.Is(err, realtime.ErrClusterUnavailable) {
		t.Fatalf("fetch during the outage: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("fetch took %v to fail", d)
	}
	time.Sleep(3 * time.Second)
	r.Start()
	restarted := time.Now()
	waitUp(t, a, b)
	waitMembers(t, r.Client(), "socket.io-request#/#", 2)
	if err := nsA.Emit("back"); err != nil {
		t.Fatal(err)
	}
	ca.Expect(`42["back"]`)
	cb.Expect(`42["back"]`)
	if d := time.Since(restarted); d > 10*time.Second {
		t.Fatalf("cross-node delivery resumed after %v", d)
	}
}
