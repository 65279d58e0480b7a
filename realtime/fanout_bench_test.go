//go:build unix

package realtime

import (
	"fmt"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// fanoutInterval is the pace of BenchmarkFanoutLoopback's broadcasts:
// each client gets 10 messages a second, the bench's fanout5k rate, at
// which a session is idle when its next message comes.
const fanoutInterval = 100 * time.Millisecond

// BenchmarkFanoutLoopback reports the server's CPU per delivery of a room
// broadcast at a moderate rate: N real loopback WebSocket clients, held
// and read by a child process (testkit.IdleClients), so that the
// process's CPU time (getrusage) is the server's alone (the kernel's
// loopback work done in the server's write calls included). One broadcast
// per fanoutInterval; each op is one broadcast. Run it with e.g.
// -benchtime 30x; compare runs made under the same load.
// FANOUT_CPUPROFILE=file profiles the timed loop alone. On Linux it also
// reports the write system calls per delivery (below 1 when frames that
// queued up went out together).
func BenchmarkFanoutLoopback(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanoutLoopback(b, n) })
	}
}

func benchFanoutLoopback(b *testing.B, n int) {
	srv := NewServer(Options{})
	srv.Of("/").OnConnection(func(s *Socket) { _ = s.Join("room") })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	stop := testkit.IdleClients(b, "ws"+strings.TrimPrefix(ts.URL, "http")+
		"/socket.io/?EIO=4&transport=websocket", n, true)
	defer stop()
	if got := len(srv.Of("/").Sockets()); got != n {
		b.Fatalf("%d sockets connected, want %d", got, n)
	}
	payload := strings.Repeat("x", 64)
	op := srv.Of("/").To("room")
	// One round first: writers, buffers and pools as in a steady run.
	_ = op.Emit("msg", payload)
	time.Sleep(2 * fanoutInterval)

	stopProfile := startLoopProfile(b)
	b.ResetTimer()
	start := time.Now()
	user0, sys0 := processCPU(b)
	writes0, haveWrites := processWrites()
	for i := range b.N {
		if err := op.Emit("msg", payload); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * fanoutInterval)))
	}
	user1, sys1 := processCPU(b)
	user, sys := user1-user0, sys1-sys0
	writes1, _ := processWrites()
	b.StopTimer()
	stopProfile()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*n) }
	b.ReportMetric(per(user+sys), "cpu-ns/delivery")
	// The engine's own work is user time; the kernel's (the write system
	// calls, with the loopback delivery to the client) is system time.
	b.ReportMetric(per(user), "user-ns/delivery")
	b.ReportMetric(per(sys), "sys-ns/delivery")
	if haveWrites {
		// Below 1 when writers coalesce frames that queued up (batchConn).
		b.ReportMetric(float64(writes1-writes0)/float64(b.N*n), "writes/delivery")
	}
}

// startLoopProfile writes a CPU profile of the timed loop alone (not the
// connect phase, as -cpuprofile would) to the file FANOUT_CPUPROFILE names,
// if set; the returned func stops it.
func startLoopProfile(b *testing.B) (stop func()) {
	path := os.Getenv("FANOUT_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path) //nolint:gosec // a path the developer gives
	if err != nil {
		b.Fatalf("creating the loop's CPU profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatalf("starting the loop's CPU profile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// processWrites is the number of write system calls the process has made
// (Linux's /proc/self/io); false where that is not available.
func processWrites() (int64, bool) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("reading the process's CPU time: %v", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
