package realtime

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// MemoryAdapter keeps the rooms of a namespace in this process. It is the
// default Adapter, and the local half of a cluster adapter, which embeds
// it. It uses only the package's exported API (the namespace's
// LocalSockets, DeliverLocal and NextAckID), so it could live outside.
//
// Every socket is in a room named by its id. That room is implicit: it is
// not stored, so a socket that joins nothing else costs one map entry
// (idle connections are most of a server's connections).
type MemoryAdapter struct {
	nsp *Namespace

	mu    sync.RWMutex
	rooms map[string]map[string]struct{} // room -> socket ids, id-rooms excluded
	sids  map[string]map[string]struct{} // socket id -> rooms besides its id-room (nil until it joins one)
}

// NewMemoryAdapter returns an in-memory Adapter for n.
func NewMemoryAdapter(n *Namespace) *MemoryAdapter {
	return &MemoryAdapter{
		nsp:   n,
		rooms: make(map[string]map[string]struct{}),
		sids:  make(map[string]map[string]struct{}),
	}
}

// AddAll implements Adapter.
func (a *MemoryAdapter) AddAll(id string, rooms []string) {
	w := a.watcher()
	a.mu.Lock()
	joined := a.addAllLocked(id, rooms, w != nil)
	a.mu.Unlock()
	a.tellJoined(w, id, joined)
}

// addAllLocked adds id to rooms; with track, it returns the rooms id was
// not in before (its id-room first when id was unknown), for the Watcher.
func (a *MemoryAdapter) addAllLocked(id string, rooms []string, track bool) (joined []string) {
	mine, known := a.sids[id]
	if !known {
		a.sids[id] = nil
		if track {
			joined = append(joined, id)
		}
	}
	for _, r := range rooms {
		if r == id {
			continue
		}
		if mine == nil {
			mine = make(map[string]struct{}, len(rooms))
			a.sids[id] = mine
		}
		if track {
			if _, in := mine[r]; !in {
				joined = append(joined, r)
			}
		}
		mine[r] = struct{}{}
		members := a.rooms[r]
		if members == nil {
			members = make(map[string]struct{}, 1)
			a.rooms[r] = members
		}
		members[id] = struct{}{}
	}
	return joined
}

// watcher is the Watcher of the namespace's server, or nil.
func (a *MemoryAdapter) watcher() Watcher {
	if a.nsp == nil || a.nsp.srv == nil {
		return nil
	}
	return a.nsp.srv.watcher()
}

// tellJoined and tellLeft tell w (when set) of room changes, once a.mu is
// released.
func (a *MemoryAdapter) tellJoined(w Watcher, id string, rooms []string) {
	for _, r := range rooms {
		w.RoomJoined(a.nsp, r, id)
	}
}

func (a *MemoryAdapter) tellLeft(w Watcher, id string, rooms []string) {
	for _, r := range rooms {
		w.RoomLeft(a.nsp, r, id)
	}
}

// AddAllBounded implements BoundedAdder: count and add happen under one
// lock, so concurrent Joins cannot both pass the bound.
func (a *MemoryAdapter) AddAllBounded(id string, rooms []string, limit int) error {
	w := a.watcher()
	a.mu.Lock()
	if limit >= 0 {
		mine := a.sids[id]
		n := len(mine)
		var seen map[string]struct{} // new rooms named more than once
		for _, r := range rooms {
			if r == id {
				continue
			}
			if _, in := mine[r]; in {
				continue
			}
			if len(rooms) > 1 {
				if _, dup := seen[r]; dup {
					continue
				}
				if seen == nil {
					seen = make(map[string]struct{}, len(rooms))
				}
				seen[r] = struct{}{}
			}
			n++
		}
		if n > limit {
			a.mu.Unlock()
			return fmt.Errorf("joining rooms: %w (%d, at most %d)", ErrTooManyRooms, n, limit)
		}
	}
	joined := a.addAllLocked(id, rooms, w != nil)
	a.mu.Unlock()
	a.tellJoined(w, id, joined)
	return nil
}

