package redisadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// recNode is a server with recovery on, its store in the cluster.
func recNode(t *testing.T, r *testkit.Redis, buffer int64) *node {
	t.Helper()
	return newNodeWith(t, r, func(cl *Cluster) *realtime.RecoveryOptions {
		return &realtime.RecoveryOptions{MaxDisconnectionDuration: 5 * time.Second, BufferBytes: buffer, NewStore: cl.RecoveryStore}
	})
}

func twoRecNodes(t *testing.T, buffer int64) (*testkit.Redis, *node, *node) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	r := testkit.StartRedis(t)
	a, b := recNode(t, r, buffer), recNode(t, r, buffer)
	waitUp(t, a, b)
	waitMembers(t, r.Client(), "socket.io-request#/#", 2)
	return r, a, b
}

// recClient is a raw client that keeps its pid and last offset.
type recClient struct {
	ws          *testkit.WS
	sid, pid    string
	offset      string
	got         []string // event frames, offset stripped
	transcript  []string // raw frames
	replayCount int
}

// connect sends CONNECT with auth and reads up to the CONNECT reply,
// keeping the events before it (a replay).
func (c *recClient) connect(t *testing.T, n *node, auth map[string]any) {
	t.Helper()
	c.ws = testkit.DialWSURL(t, "ws"+strings.TrimPrefix(n.ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	c.ws.Wait = 5 * time.Second
	if open := c.ws.Next(5 * time.Second); !strings.HasPrefix(open.Data, "0{") {
		t.Fatalf("first frame %q", open.Data)
	}
	raw := []byte{}
	if auth != nil {
		raw, _ = json.Marshal(auth)
	}
	c.ws.Send("40" + string(raw))
	c.replayCount = 0
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("no CONNECT reply")
		}
		f := c.ws.Next(5 * time.Second).Data
		if strings.HasPrefix(f, "40") {
			var v struct{ Sid, Pid string }
			if err := json.Unmarshal([]byte(f[2:]), &v); err != nil {
				t.Fatalf("CONNECT reply %q: %v", f, err)
			}
			c.sid, c.pid = v.Sid, v.Pid
			return
		}
		c.take(t, f)
		c.replayCount++
	}
}

// take records an event frame.
func (c *recClient) take(t *testing.T, f string) {
	t.Helper()
	if !strings.HasPrefix(f, "42") {
		t.Fatalf("frame %q, want an event", f)
	}
	var args []any
	if err := json.Unmarshal([]byte(f[2:]), &args); err != nil {
		t.Fatalf("event %q: %v", f, err)
	}
	c.transcript = append(c.transcript, f)
	if off, ok := args[len(args)-1].(string); ok {
		if _, ok := ParseOffset(off); ok {
			c.offset = off
			args = args[:len(args)-1]
		}
	}
	b, _ := json.Marshal(args)
	c.got = append(c.got, string(b))
}

// next reads one event.
func (c *recClient) next(t *testing.T) string {
	t.Helper()
	c.take(t, c.ws.Next(5*time.Second).Data)
	return c.got[len(c.got)-1]
}

func (c *recClient) resume() map[string]any {
	return map[string]any{"pid": c.pid, "offset": c.offset}
}

// caughtUp waits until n's subscription has delivered the last event of
// nsp's stream.
func caughtUp(t *testing.T, r *testkit.Redis, n *node, nsp string) {
	t.Helper()
	rec := n.cluster.recording()
	last, err := r.Client().XRevRangeN(context.Background(), rec.streamKey(nsp), "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("last entry of the stream: %v %v", last, err)
	}
	id, _ := parseStreamID(last[0].ID)
	waitFor(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		d, ok := rec.delivered[nsp]
		return ok && !d.less(id)
	})
}

// waitSession waits until the session of pid is in Redis.
func waitSession(t *testing.T, r *testkit.Redis, pid string) {
	t.Helper()
	waitFor(t, func() bool {
		n, _ := r.Client().Exists(context.Background(), "socket.io-recovery#/#session#"+pid).Result()
		return n == 1
	})
}

