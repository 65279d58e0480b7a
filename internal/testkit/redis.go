package testkit

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisReadyTimeout bounds the wait for a started redis-server to answer.
const redisReadyTimeout = 10 * time.Second

// Redis is a redis-server process of one test, on a loopback port, with
// no persistence. Stop and Start take it away and bring it back on the
// same port.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	Log  *SyncBuffer

	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a redis-server of the test's own on a free loopback
// port, without persistence, and waits until it answers PING. It skips
// under -short (the fast loop starts no server) and when redis-server is
// missing (fails instead under CI=true). t.Cleanup stops it.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real redis-server: skipped under -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		SkipOrFail(t, "finding redis-server (Debian: apt-get install redis-server): %v", err)
	}
	port := FreePort(t)
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), Port: port}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start runs the server (again, after Stop) on the same port and waits
// until it answers.
func (r *Redis) Start() {
	r.t.Helper()
	r.Log = &SyncBuffer{}
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--protected-mode", "no")
	r.cmd.Stdout = r.Log
	r.cmd.Stderr = r.Log
	r.cmd.WaitDelay = 2 * time.Second
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	cmd := r.cmd
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(redisReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			r.t.Fatalf("redis-server exited before answering: %v\n%s", err, r.Log)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s not answering after %v: %v\n%s", r.Addr(), redisReadyTimeout, err, r.Log)
		}
		time.Sleep(20 * time.Millisecond) // another process: nothing signals readiness
	}
}

// Stop kills the server and waits for it to exit (bounded); a no-op when
// it is not running.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.t.Errorf("redis-server on %s did not exit after kill", r.Addr())
		}
	}
	r.cmd = nil
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://%s", r.Addr()) }

// Client is a go-redis client of the server, closed when the test ends.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}
