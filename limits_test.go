package socketio

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// TestOneClientCannotDisconnectTheRoom: a client that relays tens of
// thousands of events in one polling request used to fill every other
// member's queue, and they were all closed as "write queue full". Now the
// request is refused (too many packets) or the sender is rate limited, the
// limit is logged, and every other member stays connected.
func TestOneClientCannotDisconnectTheRoom(t *testing.T) {
	h := tutorialHandler("flood-room")
	httpBase, wsBase, logs := serveObserved(t, h)
	join := func(sub string) *wsClient {
		c := dial(t, wsBase, url.Values{"roomNumber": {"7"}})
		c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
		c.ExpectPrefix(`40{"sid":"`)
		return c
	}
	members := []*wsClient{join("ann"), join("bob")}
	flood := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(0x1e)
			}
			fmt.Fprintf(&b, `42["message_from_client",%d]`, i%10)
		}
		return b.String()
	}
	connect := "40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "mallory"})})

	t.Run("30,000 events in one request", func(t *testing.T) {
		m := testkit.OpenPolling(t, httpBase, url.Values{"roomNumber": {"7"}}, nil)
		m.MustPost(connect)
		code, body := m.Post(flood(30_000))
		if code != http.StatusBadRequest || !strings.Contains(body, `"code":3`) {
			t.Fatalf("30,000-packet POST: %d %q, want 400 Bad request", code, body)
		}
		if logs.FilterMessageSnippet("packet limit").Len() == 0 {
			t.Errorf("the packet limit is not in the log")
		}
	})
	t.Run("5,000 events in one request", func(t *testing.T) {
		m := testkit.OpenPolling(t, httpBase, url.Values{"roomNumber": {"7"}}, nil)
		m.MustPost(connect)
		if code, body := m.Post(flood(5_000)); code != http.StatusOK {
			t.Fatalf("5,000-packet POST: %d %q", code, body)
		}
		if logs.FilterMessageSnippet("rate limit").Len() == 0 {
			t.Errorf("the rate limit is not in the log")
		}
	})
	// Each member got at most the burst, in order, and is still connected:
	// a ping round trip and a relay from the other member still work.
	for i, c := range members {
		got := 0
		for {
			msg := c.Read()
			if !strings.HasPrefix(msg, `42["message_from_client",`) {
				if strings.HasPrefix(msg, `42["room-userId"`) || strings.HasPrefix(msg, `42["message_from_server"`) {
					continue
				}
				t.Fatalf("member %d: unexpected frame %q", i, msg)
			}
			if msg == `42["message_from_client","end-`+fmt.Sprint(i)+`"]` {
				break
			}
			got++
			if got == 1 {
				// Ask the other member to send an end marker after the flood.
				members[1-i].Send(fmt.Sprintf(`42["message_from_client","end-%d"]`, i))
			}
		}
		if limit := 1000 + 1000; got > limit+10 {
			t.Errorf("member %d received %d flooded events, want at most about the burst", i, got)
		}
	}
}

// TestRoomRequestsBounded: limits.max_rooms bounds the rooms a socket may
// request, and asking again for a room it is in is a no-op that announces
// nothing a second time.
func TestRoomRequestsBounded(t *testing.T) {
	h := tutorialHandler("room-bound")
	h.Limits = &Limits{MaxRooms: 2}
	base, _ := serve(t, h)
	c := dial(t, base, url.Values{"roomNumber": {"1"}}) // the join rule puts it in room-userId-1
	c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "ann"})}))
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`42["room-userId","You are in room number: 1"]`)
	c.Expect(`42["message_from_server","Message: welcome ann"]`)
	c.Send(`421["join","room-ann-a"]`)
	c.Expect(`431[{"ok":true,"room":"room-ann-a"}]`)
	c.Expect(`42["room-userId","You are in room number: 1"]`)
	c.Send(`422["join","room-ann-a"]`)
	c.Expect(`432[{"ok":true,"room":"room-ann-a"}]`)
	c.Send(`423["join","room-ann-b"]`)
	// No second announcement came between the two answers.
	c.Expect(`433[{"error":"too many rooms","ok":false}]`)
}

// TestRoomBurstKeepsReaders: a server-side publisher sends 20,000 messages
// of 1 KB to a room within 0.5 s (stretched under -race). The member that
// keeps reading gets every message in order (the old engine dropped it at
// 1,024 queued messages); the member that never reads is dropped as slow;
// the heap stays under a bound set by the hard cap of the stalled member's
// backlog.
func TestRoomBurstKeepsReaders(t *testing.T) {
	h := tutorialHandler("burst-room")
	h.Auth = nil
	_, wsBase, logs := serveObserved(t, h)
	join := func() *wsClient {
		c := dial(t, wsBase, url.Values{"roomNumber": {"9"}})
		c.Send("40")
		c.ExpectPrefix(`40{"sid":"`)
		c.ExpectPrefix(`42["room-userId"`)
		c.ExpectPrefix(`42["message_from_server"`)
		return c
	}
	fast := join()
	stalled := join()
	_ = stalled                           // never read from again
	fast.ExpectPrefix(`42["room-userId"`) // the stalled member's join

	const n = 20_000
	payload := strings.Repeat("x", 1000)
	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan int, 1)
	go func() {
		// The fast member reads everything, checking the order.
		got := 0
		for got < n {
			f, err := fast.Recv(20 * time.Second) // pings are answered by its reader
			if err != nil {
				break
			}
			s := f.Data
			want := fmt.Sprintf(`42["burst",%d,"%s"]`, got, payload)
			if s != want {
				t.Errorf("fast member: message %d is %.40q", got, s)
				break
			}
			got++
		}
		done <- got
	}()
	room := h.hub.server.Of("/").To("room-userId-9")
	span := time.Duration(raceSlowdown) * 500 * time.Millisecond
	start := time.Now()
	for i := range n {
		if err := room.Emit("burst", i, payload); err != nil {
			t.Fatalf("emit %d: %v", i, err)
		}
		if i%500 == 499 {
			// Pace the publisher to n messages per span.
			if ahead := time.Duration(i+1)*span/n - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
			// What the server holds (the stalled backlog above all),
			// not the garbage of encoding: measured after a GC.
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.HeapInuse {
				peak = m
			}
		}
	}
	t.Logf("published %d x 1 KB in %v", n, time.Since(start).Round(time.Millisecond))
	select {
	case got := <-done:
		if got != n {
			t.Fatalf("the reading member got %d of %d messages", got, n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reading member did not get every message in 30 s")
	}
	// The engine drops the stalled member on its own timer: its count is
	// polled (bounded), as the engine tells no one but its log.
	deadline := time.Now().Add(10 * time.Second)
	for h.hub.server.ConnCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled member was not dropped: %d connections", h.hub.server.ConnCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if logs.FilterMessageSnippet("slow client").Len() == 0 {
		t.Errorf("the slow client's drop is not in the log")
	}
	growth := int64(peak.HeapInuse) - int64(before.HeapInuse)
	// Each member's backlog is capped at 8 MiB as counted (encoded size
	// plus 64 bytes a message); a broadcast message is also held as its
	// prepared WebSocket frame and its arguments, so a member that is its
	// last holder weighs about three times its count. The stalled member
	// sits at the cap; on a loaded machine the reading one may lag too.
	const bound = 2 * 3 * 8 << 20
	t.Logf("live heap growth at peak: %.1f MiB (bound %d MiB)", float64(growth)/(1<<20), bound>>20)
	if growth > bound {
		t.Errorf("heap grew %d bytes during the burst, bound %d", growth, bound)
	}
}