// storeCalls counts the commands the store uses, from Redis's own stats.
func storeCalls(t *testing.T, r *testkit.Redis) int {
	t.Helper()
	info, err := r.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"evalsha", "eval", "xrange"} { // not SET: each new socket that closes saves its session
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				var calls int
				fmt.Sscanf(rest, "%d", &calls)
				n += calls
			}
		}
	}
	return n
}

// TestRecoveryAcrossNodes: a client drops on node A and comes back on
// node B: same id, still in its rooms, every event broadcast meanwhile
// from either node (and its own private emits) exactly once and in order;
// volatile ones and those to rooms it is not in are not replayed; the
// session cannot be taken twice; a bogus pid or offset gets a new session.
func TestRecoveryAcrossNodes(t *testing.T) {
	leaks := testkit.TrackGoroutines("redisadapter", "go-redis")
	t.Cleanup(func() { leaks.Check(t, 5*time.Second) })
	r, a, b := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	nsB, _ := b.srv.Namespace("/")

	c := &recClient{}
	c.connect(t, a, map[string]any{"rooms": []string{"r"}})
	if len(c.pid) != 20 {
		t.Fatalf("pid %q", c.pid)
	}
	if err := nsA.Emit("hello", "a"); err != nil {
		t.Fatal(err)
	}
	if got := c.next(t); got != `["hello","a"]` {
		t.Fatalf("got %s", got)
	}
	firstOffset := c.offset
	c.ws.Close()
	waitSession(t, r, c.pid)

	// The gap: events from both nodes, some not for this socket.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nsA.To("r").Emit("m", 1))
	must(nsB.Emit("m", 2))
	must(nsB.To("other").Emit("not-mine"))
	must(nsA.Except("r").Emit("not-mine"))
	must(nsB.To(c.sid).Emit("m", 3)) // private, through the other node
	must(nsA.Volatile().Emit("volatile"))
	must(nsB.To("r", "other").Emit("m", 4))
	// B replays what its subscription has delivered and sends the rest
	// live, in order; wait for it so that the whole gap is a replay.
	caughtUp(t, r, b, "/")

	// Back on the other node.
	c.connect(t, b, map[string]any{"pid": c.pid, "offset": c.offset})
	want := []string{`["hello","a"]`, `["m",1]`, `["m",2]`, `["m",3]`, `["m",4]`}
	if strings.Join(c.got, " ") != strings.Join(want, " ") || c.replayCount != 4 {
		t.Fatalf("got %v (%d replayed), want %v", c.got, c.replayCount, want)
	}
	s, ok := nsB.Socket(c.sid)
	if !ok || !s.Recovered() || !slices.Contains(s.Rooms(), "r") {
		t.Fatalf("socket %s on B: found %v, recovered %v", c.sid, ok, ok && s.Recovered())
	}
	// Live again, from A.
	must(nsA.To("r").Emit("live", 5))
	got := c.next(t)
	if got == `["volatile"]` { // not replayed, but it may still have been on its way to B
		got = c.next(t)
	}
	if got != `["live",5]` {
		t.Fatalf("got %s", got)
	}
	c.ws.Quiet(200 * time.Millisecond)

	t.Run("a bogus pid or offset gets a new session", func(t *testing.T) {
		try := func(auth map[string]any) {
			t.Helper()
			d := &recClient{}
			d.connect(t, a, auth)
			if d.sid == c.sid || d.replayCount != 0 || len(d.pid) != 20 {
				t.Fatalf("auth %.60v: sid %s (old %s), %d replayed", auth, d.sid, c.sid, d.replayCount)
			}
			d.ws.Close()
		}
		for _, auth := range []map[string]any{
			{"pid": "nope", "offset": c.offset},
			{"pid": c.pid, "offset": "000000000000001-000000"},
		} {
			try(auth)
		}
		// Malformed ones cost no Redis call at all.
		before := storeCalls(t, r)
		for _, auth := range []map[string]any{
			{"pid": strings.Repeat("p", 1<<16), "offset": c.offset},
			{"pid": c.pid, "offset": strings.Repeat("9", 1<<16)},
			{"pid": c.pid, "offset": "999999999999999-000000"},
			{"pid": c.pid, "offset": 12},
			{"pid": c.pid, "offset": "0000000000000001-00000"},
		} {
			try(auth)
		}
		if after := storeCalls(t, r); after != before {
			t.Fatalf("malformed attempts made %d store calls", after-before)
		}
	})

	t.Run("a session is taken once", func(t *testing.T) {
		// Two nodes taking one session at once: one gets it.
		c.ws.Close()
		waitSession(t, r, c.pid)
		stores := []realtime.RecoveryStore{a.cluster.recording(), b.cluster.recording()}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for _, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok := st.Take("/", c.pid, c.offset); ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d nodes took the session, want 1", won)
		}
	})

	t.Run("an offset before the stream's start is not recovered", func(t *testing.T) {
		e := &recClient{}
		e.connect(t, a, nil)
		must(nsA.Emit("x"))
		e.next(t)
		e.ws.Close()
		waitSession(t, r, e.pid)
		r.Client().XTrimMaxLen(context.Background(), "socket.io-recovery#/#", 0)
		old := e.sid
		e.connect(t, b, e.resume())
		if e.sid == old {
			t.Fatal("recovered from an offset no longer in the stream")
		}
		e.ws.Close()
	})
	_ = firstOffset
}

