package realtime

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkEmitRecorded measures what recovery adds to an emit before any
// delivery (a room nobody is in): with it off, the adapter's encoding;
// with it on, the offset, the store's own encoding and the append under
// the namespace's lock. It reports the bytes the store counts per event.
func BenchmarkEmitRecorded(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprint("recovery=", on), func(b *testing.B) {
			var st *MemoryRecoveryStore
			opts := Options{}
			if on {
				opts.Recovery = &RecoveryOptions{BufferBytes: 1 << 30, NewStore: func(o RecoveryOptions) RecoveryStore {
					st = NewMemoryRecoveryStore(o)
					return st
				}}
			}
			srv := NewServer(opts)
			defer srv.Close()
			op := srv.Of("/").To("room")
			payload := map[string]any{"text": "hello from the benchmark", "n": 42}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := op.Emit("msg", payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if st != nil {
				b.ReportMetric(float64(st.Bytes())/float64(b.N), "store-B/event")
			}
		})
	}
}

// TestRecoverySessionHeap compares what 10,000 kept sessions cost on the
// heap with what the store counts against its bound, so the bound stays
// honest (the count may be under the real cost by a fifth at most).
func TestRecoverySessionHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap: not in the fast loop")
	}
	const n = 10_000
	st := NewMemoryRecoveryStore(RecoveryOptions{SessionBytes: 1 << 30})
	defer st.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		st.Save(&RecoverySession{Namespace: "/", ID: fmt.Sprintf("%020d", i), PID: fmt.Sprintf("p%019d", i),
			Rooms: []string{fmt.Sprintf("%020d", i), "room-a", "room-b"}, Data: map[string]any{"user": fmt.Sprint("u", i)}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / n
	counted := float64(st.Bytes()) / n
	t.Logf("session: %.0f heap bytes, %.0f counted", heap, counted)
	if counted < heap*0.8 {
		t.Fatalf("the store counts %.0f bytes a session that costs %.0f", counted, heap)
	}
}

// TestRecoveryEventHeap is TestRecoverySessionHeap for buffered events.
func TestRecoveryEventHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap: not in the fast loop")
	}
	const n = 10_000
	srv := NewServer(Options{Recovery: &RecoveryOptions{BufferBytes: 1 << 30}})
	defer srv.Close()
	_, st := srv.recovery()
	op := srv.Of("/").To("room")
	payload := map[string]any{"text": "hello from the test", "n": 42}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if err := op.Emit("msg", payload); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / n
	counted := float64(st.(*MemoryRecoveryStore).Bytes()) / n
	t.Logf("event: %.0f heap bytes, %.0f counted", heap, counted)
	if counted < heap*0.8 {
		t.Fatalf("the store counts %.0f bytes an event that costs %.0f", counted, heap)
	}
}
