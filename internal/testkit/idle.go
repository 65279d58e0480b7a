package testkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Idle-session memory: a benchmark measures what N idle sessions cost its
// own process (runtime.MemStats), so the clients must live in another one.
// IdleClients re-runs the test binary as that other process, which runs
// the package's IdleClientsChild test.

const (
	idleEnvURL = "TESTKIT_IDLE_URL"
	idleEnvN   = "TESTKIT_IDLE_N"
	idleEnvSIO = "TESTKIT_IDLE_SIO"
	// idleChildLife bounds the child if its parent never closes its stdin.
	idleChildLife = 5 * time.Minute
	idleConnect   = 60 * time.Second
)

// IdleClients starts a child process holding n idle Engine.IO WebSocket
// sessions to wsURL (ws://host/socket.io/?EIO=4&transport=websocket); with
// socketIO, each also connects the "/" namespace and waits for its CONNECT
// reply. It returns once every session is open; stop ends the child. The
// package must call IdleClientsChild from a test named TestIdleClientsChild.
func IdleClients(tb testing.TB, wsURL string, n int, socketIO bool) (stop func()) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsChild$", "-test.count=1") //nolint:gosec // the test binary itself
	cmd.Env = append(os.Environ(), idleEnvURL+"="+wsURL, idleEnvN+"="+strconv.Itoa(n),
		idleEnvSIO+"="+strconv.FormatBool(socketIO))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("starting idle clients: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("starting idle clients: %v", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting idle clients: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); line == "idle clients ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			} else if strings.HasPrefix(line, "idle clients failed") {
				ready <- fmt.Errorf("%s", line)
				return
			}
		}
		ready <- fmt.Errorf("idle clients exited before they were ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			tb.Fatalf("starting idle clients: %v", err)
		}
	case <-time.After(idleConnect + 10*time.Second):
		stop()
		tb.Fatalf("starting idle clients: not ready after %v", idleConnect)
	}
	return stop
}

// IdleClientsChild is the child side of IdleClients: call it from
// TestIdleClientsChild. Run by `go test` itself it skips.
func IdleClientsChild(t *testing.T) {
	u, ns := os.Getenv(idleEnvURL), os.Getenv(idleEnvN)
	if u == "" {
		t.Skip("the child process of testkit.IdleClients; nothing to do on its own")
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 || n > 100000 {
		fmt.Printf("idle clients failed: bad count %q\n", ns)
		return
	}
	sio := os.Getenv(idleEnvSIO) == "true"
	ctx, cancel := context.WithTimeout(context.Background(), idleConnect)
	defer cancel()
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 10 * time.Second}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	for range min(n, 4*runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := dialIdle(ctx, &d, u, sio)
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		fmt.Printf("idle clients failed: %v\n", err)
		return
	default:
	}
	// Pings are answered so that a run longer than the ping interval
	// keeps its sessions.
	for _, c := range conns {
		go func() {
			for {
				_, p, err := c.ReadMessage()
				if err != nil {
					return
				}
				if len(p) == 1 && p[0] == '2' {
					_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
				}
			}
		}()
	}
	fmt.Println("idle clients ready")
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(idleChildLife):
	}
}

func dialIdle(ctx context.Context, d *websocket.Dialer, u string, sio bool) (*websocket.Conn, error) {
	c, resp, err := d.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dialing: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || len(p) == 0 || p[0] != '0' {
		_ = c.Close()
		return nil, fmt.Errorf("reading the open packet: %q, %v", p, err)
	}
	if sio {
		if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("sending connect: %w", err)
		}
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("reading the connect reply: %w", err)
			}
			if strings.HasPrefix(string(p), "40") {
				break
			}
			if strings.HasPrefix(string(p), "44") {
				_ = c.Close()
				return nil, fmt.Errorf("connect refused: %s", p)
			}
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

// SessionMemory is what n idle sessions cost a process, from
// runtime.MemStats after a collection: live heap and goroutine stacks.
type SessionMemory struct {
	HeapBytes, StackBytes, Goroutines float64 // per session
	// AllocBytes is every byte the process allocated in between, per
	// session: what a connect costs the collector, garbage included.
	AllocBytes float64
}

// MemSnapshot is a point of the measurement (see MeasureSince).
type MemSnapshot struct {
	heap, stack uint64
	alloc       uint64 // bytes allocated since the process started
	goroutines  int
}

// TakeMemSnapshot collects garbage and reads the live heap, the stacks in
// use and the goroutine count.
func TakeMemSnapshot() MemSnapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return MemSnapshot{heap: m.HeapAlloc, stack: m.StackInuse, alloc: m.TotalAlloc, goroutines: runtime.NumGoroutine()}
}

// PerSession is the growth from base to now divided over n sessions.
func (now MemSnapshot) PerSession(base MemSnapshot, n int) SessionMemory {
	f := float64(n)
	return SessionMemory{
		HeapBytes:  (float64(now.heap) - float64(base.heap)) / f,
		StackBytes: (float64(now.stack) - float64(base.stack)) / f,
		Goroutines: float64(now.goroutines-base.goroutines) / f,
		AllocBytes: (float64(now.alloc) - float64(base.alloc)) / f,
	}
}

// Report puts the figures on b: bytes/session (heap + stacks), and each part.
func (m SessionMemory) Report(b *testing.B) {
	b.ReportMetric(m.HeapBytes+m.StackBytes, "B/session")
	b.ReportMetric(m.HeapBytes, "heap-B/session")
	b.ReportMetric(m.StackBytes, "stack-B/session")
	b.ReportMetric(m.Goroutines, "goroutines/session")
	b.ReportMetric(m.AllocBytes, "alloc-B/session")
	b.ReportMetric(0, "ns/op") // one measurement, not a timed loop
}

// HeapProfile writes the heap profile (live objects, after a collection)
// to the file named by $TESTKIT_HEAP_PROFILE, when it is set: the profile
// of the moment a benchmark measures, where -memprofile has the end of the
// run.
func HeapProfile(tb testing.TB) {
	tb.Helper()
	path := os.Getenv("TESTKIT_HEAP_PROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path) //nolint:gosec // a path the developer names in the environment
	if err != nil {
		tb.Fatalf("writing the heap profile: %v", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatalf("writing the heap profile: %v", err)
	}
}