// TestRecoveryOrderAcrossNodes: events sent at once from two nodes reach
// the sockets of both in one order, the stream's; a client that drops in
// the middle of them and comes back on the other node ends with the same
// list, each event once.
func TestRecoveryOrderAcrossNodes(t *testing.T) {
	_, a, b := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	nsB, _ := b.srv.Namespace("/")
	watchA, watchB, drop := &recClient{}, &recClient{}, &recClient{}
	watchA.connect(t, a, nil)
	watchB.connect(t, b, nil)
	drop.connect(t, a, nil)
	if err := nsA.Emit("start"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*recClient{watchA, watchB, drop} {
		c.next(t)
	}
	const per = 150
	var wg sync.WaitGroup
	for _, n := range []struct {
		ns   *realtime.Namespace
		name string
	}{{nsA, "a"}, {nsB, "b"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := n.ns.Emit("e", fmt.Sprintf("%s%d", n.name, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Drop after some 50 events, while both nodes are still sending.
	for range 50 {
		drop.next(t)
	}
	drop.ws.Close()
	wg.Wait()
	for range 2 * per {
		watchA.next(t)
		watchB.next(t)
	}
	if strings.Join(watchA.got, " ") != strings.Join(watchB.got, " ") {
		t.Fatalf("the nodes' sockets got different orders:\nA %v\nB %v", watchA.got, watchB.got)
	}
	// Its session is saved once node A has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		drop.connect(t, b, drop.resume())
		if drop.replayCount > 0 || time.Now().After(deadline) {
			break
		}
		drop.ws.Close()
		time.Sleep(20 * time.Millisecond)
	}
	for len(drop.got) < len(watchB.got) {
		drop.next(t)
	}
	if strings.Join(drop.got, " ") != strings.Join(watchB.got, " ") {
		t.Fatalf("the recovered client's events differ:\ngot  %v\nwant %v", drop.got, watchB.got)
	}
	drop.ws.Quiet(200 * time.Millisecond)
}

// TestRecoveryKeepsANodesOrder: with recovery on, a node's broadcasts
// that are not recorded (volatile ones) and those that are reach the
// other nodes in the order they were sent, as on one Node connection. A
// volatile event used to go out on the publisher's connection and a
// recorded one on the caller's, so a recorded event sent after a volatile
// one could arrive first.
func TestRecoveryKeepsANodesOrder(t *testing.T) {
	_, a, b := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	watch := &recClient{}
	watch.connect(t, b, nil)
	const rounds = 40
	want := make([]string, 0, 2*rounds)
	for i := range rounds {
		if err := nsA.Volatile().Emit("v", i); err != nil {
			t.Fatal(err)
		}
		if err := nsA.Emit("r", i); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf(`["v",%d]`, i), fmt.Sprintf(`["r",%d]`, i))
	}
	// A volatile event may be dropped (the engine drops one while the
	// socket is still writing), never moved: what arrives is want less
	// some volatile events, in order.
	for len(watch.got) == 0 || watch.got[len(watch.got)-1] != want[len(want)-1] {
		if len(watch.got) > len(want) {
			t.Fatalf("more events than sent: %v", watch.got)
		}
		watch.next(t)
	}
	i := 0
	for _, w := range want {
		if i < len(watch.got) && watch.got[i] == w {
			i++
		} else if strings.HasPrefix(w, `["r"`) {
			break
		}
	}
	if i != len(watch.got) {
		t.Fatalf("order on the other node:\ngot  %v\nwant %v (volatile ones may be missing)", watch.got, want)
	}
}

// TestRecoveryAfterScriptFlush: when Redis has lost the scripts (a
// restart, SCRIPT FLUSH), a recorded event is still recorded, with its
// offset, and reaches the other node.
func TestRecoveryAfterScriptFlush(t *testing.T) {
	r, a, b := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	watch := &recClient{}
	watch.connect(t, b, nil)
	for i := range 3 {
		if err := r.Client().ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		before := watch.offset
		if err := nsA.Emit("e", i); err != nil {
			t.Fatal(err)
		}
		if got := watch.next(t); got != fmt.Sprintf(`["e",%d]`, i) || watch.offset == before {
			t.Fatalf("event %d: got %s, offset %q (before %q)", i, got, watch.offset, before)
		}
	}
}

// TestRecoveryStreamBytes: the stream is bounded in bytes; an event larger
// than the whole bound is kept as a marker only, and a client whose offset
// is before it is not recovered, one after it is.
func TestRecoveryStreamBytes(t *testing.T) {
	r, a, b := twoRecNodes(t, 4096)
	nsA, _ := a.srv.Namespace("/")
	ctx := context.Background()
	for i := range 200 {
		if err := nsA.Emit("fill", strings.Repeat("x", 100), i); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		n, _ := r.Client().Get(ctx, "socket.io-recovery#/#bytes").Int64()
		return n > 0
	})
	n, _ := r.Client().Get(ctx, "socket.io-recovery#/#bytes").Int64()
	entries, _ := r.Client().XLen(ctx, "socket.io-recovery#/#").Result()
	if n > 4096 || entries > 4096/100 || entries == 0 {
		t.Fatalf("stream counted %d bytes in %d entries, bound 4096", n, entries)
	}
	mem, err := r.Client().MemoryUsage(ctx, "socket.io-recovery#/#").Result()
	if err != nil || mem > 3*4096 {
		t.Fatalf("Redis says the stream takes %d bytes (%v)", mem, err)
	}
	t.Logf("stream: %d entries, %d bytes counted, %d bytes by MEMORY USAGE", entries, n, mem)

	before, after := &recClient{}, &recClient{}
	before.connect(t, a, nil)
	if err := nsA.Emit("small"); err != nil {
		t.Fatal(err)
	}
	before.next(t)
	before.ws.Close()
	waitSession(t, r, before.pid)
	if err := nsA.Emit("big", strings.Repeat("y", 8000)); err != nil {
		t.Fatal(err)
	}
	after.connect(t, a, nil)
	if err := nsA.Emit("small2"); err != nil {
		t.Fatal(err)
	}
	for after.next(t) != `["small2"]` { // "big" may reach it live first
	}
	after.ws.Close()
	waitSession(t, r, after.pid)
	if err := nsA.Emit("small3"); err != nil {
		t.Fatal(err)
	}
	old := before.sid
	before.connect(t, b, before.resume())
	if before.sid == old {
		t.Fatal("recovered across an event that was too large to keep")
	}
	old = after.sid
	after.connect(t, b, after.resume())
	if after.sid != old || after.replayCount != 1 {
		t.Fatalf("not recovered after the large event (sid %s, old %s, %d replayed)", after.sid, old, after.replayCount)
	}
}

// TestRecoveryRedisDown: with Redis gone, events still reach the local
// sockets (without an offset), recovery attempts get a new session at
// once, and nothing hangs.
func TestRecoveryRedisDown(t *testing.T) {
	r, a, _ := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	c := &recClient{}
	c.connect(t, a, nil)
	if err := nsA.Emit("up"); err != nil {
		t.Fatal(err)
	}
	c.next(t)
	c.ws.Close()
	waitSession(t, r, c.pid)
	r.Stop()
	waitFor(t, func() bool { return !a.cluster.Up() })
	d := &recClient{}
	d.connect(t, a, nil)
	start := time.Now()
	if err := nsA.Emit("down", 1); err == nil {
		t.Log("emit during the outage reported no error")
	}
	if f := d.ws.Next(3 * time.Second).Data; f != `42["down",1]` {
		t.Fatalf("during the outage got %q, want the event without an offset", f)
	}
	old := c.sid
	c.connect(t, a, c.resume())
	if c.sid == old || time.Since(start) > 3*time.Second {
		t.Fatalf("recovered during the outage, or slow: %v", time.Since(start))
	}
}

// TestRecoveryTakeOverAcrossNodes: a client back on node B while node A
// still holds its socket (A has not seen the transport go): B asks, A
// closes the old socket (its session saved), and B recovers it. A bogus
// pid with a good offset closes nothing.
func TestRecoveryTakeOverAcrossNodes(t *testing.T) {
	_, a, b := twoRecNodes(t, 0)
	nsA, _ := a.srv.Namespace("/")
	c := &recClient{}
	c.connect(t, a, map[string]any{"rooms": []string{"r"}})
	other := &recClient{}
	other.connect(t, a, nil)
	if err := nsA.Emit("hello"); err != nil {
		t.Fatal(err)
	}
	c.next(t)
	other.next(t)

	bogus := &recClient{}
	start := time.Now()
	bogus.connect(t, b, map[string]any{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": c.offset})
	if bogus.sid == c.sid || time.Since(start) > 2*time.Second {
		t.Fatalf("bogus pid: sid %s in %v", bogus.sid, time.Since(start))
	}
	if _, ok := nsA.Socket(other.sid); !ok {
		t.Fatal("a bogus pid closed a socket")
	}

	oldWS := c.ws // left open: only A's socket on it is closed
	if err := nsA.To("r").Emit("after"); err != nil {
		t.Fatal(err)
	}
	c.next(t)
	// Sent to the old socket, whose client does not read it any more.
	if err := nsA.To("r").Emit("unread"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.connect(t, b, c.resume()) // the old connection is still open
	if _, ok := nsA.Socket(c.sid); ok {
		t.Fatal("node A still holds the socket")
	}
	nsB, _ := b.srv.Namespace("/")
	s, ok := nsB.Socket(c.sid)
	if !ok || !s.Recovered() || !slices.Contains(s.Rooms(), "r") || c.replayCount != 1 || c.got[len(c.got)-1] != `["unread"]` {
		t.Fatalf("not recovered on B (found %v, %d replayed)", ok, c.replayCount)
	}
	oldWS.Close()
}

// FuzzRecoveryOffset feeds arbitrary offsets and stream entries to the
// store's decoders: an offset parses only in its one form and writes
// back the same; an entry read back never panics, and its messages never
// panic to build (seeds: valid offsets, near misses, entries as XRANGE
// gives them).
func FuzzRecoveryOffset(f *testing.F) {
	for _, s := range []string{"001796134951185-000000", "000000000000001-000042", "999999999999999-999999",
		"1796134951185-0", "001796134951185-00000", "001796134951185+000000", "", "zzzz"} {
		f.Add(s, []byte("\x93\xa6self00\x83\xa4type\x02\xa4data\x92\xa1e\xb6~xxxxxxxxxxxxxxxxxxxxx\xa3nsp\xa1/\x80"), 20)
	}
	r := &RecoveryStore{}
	f.Fuzz(func(t *testing.T, off string, payload []byte, pos int) {
		if id, ok := ParseOffset(off); ok {
			if got := formatOffset(id); got != off {
				t.Fatalf("offset %q writes back as %q", off, got)
			}
		}
		id, _ := parseStreamID(off)
		e, ok := readEntry([]any{id.String(), []any{"p", string(payload), "o", fmt.Sprint(pos), "r", `["a"]`, "x", off}})
		if !ok || e.gone {
			return
		}
		_, _ = r.entryMessages("/", e)
	})
}
