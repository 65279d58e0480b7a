package realtime

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLongNamespaceName: a 300 KB namespace name is refused as an invalid
// namespace without asking the matchers, with a short reply; the
// connection stays.
func TestLongNamespaceName(t *testing.T) {
	var matched atomic.Int64
	srv, ts := newTestServerWith(t, nil, func(s *Server) {
		s.OfFunc(func(string) bool { matched.Add(1); return true }, nil)
	})
	c := dialRaw(t, ts, "")
	name := "/" + strings.Repeat("é", 150<<10) // 300 KB
	if err := c.Write(websocket.TextMessage, []byte("40"+name+",")); err != nil {
		t.Fatal(err)
	}
	f := c.Next(clientWait)
	if !strings.HasPrefix(f.Data, "44/é") || !strings.HasSuffix(f.Data, `,{"message":"Invalid namespace"}`) || len(f.Data) > DefaultMaxNamespaceLength+40 {
		t.Fatalf("reply %.60q... (%d bytes), want a short Invalid namespace", f.Data, len(f.Data))
	}
	if !strings.HasPrefix(name, f.Data[2:len(f.Data)-len(`,{"message":"Invalid namespace"}`)]) {
		t.Fatal("reply does not name a prefix of the namespace cut at a character")
	}
	if n := matched.Load(); n != 0 {
		t.Fatalf("matcher called %d times for an over-long name", n)
	}
	if len(srv.Namespaces()) != 1 {
		t.Fatalf("namespaces %v", namespaceNames(srv))
	}
	// At the limit it is looked up as usual.
	c.Send("40/" + strings.Repeat("a", DefaultMaxNamespaceLength-1) + ",")
	c.ExpectPrefix("40/aaa")
	// Other packets for an over-long namespace are protocol errors.
	if err := c.Write(websocket.TextMessage, []byte(`42`+name+`,["x"]`)); err != nil {
		t.Fatal(err)
	}
	c.ExpectClosed(clientWait)
}

// TestLongEventName: a 300 KB event name is dropped before the handlers;
// asking for an ack gets the error.
func TestLongEventName(t *testing.T) {
	var seen atomic.Int64
	zcore, obs := observerAt(t)
	_, ts := newTestServerWith(t, func(o *Options) { o.Logger = zcore }, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			s.OnAny(func(_ *Socket, _ string, _ []any, ack AckFunc) {
				seen.Add(1)
				if ack != nil {
					_ = ack("handled")
				}
			})
			s.On(strings.Repeat("n", 300<<10), func(*Socket, []any, AckFunc) { seen.Add(100) })
		})
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	long := strings.Repeat("n", 300<<10)
	for _, msg := range []string{`4212["` + long + `",1]`, `42["` + long + `"]`} {
		if err := c.Write(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(msg, "4212") {
			c.Expect(`4312[{"error":"event name too long"}]`)
		}
	}
	c.Send(`4213["` + strings.Repeat("n", DefaultMaxEventNameLength) + `"]`)
	c.Expect(`4313["handled"]`)
	if n := seen.Load(); n != 1 {
		t.Fatalf("handlers saw %d, want only the event at the limit", n)
	}
	drops := obs.FilterMessage("event dropped: event name too long").All()
	if len(drops) != 2 {
		t.Fatalf("%d debug lines for dropped names, want 2", len(drops))
	}
	if ev, _ := drops[0].ContextMap()["event"].(string); len(ev) > 64+len("…") {
		t.Fatalf("logged name of %d bytes", len(ev))
	}
	// Each layer logs under its name, the engine through the same logger.
	if name := drops[0].LoggerName; name != "socketio" {
		t.Errorf("socket layer logs as %q, want socketio", name)
	}
	if opened := obs.FilterMessage("session opened").All(); len(opened) != 1 || opened[0].LoggerName != "engineio" {
		t.Errorf("engine's session opened entries %v, want one logged as engineio", opened)
	}
}

// observerAt returns a debug-level logger whose entries the test reads.
func observerAt(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	core, obs := observer.New(zap.DebugLevel)
	return zap.New(core), obs
}

// namespaceNames lists the names of the published namespaces.
func namespaceNames(srv *Server) []string {
	var out []string
	for _, n := range srv.Namespaces() {
		out = append(out, n.Name())
	}
	return out
}
