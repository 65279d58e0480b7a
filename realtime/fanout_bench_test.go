//go:build unix

package realtime

import (
	"fmt"
	"net/http/httptest"
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

	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU(b)
	for i := range b.N {
		if err := op.Emit("msg", payload); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * fanoutInterval)))
	}
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/delivery")
}

// processCPU is the process's user and system time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("reading the process's CPU time: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
