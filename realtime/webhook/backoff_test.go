package webhook

import (
	"fmt"
	"testing"
	"time"
)

func TestConnectBackoff(t *testing.T) {
	t.Parallel() // fills a table of backoffMaxEntries: overlaps with the others
	now := time.Unix(1_700_000_000, 0)
	b := NewBackoff()
	b.now = func() time.Time { return now }

	t.Run("one connection", func(t *testing.T) {
		for i := range BackoffFreeConn {
			if d := b.Wait("s1", "10.0.0.1:1000"); d != 0 {
				t.Fatalf("refusal %d: wait %v, want none yet", i, d)
			}
			b.Refused("s1", "10.0.0.1:1000")
		}
		if d := b.Wait("s1", "10.0.0.1:1000"); d != 0 {
			t.Fatalf("after the free refusals: wait %v, want 0", d)
		}
		// Each refusal past the free ones doubles the wait.
		for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
			b.Refused("s1", "10.0.0.1:1000")
			if d := b.Wait("s1", "10.0.0.1:1000"); d != want {
				t.Fatalf("extra refusal %d: wait %v, want %v", i+1, d, want)
			}
		}
		for range 40 {
			b.Refused("s1", "10.0.0.1:1000")
		}
		if d := b.Wait("s1", "10.0.0.1:1000"); d != backoffMax {
			t.Fatalf("after many refusals: wait %v, want the cap %v", d, backoffMax)
		}
		// Another connection from another address is not held back.
		if d := b.Wait("s2", "10.0.0.2:1000"); d != 0 {
			t.Fatalf("another client waits %v", d)
		}
		b.Admitted("s1")
	})

	t.Run("one address, many connections", func(t *testing.T) {
		for i := range BackoffFreeAddr {
			b.Refused(fmt.Sprintf("loop-%d", i), "[2001:db8:1:2::5]:1000")
		}
		b.Refused("loop-last", "[2001:db8:1:2::5]:1000")
		// A new connection from the same /64 waits too.
		if d := b.Wait("fresh", "[2001:db8:1:2:ffff::9]:2000"); d != backoffBase {
			t.Fatalf("new connection from the same /64: wait %v, want %v", d, backoffBase)
		}
		if d := b.Wait("fresh", "[2001:db8:1:3::5]:2000"); d != 0 {
			t.Fatalf("another /64 waits %v", d)
		}
	})

	t.Run("forgotten when quiet", func(t *testing.T) {
		now = now.Add(backoffMax + backoffForget + time.Second)
		b.Refused("s1", "10.0.0.1:1000")
		if d := b.Wait("s1", "10.0.0.1:1000"); d != 0 {
			t.Fatalf("a refusal after a quiet minute: wait %v, want the count restarted", d)
		}
	})

	t.Run("bounded table", func(t *testing.T) {
		b := NewBackoff()
		b.now = func() time.Time { return now }
		for i := range backoffMaxEntries {
			b.Refused(fmt.Sprintf("s%d", i), fmt.Sprintf("10.%d.%d.%d:1", i>>16, (i>>8)&255, i&255))
		}
		if n := len(b.entries); n > backoffMaxEntries {
			t.Fatalf("table holds %d entries, bound %d", n, backoffMaxEntries)
		}
		if !b.full {
			t.Fatal("a full table of live entries is not reported")
		}
		now = now.Add(backoffMax + backoffForget + time.Second)
		b.Refused("late", "192.0.2.1:1")
		if _, ok := b.entries[backoffKeyConn+"late"]; !ok || len(b.entries) > 4 {
			t.Fatalf("after a sweep of the quiet entries: %d entries, late tracked %v", len(b.entries), ok)
		}
	})
}
