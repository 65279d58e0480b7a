package socketio

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/cluster"
)

func forwarderCount() int {
	n := 0
	forwarders.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestForwarderPooled: a hub on the Redis adapter gets a cluster forwarder
// whose node id starts its session ids; a reload (a second handler with
// the same adapter and address) shares it, another address gets another,
// a Provision that fails lets go of what it took, and the last Cleanup
// closes them with nothing left running. No Redis is needed: nothing waits
// for it (the first session's registration fails fast on a closed port).
func TestForwarderPooled(t *testing.T) {
	testkit.WaitsOnClock(t)
	leaks := testkit.TrackGoroutines("realtime/cluster", "go-redis")
	cfg := func(key, advertise string) *AdapterConfig {
		return &AdapterConfig{Type: AdapterRedis, URL: "redis://127.0.0.1:1", Key: key, Advertise: advertise}
	}
	a := &Handler{Name: "fwd", Adapter: cfg("k", "127.0.0.1:8080")}
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if a.forwarder == nil || forwarderCount() != 1 {
		t.Fatalf("forwarder %v, pool %d", a.forwarder, forwarderCount())
	}
	reload := &Handler{Name: "fwd", Adapter: cfg("k", "127.0.0.1:8080"), Relay: []string{"x"}}
	if err := reload.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if reload.forwarder != a.forwarder || forwarderCount() != 1 {
		t.Fatalf("a reload with the same adapter made another forwarder (pool %d)", forwarderCount())
	}
	other := &Handler{Name: "fwd-other", Path: "/other/", Adapter: cfg("k", "127.0.0.1:9090")}
	if err := other.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if other.forwarder == a.forwarder || forwarderCount() != 2 {
		t.Fatalf("another address shares the forwarder (pool %d)", forwarderCount())
	}
	refused := &Handler{Name: "fwd", Adapter: cfg("changed", "127.0.0.1:7070")}
	if err := refused.Provision(testContext(t)); err == nil {
		t.Fatal("an adapter change on a running hub was accepted")
	}
	if forwarderCount() != 2 || refused.forwardKey != "" {
		t.Fatalf("a failed Provision kept its forwarder (pool %d)", forwarderCount())
	}
	memory := &Handler{Name: "fwd-memory", Path: "/memory/"}
	provision(t, memory)
	if memory.forwarder != nil {
		t.Fatal("a memory hub has a forwarder")
	}

	// Session ids of the hub carry the node id of its advertised address.
	srv := httptest.NewServer(a.hub.server)
	p := testkit.OpenPolling(t, srv.URL+"/socket.io/", nil, nil)
	if want := cluster.NodeIDFor("127.0.0.1:8080"); !strings.HasPrefix(p.SID, want) {
		t.Fatalf("sid %q does not start with the node id %q", p.SID, want)
	}
	srv.Close()

	for _, h := range []*Handler{reload, a, other} {
		if err := h.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if n := forwarderCount(); n != 0 {
		t.Fatalf("%d forwarders left after cleanup", n)
	}
	leaks.Check(t, 5*time.Second)
}
