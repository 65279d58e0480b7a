package testkit

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server of one test, on a free loopback port, with no
// persistence. Stop and Start let a test take it away and bring it back
// on the same port; Cleanup stops it.
type Redis struct {
	t    testing.TB
	Port int
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (Debian's package; SkipOrFail when it is
// missing) and waits until it answers PING.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		SkipOrFail(t, "redis-server not installed (apt-get install redis-server)")
	}
	r := &Redis{t: t, Port: FreePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr() }

// Start starts the server (again) and waits up to 5 s for its PING.
func (r *Redis) Start() {
	r.t.Helper()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r.ping() {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d did not answer PING within 5s", r.Port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Client is a go-redis client of the server, closed at the end of the
// test: for the tests' own PUBLISH, PUBSUB NUMSUB and the like.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *Redis) ping() bool {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}
