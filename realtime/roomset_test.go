package realtime

import (
	"slices"
	"strconv"
	"testing"
)

// TestRoomSet: a socket's rooms stay a set across the move from the slice
// to the map (adds of a room already there report false, deletes of one
// not there too), and the memory adapter lists, counts and leaves them the
// same on either side of roomSetSmall.
func TestRoomSet(t *testing.T) {
	for _, n := range []int{1, roomSetSmall, roomSetSmall + 1, 3 * roomSetSmall} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			var s *roomSet
			if s.len() != 0 || s.has("a") || s.del("a") {
				t.Fatal("a nil set is not empty")
			}
			s = &roomSet{}
			for i := range n {
				r := "r" + strconv.Itoa(i)
				if !s.add(r) || s.add(r) {
					t.Fatalf("add %s: not new once, then not old", r)
				}
			}
			if s.len() != n {
				t.Fatalf("len %d, want %d", s.len(), n)
			}
			got := slices.Sorted(s.all())
			if len(got) != n {
				t.Fatalf("all yields %d rooms, want %d", len(got), n)
			}
			for i := 0; i < n; i += 2 {
				r := "r" + strconv.Itoa(i)
				if !s.del(r) || s.del(r) || s.has(r) {
					t.Fatalf("del %s: not there once, or still there", r)
				}
			}
			if want := n / 2; s.len() != want {
				t.Fatalf("len %d after deleting the even rooms, want %d", s.len(), want)
			}

			a := NewMemoryAdapter(nil)
			var rooms []string
			for i := range n {
				rooms = append(rooms, "room"+strconv.Itoa(i))
			}
			a.AddAll("s1", append(slices.Clone(rooms), rooms[0], "s1"))
			if got := a.SocketRooms("s1"); len(got) != n+1 || got[0] != "s1" {
				t.Fatalf("SocketRooms = %v", got)
			}
			if err := a.AddAllBounded("s1", []string{"extra", "extra"}, n+1); err != nil {
				t.Fatalf("one more room within the bound: %v", err)
			}
			if err := a.AddAllBounded("s1", []string{"over"}, n+1); err == nil {
				t.Fatal("a room over the bound was added")
			}
			a.Del("s1", rooms[0])
			if got := a.Sockets([]string{rooms[0]}); len(got) != 0 {
				t.Fatalf("left room still lists %v", got)
			}
			if got := a.Sockets([]string{rooms[n-1]}); n > 1 && !slices.Equal(got, []string{"s1"}) {
				t.Fatalf("room %s lists %v", rooms[n-1], got)
			}
			a.DelAll("s1")
			if len(a.Rooms()) != 0 {
				t.Fatalf("rooms after DelAll: %v", a.Rooms())
			}
		})
	}
}