// Del implements Adapter. A socket stays in its own id-room.
func (a *MemoryAdapter) Del(id, room string) {
	w := a.watcher()
	a.mu.Lock()
	_, had := a.sids[id][room]
	if mine := a.sids[id]; mine != nil {
		delete(mine, room)
	}
	a.delFromRoom(id, room)
	a.mu.Unlock()
	if had && w != nil {
		w.RoomLeft(a.nsp, room, id)
	}
}

func (a *MemoryAdapter) delFromRoom(id, room string) {
	if members := a.rooms[room]; members != nil {
		delete(members, id)
		if len(members) == 0 {
			delete(a.rooms, room)
		}
	}
}

// DelAll implements Adapter.
func (a *MemoryAdapter) DelAll(id string) {
	w := a.watcher()
	a.mu.Lock()
	mine, known := a.sids[id]
	var left []string
	if known && w != nil {
		left = make([]string, 0, 1+len(mine))
		left = append(left, id)
	}
	for r := range mine {
		a.delFromRoom(id, r)
		if w != nil {
			left = append(left, r)
		}
	}
	delete(a.sids, id)
	a.mu.Unlock()
	if w != nil {
		a.tellLeft(w, id, left)
	}
}

// Sockets implements Adapter.
func (a *MemoryAdapter) Sockets(rooms []string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var ids []string
	a.each(BroadcastOptions{Rooms: rooms}, func(id string) { ids = append(ids, id) })
	return ids
}

// SocketRooms implements Adapter: the socket's id-room first.
func (a *MemoryAdapter) SocketRooms(id string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	mine, known := a.sids[id]
	if !known {
		return nil
	}
	rooms := make([]string, 0, 1+len(mine))
	rooms = append(rooms, id)
	for r := range mine {
		rooms = append(rooms, r)
	}
	return rooms
}

// HasRoom reports whether room has a local member (a socket id is the room
// of its socket).
func (a *MemoryAdapter) HasRoom(room string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if _, isSocket := a.sids[room]; isSocket {
		return true
	}
	return len(a.rooms[room]) > 0
}

// Rooms implements Adapter; each socket's id-room counts as a room of one.
func (a *MemoryAdapter) Rooms() map[string]int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[string]int, len(a.rooms)+len(a.sids))
	for id := range a.sids {
		out[id] = 1
	}
	for r, m := range a.rooms {
		out[r] = len(m)
	}
	return out
}

// members calls fn for every socket in room r, its id-room included.
// a.mu must be held.
func (a *MemoryAdapter) members(r string, fn func(id string)) {
	if _, isSocket := a.sids[r]; isSocket {
		fn(r)
	}
	for id := range a.rooms[r] {
		fn(id)
	}
}

// each calls fn for every selected socket id, each once. a.mu must be held.
func (a *MemoryAdapter) each(opts BroadcastOptions, fn func(id string)) {
	var except map[string]struct{}
	if len(opts.Except) > 0 {
		except = make(map[string]struct{})
		for _, r := range opts.Except {
			a.members(r, func(id string) { except[id] = struct{}{} })
		}
	}
	if len(opts.Rooms) == 0 {
		for id := range a.sids {
			if _, skip := except[id]; !skip {
				fn(id)
			}
		}
		return
	}
	if len(opts.Rooms) == 1 {
		a.members(opts.Rooms[0], func(id string) {
			if _, skip := except[id]; !skip {
				fn(id)
			}
		})
		return
	}
	seen := make(map[string]struct{})
	for _, r := range opts.Rooms {
		a.members(r, func(id string) {
			if _, dup := seen[id]; dup {
				return
			}
			seen[id] = struct{}{}
			if _, skip := except[id]; !skip {
				fn(id)
			}
		})
	}
}

