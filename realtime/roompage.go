package realtime

import (
	"container/heap"
	"slices"
	"strings"
)

// RoomSize is a room and its number of local sockets.
type RoomSize struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// roomPager is an Adapter that pages through its local rooms without
// copying them all (MemoryAdapter, and the adapters that embed it).
type roomPager interface {
	// RoomPage returns up to limit of the local rooms whose names sort
	// after after, in name order, the sockets' own id-rooms left out,
	// and the number of local rooms.
	RoomPage(after string, limit int) (page []RoomSize, total int)
}

// RoomPage returns up to limit of the local rooms whose names sort after
// after (all of them from the start when after is empty), in name order,
// the sockets' own id-rooms left out, and the number of local rooms. With
// MemoryAdapter (or an adapter embedding it) it walks the rooms once and
// holds at most limit of them, whatever their number; with another
// adapter it lists them all first.
func (n *Namespace) RoomPage(after string, limit int) (page []RoomSize, total int) {
	if limit < 1 {
		return nil, n.RoomCount()
	}
	if rp, ok := n.adapter.(roomPager); ok {
		return rp.RoomPage(after, limit)
	}
	var all []RoomSize
	for room, size := range n.adapter.Rooms() {
		if _, own := n.Socket(room); !own {
			all = append(all, RoomSize{room, size})
		}
	}
	slices.SortFunc(all, func(x, y RoomSize) int { return strings.Compare(x.Name, y.Name) })
	start, _ := slices.BinarySearchFunc(all, after, func(r RoomSize, name string) int { return strings.Compare(r.Name, name) })
	if start < len(all) && all[start].Name == after {
		start++
	}
	return slices.Clone(all[start:min(start+limit, len(all))]), len(all)
}

// RoomPage implements roomPager: one walk over the rooms under the read
// lock, keeping the limit smallest names after after in a max-heap.
func (a *MemoryAdapter) RoomPage(after string, limit int) ([]RoomSize, int) {
	if limit < 1 {
		return nil, a.RoomCount()
	}
	a.mu.RLock()
	total := len(a.rooms)
	h := make(roomHeap, 0, min(limit, total))
	for room, members := range a.rooms {
		if after != "" && room <= after {
			continue
		}
		switch {
		case len(h) < limit:
			heap.Push(&h, RoomSize{room, len(members)})
		case room < h[0].Name:
			h[0] = RoomSize{room, len(members)}
			heap.Fix(&h, 0)
		}
	}
	a.mu.RUnlock()
	page := []RoomSize(h)
	slices.SortFunc(page, func(x, y RoomSize) int { return strings.Compare(x.Name, y.Name) })
	return page, total
}

// roomHeap is a max-heap of rooms by name: its top is the page's last.
type roomHeap []RoomSize

func (h roomHeap) Len() int           { return len(h) }
func (h roomHeap) Less(i, j int) bool { return h[i].Name > h[j].Name }
func (h roomHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *roomHeap) Push(x any)        { *h = append(*h, x.(RoomSize)) }
func (h *roomHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
