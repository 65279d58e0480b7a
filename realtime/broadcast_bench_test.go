package realtime

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// BenchmarkBroadcast measures a room broadcast in process, end to end: one
// Emit to a room of N WebSocket clients, until every client has read it.
// It reports deliveries per second; the clients run in the same process,
// so the figure is a floor for the server alone.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, n int) {
	srv := NewServer(Options{Engine: engineio.Options{MaxQueuedMessages: 1 << 16}})
	joined := make(chan struct{}, n)
	srv.Of("/").OnConnection(func(s *Socket) {
		s.Join("room")
		joined <- struct{}{}
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	var received atomic.Int64
	var wg sync.WaitGroup
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conns := make([]*websocket.Conn, 0, n)
	for range n {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("dialing: %v", err)
		}
		conns = append(conns, ws)
		_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if len(data) > 2 && data[0] == '4' && data[1] == '2' {
					received.Add(1)
				}
			}
		}()
	}
	for range n {
		select {
		case <-joined:
		case <-time.After(10 * time.Second):
			b.Fatal("clients did not connect")
		}
	}
	payload := map[string]any{"text": "hello from the benchmark", "n": 42}
	op := srv.Of("/").To("room")
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := op.Emit("msg", payload); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * int64(n)
	deadline := time.Now().Add(60 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := received.Load(); got < want {
		b.Fatalf("received %d of %d deliveries", got, want)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	for _, ws := range conns {
		_ = ws.Close()
	}
	wg.Wait()
}

// BenchmarkEncodeBroadcast measures what a broadcast costs before any
// delivery: encoding the packet once into shared Engine.IO messages.
func BenchmarkEncodeBroadcast(b *testing.B) {
	p := eventPacket("/", -1, "msg", []any{map[string]any{"text": "hello", "n": 42}})
	b.ReportAllocs()
	for range b.N {
		if _, err := encodePacket(p, true); err != nil {
			b.Fatal(err)
		}
	}
}