// selected returns the local sockets that opts selects. It collects their
// ids under the adapter's lock and looks them up after releasing it, so
// that the namespace's lock is never taken under the adapter's (see
// Adapter).
func (a *MemoryAdapter) selected(opts BroadcastOptions) []*Socket {
	return a.nsp.LocalSockets(a.Select(opts))
}

// Select lists the ids of the local sockets that opts selects, each once.
func (a *MemoryAdapter) Select(opts BroadcastOptions) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var ids []string
	a.each(opts, func(id string) { ids = append(ids, id) })
	return ids
}

// Broadcast implements Adapter: the packet is encoded once and the same
// messages are queued on every selected socket.
func (a *MemoryAdapter) Broadcast(p *parser.Packet, opts BroadcastOptions) error {
	msgs, err := EncodeBroadcast(p)
	if err != nil {
		return err
	}
	data, _ := p.Data.([]any)
	a.nsp.DeliverLocal(a.Select(opts), Delivery{Messages: msgs, Volatile: opts.Flags.Volatile, Event: data})
	return nil
}

// BroadcastWithAck implements Adapter.
func (a *MemoryAdapter) BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, onClientCount func(int), onAck func([]any)) error {
	sent, err := a.BroadcastWithAckLocal(p, opts, onAck)
	if err != nil {
		return err
	}
	onClientCount(sent)
	return nil
}

// BroadcastWithAckLocal sends p, with a new ack id, to the selected local
// sockets and returns how many it was sent to; onAck gets each answer
// until opts.Flags.Timeout passes (for cluster adapters, which sum the
// counts of every node).
func (a *MemoryAdapter) BroadcastWithAckLocal(p *parser.Packet, opts BroadcastOptions, onAck func([]any)) (int, error) {
	p.ID = a.nsp.NextAckID()
	msgs, err := EncodeBroadcast(p)
	if err != nil {
		return 0, err
	}
	data, _ := p.Data.([]any)
	return a.nsp.DeliverLocal(a.Select(opts), Delivery{
		Messages:   msgs,
		Volatile:   opts.Flags.Volatile,
		AckID:      p.ID,
		OnAck:      onAck,
		AckTimeout: opts.Flags.Timeout,
		Event:      data,
	}), nil
}

// AllRooms implements Adapter: the local rooms.
func (a *MemoryAdapter) AllRooms(context.Context) ([]string, error) {
	rooms := a.Rooms()
	out := make([]string, 0, len(rooms))
	for r := range rooms {
		out = append(out, r)
	}
	return out, nil
}

// FetchSockets implements Adapter.
func (a *MemoryAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	targets := a.selected(opts)
	out := make([]SocketInfo, 0, len(targets))
	for _, s := range targets {
		out = append(out, s.Info())
	}
	return out, nil
}

// AddSockets implements Adapter. A socket that may not join (too many
// rooms, a name too long) is left as it is.
func (a *MemoryAdapter) AddSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, s := range a.selected(opts) {
		_ = s.Join(rooms...)
	}
	return nil
}

// DelSockets implements Adapter.
func (a *MemoryAdapter) DelSockets(_ context.Context, opts BroadcastOptions, rooms []string) error {
	for _, s := range a.selected(opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
	return nil
}

// DisconnectSockets implements Adapter.
func (a *MemoryAdapter) DisconnectSockets(_ context.Context, opts BroadcastOptions, close bool) error {
	for _, s := range a.selected(opts) {
		s.Disconnect(close)
	}
	return nil
}

// ServerSideEmit implements Adapter: one process has no other node.
func (a *MemoryAdapter) ServerSideEmit(context.Context, []any, func(any)) error { return nil }

// Close implements Adapter.
func (a *MemoryAdapter) Close() error { return nil }

var (
	_ Adapter      = (*MemoryAdapter)(nil)
	_ BoundedAdder = (*MemoryAdapter)(nil)
)
