//go:build live

package redispresence

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// events records the hooks of every tracker of a test, in order.
type events struct {
	mu   sync.Mutex
	list []string // "online alice@A"
}

func (ev *events) add(kind, key, node string) {
	ev.mu.Lock()
	ev.list = append(ev.list, kind+" "+key+"@"+node)
	ev.mu.Unlock()
}

// count is how many kind hooks key got, on any node.
func (ev *events) count(kind, key string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, e := range ev.list {
		if strings.HasPrefix(e, kind+" "+key+"@") {
			n++
		}
	}
	return n
}

func (ev *events) String() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return strings.Join(ev.list, ", ")
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startRedis(t *testing.T) *testkit.Redis {
	t.Helper()
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	return testkit.StartRedis(t)
}

type trackerOpts struct {
	grace, ttl time.Duration
	maxBytes   int64
}

// newTracker starts a tracker named node on r, closed at the end.
func newTracker(t *testing.T, r *testkit.Redis, ev *events, node string, o trackerOpts) *Tracker {
	t.Helper()
	if o.grace == 0 {
		o.grace = 500 * time.Millisecond
	}
	tr, err := New(Options{
		Client: redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 300 * time.Millisecond, DialerRetries: 1}), // as the module's (adapter.go)
		PresenceOptions: realtime.PresenceOptions{
			Grace:     o.grace,
			MaxBytes:  o.maxBytes,
			OnOnline:  func(k string) { ev.add("online", k, node) },
			OnOffline: func(k string) { ev.add("offline", k, node) },
		},
		NodeTTL: o.ttl,
		Poll:    50 * time.Millisecond,
		Timeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// crash ends the tracker's goroutine as a killed process would: nothing
// is written, the node stays in Redis until its TTL.
func (t *Tracker) crash() {
	t.mu.Lock()
	t.crashed, t.closed = true, true
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	_ = t.rdb.Close()
}

// total is what Redis holds as key's cluster-wide count.
func total(t *testing.T, c *redis.Client, key string) int {
	t.Helper()
	n, err := c.HGet(context.Background(), "socket.io-presence#total", key).Int()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return n
}

// TestPresenceTwoNodes: one user with a socket on each of two nodes: one
// online for the cluster; one socket drops and comes back within the
// grace: nothing; both gone past the grace: exactly one offline.
func TestPresenceTwoNodes(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ev := &events{}
	a := newTracker(t, r, ev, "A", trackerOpts{})
	b := newTracker(t, r, ev, "B", trackerOpts{})

	if !a.Add("alice") || !b.Add("alice") {
		t.Fatal("Add refused")
	}
	waitFor(t, 3*time.Second, "total 2", func() bool { return total(t, c, "alice") == 2 })
	time.Sleep(200 * time.Millisecond)
	if n := ev.count("online", "alice"); n != 1 {
		t.Fatalf("onlines = %d, want 1 (%s)", n, ev)
	}

	// A's socket blips while B holds one: nothing to report.
	a.Remove("alice")
	waitFor(t, 3*time.Second, "total 1", func() bool { return total(t, c, "alice") == 1 })
	a.Add("alice")
	waitFor(t, 3*time.Second, "total 2", func() bool { return total(t, c, "alice") == 2 })
	// Both go (the total reaches 0 in Redis and the grace starts), then
	// one comes back, on the other node, within the grace.
	a.Remove("alice")
	b.Remove("alice")
	waitFor(t, 3*time.Second, "total 0", func() bool { return total(t, c, "alice") == 0 })
	if _, err := c.ZScore(context.Background(), "socket.io-presence#grace", "alice").Result(); err != nil {
		t.Fatalf("no grace pending once the total is 0: %v", err)
	}
	a.Add("alice")
	waitFor(t, 3*time.Second, "total 1", func() bool { return total(t, c, "alice") == 1 })
	b.Add("alice")
	time.Sleep(900 * time.Millisecond) // past the grace
	if ev.count("offline", "alice") != 0 || ev.count("online", "alice") != 1 {
		t.Fatalf("blip within the grace reported: %s", ev)
	}
	if !a.Online("alice") || !b.Online("alice") {
		t.Fatal("Online = false for a user with sockets")
	}

	// Both gone; past the grace, one offline.
	a.Remove("alice")
	b.Remove("alice")
	waitFor(t, 3*time.Second, "offline", func() bool { return ev.count("offline", "alice") == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := ev.count("offline", "alice"); n != 1 {
		t.Fatalf("offlines = %d, want 1 (%s)", n, ev)
	}
	if a.Online("alice") || b.Online("alice") {
		t.Fatal("Online = true after the offline")
	}
	// A user on B only is online for A too (through Redis).
	b.Add("bob")
	waitFor(t, 3*time.Second, "bob online on A", func() bool { return a.Online("bob") })
	// Within the grace still online; the grace starts on the last Remove.
	b.Remove("bob")
	waitFor(t, 3*time.Second, "bob's total 0", func() bool { return total(t, c, "bob") == 0 })
	if !a.Online("bob") {
		t.Fatal("bob not online during his grace")
	}
	if a.Len() != 0 || a.Bytes() != 0 {
		t.Fatalf("A holds %d keys, %d bytes after every socket left", a.Len(), a.Bytes())
	}
}

// TestPresenceDeadNode: a node killed while holding a user's socket
// stops counting after the node TTL, and the other node reports the
// offline once.
func TestPresenceDeadNode(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ev := &events{}
	o := trackerOpts{grace: 300 * time.Millisecond, ttl: 900 * time.Millisecond}
	a := newTracker(t, r, ev, "A", o)
	b := newTracker(t, r, ev, "B", o)
	for i := range 300 { // more than one reap chunk
		a.Add(fmt.Sprintf("u%d", i))
	}
	a.Add("carol")
	b.Add("dave")
	waitFor(t, 3*time.Second, "written", func() bool { return total(t, c, "carol") == 1 && total(t, c, "u299") == 1 })
	killed := time.Now()
	a.crash()
	waitFor(t, 10*time.Second, "carol offline", func() bool { return ev.count("offline", "carol") == 1 })
	if d := time.Since(killed); d < o.ttl {
		t.Fatalf("offline %v after the kill, before the node TTL %v", d, o.ttl)
	}
	waitFor(t, 5*time.Second, "every user of A offline", func() bool { return ev.count("offline", "u299") == 1 && ev.count("offline", "u0") == 1 })
	time.Sleep(300 * time.Millisecond)
	if ev.count("offline", "carol") != 1 || ev.count("offline", "dave") != 0 {
		t.Fatalf("hooks: %s", ev)
	}
	if n, _ := c.Exists(context.Background(), "socket.io-presence#node#"+a.NodeID()).Result(); n != 0 {
		t.Fatal("the dead node's counts are still in Redis")
	}
	if sc, err := c.ZScore(context.Background(), "socket.io-presence#nodes", a.NodeID()).Result(); err == nil {
		t.Fatalf("the dead node is still in the node set (%v)", sc)
	}
}

// TestPresenceConcurrent: two nodes Add and Remove the same keys from
// many goroutines (run with -race); every key gets exactly one online and,
// once all are gone, exactly one offline, and Redis ends empty.
func TestPresenceConcurrent(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ev := &events{}
	o := trackerOpts{grace: 1500 * time.Millisecond}
	nodes := []*Tracker{newTracker(t, r, ev, "A", o), newTracker(t, r, ev, "B", o)}
	const keys = 40
	for i := range keys { // every key has a socket throughout the churn
		nodes[i%2].Add(fmt.Sprintf("k%d", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			tr := nodes[g%2]
			for range 500 {
				k := fmt.Sprintf("k%d", rng.IntN(keys))
				tr.Add(k)
				if rng.IntN(3) == 0 {
					time.Sleep(time.Millisecond)
				}
				tr.Remove(k)
			}
		}()
	}
	wg.Wait()
	for i := range keys {
		nodes[i%2].Remove(fmt.Sprintf("k%d", i))
	}
	waitFor(t, 10*time.Second, "every offline", func() bool {
		for i := range keys {
			if ev.count("offline", fmt.Sprintf("k%d", i)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		if on, off := ev.count("online", k), ev.count("offline", k); on != 1 || off != 1 {
			t.Errorf("%s: %d onlines, %d offlines, want 1 and 1", k, on, off)
		}
	}
	for _, key := range []string{"socket.io-presence#total", "socket.io-presence#grace"} {
		if n, _ := c.Exists(context.Background(), key).Result(); n != 0 {
			t.Errorf("%s left in Redis", key)
		}
	}
}

// TestPresenceBounds: a key over the length bound and keys past MaxBytes
// are not tracked; Remove of an untracked key, or once too many, never
// makes a count negative.
func TestPresenceBounds(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ev := &events{}
	a := newTracker(t, r, ev, "A", trackerOpts{maxBytes: 100 * (keyOverhead + 8)})
	if a.Add(strings.Repeat("x", realtime.DefaultPresenceMaxKeyLength+1)) || a.Add("") {
		t.Fatal("a key over the bound, or empty, was tracked")
	}
	// Names are opaque: separators and bytes Lua or Redis could care about.
	odd := "a#b*c\x00d é"
	if !a.Add(odd) {
		t.Fatal("an odd name refused")
	}
	waitFor(t, 3*time.Second, "odd name written", func() bool { return total(t, c, odd) == 1 })
	a.Remove(odd)
	waitFor(t, 3*time.Second, "odd name offline", func() bool { return ev.count("offline", odd) == 1 })
	tracked := 0
	for i := range 10000 {
		if a.Add(fmt.Sprintf("user%04d", i)) {
			tracked++
		}
	}
	if tracked != 100 || a.Bytes() > 100*(keyOverhead+8) {
		t.Fatalf("tracked %d keys (%d bytes), want 100 within the bound", tracked, a.Bytes())
	}
	waitFor(t, 3*time.Second, "written", func() bool { return total(t, c, "user0099") == 1 })
	if n, _ := c.HLen(context.Background(), "socket.io-presence#total").Result(); n != 100 {
		t.Fatalf("Redis holds %d keys, want 100", n)
	}
	a.Remove("nobody")
	a.Remove("user0001")
	a.Remove("user0001")
	a.Add("user0002")
	a.Remove("user0002")
	waitFor(t, 3*time.Second, "user0001 at 0", func() bool { return total(t, c, "user0001") == 0 })
	vals, _ := c.HVals(context.Background(), "socket.io-presence#total").Result()
	for _, v := range vals {
		if strings.HasPrefix(v, "-") || v == "0" {
			t.Fatalf("a count of %s in Redis", v)
		}
	}
	if total(t, c, "user0002") != 1 || total(t, c, "nobody") != 0 {
		t.Fatal("counts wrong after the extra Removes")
	}
	waitFor(t, 3*time.Second, "user0001 offline", func() bool { return ev.count("offline", "user0001") == 1 })
	// Its room is free again.
	if !a.Add("newcomer") {
		t.Fatal("a key freed by an offline is not reusable")
	}
}

// TestPresenceRedisOutage: Redis killed mid-run: Add and Remove go on
// without waiting, Close does not hang, no goroutine is left; when Redis
// comes back (empty) the counts are written again.
func TestPresenceRedisOutage(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	g := testkit.TrackGoroutines("redispresence")
	ev := &events{}
	a := newTracker(t, r, ev, "A", trackerOpts{grace: 300 * time.Millisecond})
	a.Add("alice")
	a.Add("bob")
	waitFor(t, 3*time.Second, "written", func() bool { return total(t, c, "bob") == 1 })

	r.Stop()
	start := time.Now()
	for range 1000 {
		a.Add("alice")
		a.Remove("alice")
	}
	a.Add("alice")
	a.Remove("bob")
	a.Add("carol")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Add and Remove took %v with Redis down", d)
	}
	time.Sleep(500 * time.Millisecond)
	r.Start() // empty: no persistence
	waitFor(t, 5*time.Second, "rewritten", func() bool {
		return total(t, c, "alice") == 2 && total(t, c, "carol") == 1 && total(t, c, "bob") == 0
	})
	if ev.count("offline", "alice") != 0 {
		t.Fatalf("alice reported offline across the outage: %s", ev)
	}
	r.Stop()
	start = time.Now()
	a.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with Redis down", d)
	}
	g.Check(t, 2*time.Second)
}

// TestPresenceCloseLeaves: a node that closes writes its sockets off and
// leaves the node set; the other node reports the offline after the grace.
func TestPresenceCloseLeaves(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ev := &events{}
	a := newTracker(t, r, ev, "A", trackerOpts{})
	b := newTracker(t, r, ev, "B", trackerOpts{})
	a.Add("erin")
	waitFor(t, 3*time.Second, "written", func() bool { return total(t, c, "erin") == 1 })
	// Both nodes in the set first: B registers on its own goroutine (CI
	// once closed A before B had).
	waitFor(t, 3*time.Second, "both nodes registered", func() bool {
		n, _ := c.ZCard(context.Background(), "socket.io-presence#nodes").Result()
		return n == 2
	})
	a.Close()
	if a.Add("erin") {
		t.Fatal("Add after Close")
	}
	if n, _ := c.ZCard(context.Background(), "socket.io-presence#nodes").Result(); n != 1 {
		t.Fatalf("%d nodes in the set after one closed, want 1", n)
	}
	waitFor(t, 3*time.Second, "offline from B", func() bool { return ev.count("offline", "erin") == 1 })
	if !strings.Contains(ev.String(), "offline erin@B") {
		t.Fatalf("hooks: %s", ev)
	}
	_ = b
}

// BenchmarkPresenceWrite: b.N users connect on one node; the time until
// Redis holds them all, and what Redis holds per user (used_memory).
func BenchmarkPresenceWrite(b *testing.B) {
	if testing.Short() {
		b.Skip("starts redis-server")
	}
	r := testkit.StartRedis(b)
	c := r.Client()
	ctx := context.Background()
	before := usedMemory(b, c)
	tr, err := New(Options{Client: redis.NewClient(&redis.Options{Addr: r.Addr()})})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ResetTimer()
	tracked := 0
	for i := range b.N {
		if tr.Add("user-" + strconv.Itoa(i)) {
			tracked++
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		n, _ := c.HLen(ctx, "socket.io-presence#total").Result()
		if n == int64(tracked) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("Redis holds %d users of %d after a minute", n, tracked)
		}
	}
	b.StopTimer()
	if tracked > 0 {
		b.ReportMetric(float64(usedMemory(b, c)-before)/float64(tracked), "redis-B/user")
		b.ReportMetric(float64(tr.Bytes())/float64(tracked), "local-B/user")
	}
}

func usedMemory(b *testing.B, c *redis.Client) int64 {
	s, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestPresenceGarbage: what another writer left under the prefix (a dead
// node whose counts are not a hash, or not numbers) is reaped without
// wedging the tracker, and presence goes on.
func TestPresenceGarbage(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	ctx := context.Background()
	c.ZAdd(ctx, "socket.io-presence#nodes", redis.Z{Score: 1, Member: "str"}, redis.Z{Score: 1, Member: "nan"})
	c.Set(ctx, "socket.io-presence#node#str", "not a hash", 0)
	c.HSet(ctx, "socket.io-presence#node#nan", "mallory", "lots")
	ev := &events{}
	a := newTracker(t, r, ev, "A", trackerOpts{grace: 200 * time.Millisecond})
	waitFor(t, 3*time.Second, "garbage reaped", func() bool {
		n, _ := c.ZCard(ctx, "socket.io-presence#nodes").Result()
		return n == 1 // A only
	})
	a.Add("frank")
	waitFor(t, 3*time.Second, "frank online", func() bool { return ev.count("online", "frank") == 1 })
	a.Remove("frank")
	waitFor(t, 3*time.Second, "frank offline", func() bool { return ev.count("offline", "frank") == 1 })
	if ev.count("offline", "mallory") != 0 {
		t.Fatalf("a garbage count made an offline: %s", ev)
	}
}
