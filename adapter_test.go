package socketio

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// TestAdapterFixedForTheHub: a handler of a running hub (a reload) must
// keep its adapter settings; a change is refused without touching the hub,
// and the hub leaves its cluster when its last handler goes, with no
// goroutine of the adapter left. No Redis is needed: the cluster does not
// wait for it.
func TestAdapterFixedForTheHub(t *testing.T) {
	leaks := testkit.TrackGoroutines("redisadapter", "go-redis")
	redisCfg := func(key string) *AdapterConfig {
		return &AdapterConfig{Type: AdapterRedis, URL: "redis://127.0.0.1:1", Key: key, Advertise: "127.0.0.1:8080"}
	}
	a := &Handler{Name: "cluster", Adapter: redisCfg("one")}
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if a.hub.cluster == nil {
		t.Fatal("no cluster for adapter redis")
	}
	if got := *a.hub.advertise.Load(); got != "127.0.0.1:8080" {
		t.Fatalf("advertised %q", got)
	}
	same := &Handler{Name: "cluster", Adapter: redisCfg("one"), Relay: []string{"x"}}
	if err := same.Provision(testContext(t)); err != nil {
		t.Fatalf("same adapter: %v", err)
	}
	for _, other := range []*AdapterConfig{redisCfg("two"), nil, {Type: AdapterMemory}} {
		h := &Handler{Name: "cluster", Adapter: other}
		err := h.Provision(testContext(t))
		if !errors.Is(err, errAdapterChanged) {
			t.Fatalf("adapter %+v on a running redis hub: %v, want errAdapterChanged", other, err)
		}
	}
	if n := poolSize(); n != 1 {
		t.Fatalf("pool has %d hubs", n)
	}
	for _, h := range []*Handler{same, a} {
		if err := h.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if n := poolSize(); n != 0 {
		t.Fatalf("pool has %d hubs after cleanup", n)
	}
	leaks.Check(t, 5*time.Second)
}

// TestAdapterResolve: placeholders are resolved at load, and a URL that
// does not resolve to a Redis URL is refused without showing it.
func TestAdapterResolve(t *testing.T) {
	t.Setenv("TEST_REDIS_PASSWORD", "hunter2")
	t.Setenv("TEST_BAD_URL", "http://user:hunter2@host")
	h := &Handler{Adapter: &AdapterConfig{Type: AdapterRedis, URL: "redis://:{env.TEST_REDIS_PASSWORD}@127.0.0.1:6379/2"}}
	s, err := h.Adapter.resolve(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if s.redisOptions.Password != "hunter2" || s.redisOptions.DB != 2 || s.key != "socket.io" {
		t.Fatalf("resolved %+v", s.redisOptions)
	}
	for _, raw := range []string{"{env.TEST_BAD_URL}", "{env.TEST_UNSET_REDIS}"} {
		_, err := (&AdapterConfig{Type: AdapterRedis, URL: raw}).resolve(caddy.NewReplacer())
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%s: %v", raw, err)
		}
	}
}
