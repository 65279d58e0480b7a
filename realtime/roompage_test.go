package realtime

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// listedAdapter hides MemoryAdapter's RoomPage and RoomCount, as a
// third-party adapter would not have them: Namespace.RoomPage then lists
// the rooms and pages through the copy.
type listedAdapter struct{ Adapter }

// TestRoomPage pages through 250 rooms 100 at a time, with the adapter's
// bounded walk and with the fallback of other adapters: name order, sizes,
// the total, an after that is no room's name, the end, and no socket's
// own id-room among them.
func TestRoomPage(t *testing.T) {
	t.Parallel()
	for _, listed := range []bool{false, true} {
		t.Run(fmt.Sprintf("listed=%v", listed), func(t *testing.T) {
			srv := NewServer(Options{NewAdapter: func(n *Namespace) Adapter {
				if listed {
					return listedAdapter{NewMemoryAdapter(n)}
				}
				return NewMemoryAdapter(n)
			}})
			t.Cleanup(func() { srv.Close() })
			nsp := srv.Of("/")
			var want []RoomSize
			for i := range 250 {
				want = append(want, RoomSize{fmt.Sprintf("room-%03d", i), i%4 + 1})
			}
			for _, i := range rand.Perm(len(want)) {
				for k := range want[i].Size {
					// Made-up socket ids: none is a connected socket, so
					// only the bounded walk leaves their id-rooms out.
					nsp.adapter.AddAll(fmt.Sprintf("s%d", k), []string{want[i].Name})
				}
			}
			if listed {
				// The fallback tells id-rooms apart by the connected
				// sockets, and these made-up ids are none: their rooms
				// are listed.
				for k := range 4 {
					want = append(want, RoomSize{fmt.Sprintf("s%d", k), 1})
				}
				slices.SortFunc(want, func(x, y RoomSize) int { return strings.Compare(x.Name, y.Name) })
			}
			var got []RoomSize
			after := ""
			for pages := 0; ; pages++ {
				if pages > 3 {
					t.Fatal("more than 3 pages of 100")
				}
				page, total := nsp.RoomPage(after, 100)
				if total != len(want) {
					t.Fatalf("total %d, want %d", total, len(want))
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].Name
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages listed %d rooms, want %d in name order: first %v, last %v", len(got), len(want), got[:3], got[len(got)-3:])
			}
			if page, _ := nsp.RoomPage("room-0995", 2); len(page) != 2 || page[0].Name != "room-100" || page[1].Name != "room-101" {
				t.Errorf("after a name between rooms: %v", page)
			}
			if page, _ := nsp.RoomPage("~", 10); len(page) != 0 {
				t.Errorf("after every name: %v", page)
			}
			if page, total := nsp.RoomPage("", 0); page != nil || total != len(want) {
				t.Errorf("limit 0: %v, %d", page, total)
			}
		})
	}
}

// BenchmarkRoomPage: a page of 100 of 100,000 rooms, against copying the
// room map as Rooms does (what the admin API's hub detail did before).
func BenchmarkRoomPage(b *testing.B) {
	srv := NewServer(Options{})
	b.Cleanup(func() { srv.Close() })
	nsp := srv.Of("/")
	for i := range 100_000 {
		nsp.adapter.AddAll(fmt.Sprintf("s%d", i%1000), []string{fmt.Sprintf("room-%06d", i)})
	}
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if page, total := nsp.RoomPage("room-050000", 100); len(page) != 100 || total != 100_000 {
				b.Fatal(len(page), total)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(nsp.Rooms()) != 101_000 {
				b.Fatal("rooms")
			}
		}
	})
}
