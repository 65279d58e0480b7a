package realtime

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// dialRaw opens a raw Engine.IO WebSocket (testkit.WS: pings answered by
// its reader) to the test server ts, with query ("&k=v...") added, and
// reads the open packet. Engine tests send exactly the bytes they mean
// (bad ones too) and see exactly what comes back; each expectation waits
// up to 2 s.
func dialRaw(t testing.TB, ts *httptest.Server, query string) *testkit.WS {
	t.Helper()
	c := testkit.DialWSURL(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/socket.io/?EIO=4&transport=websocket"+query, nil)
	c.Wait = 2 * time.Second
	if open := c.Next(2 * time.Second); !strings.HasPrefix(open.Data, "0{") {
		t.Fatalf("first frame = %q, want an open packet", open.Data)
	}
	return c
}
