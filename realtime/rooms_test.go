package realtime

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// otherAdapter hides the MemoryAdapter type, so Join takes the path for
// adapters that cannot bound the count themselves.
type otherAdapter struct{ Adapter }

// connectedSocket connects one raw client to "/" and returns its server
// socket.
func connectedSocket(t *testing.T, opts func(*Options)) *Socket {
	t.Helper()
	got := make(chan *Socket, 1)
	_, ts := newTestServerWith(t, opts, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) { got <- s })
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	return <-got
}

func TestJoinLimits(t *testing.T) {
	t.Parallel()
	adapters := map[string]func(*Options){
		"memory": nil,
		"other": func(o *Options) {
			o.NewAdapter = func(n *Namespace) Adapter { return otherAdapter{NewMemoryAdapter(n)} }
		},
	}
	for name, opts := range adapters {
		t.Run(name, func(t *testing.T) {
			var limits []string
			s := connectedSocket(t, func(o *Options) {
				if opts != nil {
					opts(o)
				}
				o.OnLimited = func(_ *Socket, l string) { limits = append(limits, l) }
			})
			rooms := func() int { return len(s.Rooms()) - 1 } // without the id-room
			for i := range DefaultMaxRoomsPerSocket {
				if err := s.Join(fmt.Sprintf("r%d", i)); err != nil {
					t.Fatalf("join %d: %v", i+1, err)
				}
			}
			err := s.Join("one-more")
			if !errors.Is(err, ErrTooManyRooms) {
				t.Fatalf("join 257: %v, want ErrTooManyRooms", err)
			}
			if !strings.HasPrefix(err.Error(), "joining rooms: too many rooms") {
				t.Errorf("error reads %q", err)
			}
			if n := rooms(); n != DefaultMaxRoomsPerSocket {
				t.Fatalf("%d rooms after the refused join", n)
			}
			// Rooms it is in, its id-room, repeats: no-ops, not counted.
			if err := s.Join("r0", "r255", s.ID(), "r0"); err != nil {
				t.Fatalf("re-join: %v", err)
			}
			if n := rooms(); n != DefaultMaxRoomsPerSocket {
				t.Fatalf("%d rooms after re-joining", n)
			}
			// All or nothing: one known and one new room join neither.
			s.Leave("r0")
			if err := s.Join("r1", "new-a", "new-b"); !errors.Is(err, ErrTooManyRooms) {
				t.Fatalf("join over the bound by one: %v", err)
			}
			if err := s.Join("new-a", "r1", "new-a"); err != nil {
				t.Fatalf("join into the freed place: %v", err)
			}
			if n := rooms(); n != DefaultMaxRoomsPerSocket {
				t.Fatalf("%d rooms, want %d", n, DefaultMaxRoomsPerSocket)
			}
			s.Leave("new-a")
			if err := s.Join(strings.Repeat("x", DefaultMaxRoomNameLength+1)); !errors.Is(err, ErrRoomNameTooLong) {
				t.Fatalf("257-byte room name: %v, want ErrRoomNameTooLong", err)
			}
			if err := s.Join(strings.Repeat("x", DefaultMaxRoomNameLength)); err != nil {
				t.Fatalf("256-byte room name: %v", err)
			}
			if len(limits) != 3 || limits[0] != LimitRooms {
				t.Errorf("OnLimited calls %v, want 3 rooms", limits)
			}
			s.Disconnect(false)
			if err := s.Join("late"); !errors.Is(err, ErrSocketClosed) {
				t.Fatalf("join after disconnect: %v", err)
			}
		})
	}
}

// TestJoinConcurrent: Joins racing on one socket never pass the bound
// together.
func TestJoinConcurrent(t *testing.T) {
	for _, name := range []string{"memory", "other"} {
		t.Run(name, func(t *testing.T) {
			s := connectedSocket(t, func(o *Options) {
				o.MaxRoomsPerSocket = 20
				if name == "other" {
					o.NewAdapter = func(n *Namespace) Adapter { return otherAdapter{NewMemoryAdapter(n)} }
				}
			})
			var (
				wg sync.WaitGroup
				ok atomic.Int64
			)
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if s.Join(fmt.Sprintf("c%d", i)) == nil {
						ok.Add(1)
					}
				}()
			}
			wg.Wait()
			if n := ok.Load(); n != 20 || len(s.Rooms()) != 21 {
				t.Fatalf("%d joins succeeded, socket in %d rooms; want 20 and 21", n, len(s.Rooms()))
			}
		})
	}
}

func TestJoinUnbounded(t *testing.T) {
	s := connectedSocket(t, func(o *Options) { o.MaxRoomsPerSocket = -1; o.MaxRoomNameLength = -1 })
	for i := range 300 {
		if err := s.Join(fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Join(strings.Repeat("y", 1000)); err != nil {
		t.Fatal(err)
	}
}
