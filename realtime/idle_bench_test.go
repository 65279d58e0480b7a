package realtime

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// idleSessions is how many idle sessions the memory benchmarks hold.
const idleSessions = 2000

// idleSettle is longer than the websocket writer's linger (250 ms).
const idleSettle = 1500 * time.Millisecond

// BenchmarkIdleSessionMemory reports what one idle WebSocket session costs
// the engine (the bench server's setup: "/" connected, one room joined):
// live heap and goroutine stacks per session, from runtime.MemStats over
// idleSessions sessions whose clients run in a child process. Run it with
// -benchtime 1x; it is one measurement, not a timed loop.
func BenchmarkIdleSessionMemory(b *testing.B) {
	for range b.N {
		srv := NewServer(Options{})
		srv.Of("/").OnConnection(func(s *Socket) {
			if room := s.Handshake().Query.Get("room"); room != "" {
				_ = s.Join(room)
			}
		})
		ts := httptest.NewServer(srv)
		base := testkit.TakeMemSnapshot()
		stop := testkit.IdleClients(b, "ws"+strings.TrimPrefix(ts.URL, "http")+
			"/socket.io/?EIO=4&transport=websocket&room=r1", idleSessions, true)
		// Waits out the websocket writer's linger on purpose: an idle
		// session holds no writer, and the measurement is of idle ones.
		time.Sleep(idleSettle)
		testkit.TakeMemSnapshot().PerSession(base, idleSessions).Report(b)
		testkit.HeapProfile(b)
		stop()
		srv.Close()
		ts.Close()
	}
}

// TestIdleClientsChild is the client process of BenchmarkIdleSessionMemory.
func TestIdleClientsChild(t *testing.T) { testkit.IdleClientsChild(t) }
