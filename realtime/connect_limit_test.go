package realtime

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// TestConnectLoopLimited: a client that sends CONNECT again as soon as it is
// refused runs the middlewares connectBurst times, then is refused without
// them ("rate limit exceeded"), then closed; another client is unaffected.
func TestConnectLoopLimited(t *testing.T) {
	var ran atomic.Int64
	_, ts := newTestServerWith(t, nil, func(srv *Server) {
		srv.Of("/").Use(func(s *Socket) error {
			ran.Add(1)
			if s.Handshake().Auth["user"] == "ann" {
				return nil
			}
			return &ConnectError{Message: "log in first"}
		})
	})
	loop := dialRaw(t, ts, "")
	refused, limited := 0, 0
	closed := false
	for i := 0; i < 10*connectBurst && !closed; i++ {
		loop.Send("40")
		f, err := loop.Recv(2 * time.Second)
		switch {
		case errors.Is(err, testkit.ErrClosed), err == nil && f.Data == "1": // the close packet, then the end
			closed = true
		case err != nil:
			t.Fatalf("after %d refused and %d limited: %v", refused, limited, err)
		case strings.Contains(f.Data, "log in first"):
			refused++
		case strings.Contains(f.Data, errRateLimited):
			limited++
		default:
			t.Fatalf("frame %q", f.Data)
		}
	}
	if !closed {
		t.Fatalf("the looping connection was not closed (%d refused by the middleware, %d limited)", refused, limited)
	}
	// A few tokens come back while the loop runs (connectRate per second).
	if n := ran.Load(); n < connectBurst || n > connectBurst+5 {
		t.Errorf("the middleware ran %d times, want about %d", n, connectBurst)
	}
	if limited == 0 {
		t.Error("no CONNECT was refused by the limit")
	}
	ann := dialRaw(t, ts, "")
	ann.Send(`40{"user":"ann"}`)
	ann.ExpectPrefix(`40{"sid":"`)
}
