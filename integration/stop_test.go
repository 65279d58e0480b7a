//go:build live

package integration

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// raiseFileLimit lifts this process's soft RLIMIT_NOFILE to its hard limit
// (Caddy, started after, inherits it) and skips the test when that is
// still under need.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("reading RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("raising RLIMIT_NOFILE to %d: %v", lim.Max, err)
		}
	}
	if lim.Cur < need {
		testkit.SkipOrFail(t, "RLIMIT_NOFILE is %d, the test needs %d (raise the hard limit: ulimit -Hn)", lim.Cur, need)
	}
}

// TestCaddyStop2000Sockets: `caddy stop` with 2,000 connected sockets and
// drain 5s: every client sees its close packet and its connection end, and
// the process exits within the drain plus 2 s.
func TestCaddyStop2000Sockets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Caddy with 2,000 sockets: skipped under -short (the fast loop)")
	}
	const (
		n         = 2000
		drain     = 5 * time.Second
		dialers   = 16
		dialBound = 90 * time.Second // 2,000 handshakes on a loaded 2-core box
	)
	// This process holds n client sockets, Caddy n more and its own.
	raiseFileLimit(t, n+1024)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	// All clients come from 127.0.0.1: the per-address limits are off.
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	socketio {
		drain 5s
		limits {
			max_connections_per_ip off
			handshake_rate off
		}
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port)
	c := startCaddyConfig(t, sc, cfg)
	ws := fmt.Sprintf("ws://127.0.0.1:%d/socket.io/", sc.Port)

	clients := make([]*testkit.WS, n)
	var next atomic.Int64
	dialStart := time.Now()
	var wg sync.WaitGroup
	for range dialers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || time.Since(dialStart) > dialBound {
					return
				}
				w := testkit.DialWS(t, ws, nil, nil)
				w.Wait = clientWait
				w.ConnectSocket("")
				clients[i] = w
			}
		})
	}
	wg.Wait()
	for i, w := range clients {
		if w == nil {
			t.Fatalf("only %d of %d sockets connected within %v", i, n, dialBound)
		}
	}
	t.Logf("%d sockets connected in %v", n, time.Since(dialStart).Round(time.Millisecond))
	c.expectSeriesWithin(t, 10*time.Second, `caddy_socketio_sockets{hub="/socket.io/",namespace="/",transport="websocket"}`, fmt.Sprint(n))

	// Each client waits for its close packet and the end of its
	// connection, bounded by the drain plus 2 s after the stop began, and
	// a margin for this loaded box's scheduling.
	start := time.Now()
	bound := drain + 2*time.Second
	var mu sync.Mutex
	var closedAt []time.Duration
	closePackets := 0
	var late atomic.Int64
	for _, w := range clients {
		wg.Go(func() {
			deadline := time.After(bound + 3*time.Second)
			sawClose := false
			for {
				select {
				case f, ok := <-w.Frames():
					if ok {
						sawClose = sawClose || f.Data == "1"
						continue
					}
					mu.Lock()
					closedAt = append(closedAt, time.Since(start))
					if sawClose {
						closePackets++
					}
					mu.Unlock()
					return
				case <-deadline:
					late.Add(1)
					return
				}
			}
		})
	}
	took := c.Stop()
	wg.Wait()
	slices.Sort(closedAt)
	if l := late.Load(); l > 0 {
		t.Errorf("%d connections still open %v after `caddy stop`", l, bound+3*time.Second)
	}
	if len(closedAt) != n || closePackets != n {
		t.Fatalf("%d of %d connections ended, %d with a close packet", len(closedAt), n, closePackets)
	}
	t.Logf("caddy stop with %d sockets, drain %v: exited after %v; connections ended first %v, median %v, last %v",
		n, drain, took.Round(time.Millisecond), closedAt[0].Round(time.Millisecond),
		closedAt[n/2].Round(time.Millisecond), closedAt[n-1].Round(time.Millisecond))
	if took > bound {
		t.Fatalf("caddy exited %v after `caddy stop`, want within %v", took, bound)
	}
	if closedAt[n-1] > bound {
		t.Errorf("the last connection ended %v after `caddy stop`, want within %v", closedAt[n-1], bound)
	}
	if closedAt[n-1] < drain/2 {
		t.Errorf("closes not spread over the drain: the last at %v", closedAt[n-1])
	}
}
