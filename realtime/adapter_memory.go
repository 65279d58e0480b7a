package realtime

import (
	"context"
	"fmt"
	"iter"
	"slices"
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
	sids  map[string]*roomSet            // socket id -> rooms besides its id-room (nil until it joins one)
}

// NewMemoryAdapter returns an in-memory Adapter for n.
func NewMemoryAdapter(n *Namespace) *MemoryAdapter {
	return &MemoryAdapter{
		nsp:   n,
		rooms: make(map[string]map[string]struct{}),
		sids:  make(map[string]*roomSet),
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
			mine = &roomSet{}
			a.sids[id] = mine
		}
		if mine.add(r) && track {
			joined = append(joined, r)
		}
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
		n := mine.len()
		var seen map[string]struct{} // new rooms named more than once
		for _, r := range rooms {
			if r == id {
				continue
			}
			if mine.has(r) {
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
	had := a.sids[id].del(room)
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
		left = make([]string, 0, 1+mine.len())
		left = append(left, id)
	}
	for r := range mine.all() {
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
	rooms := make([]string, 0, 1+mine.len())
	rooms = append(rooms, id)
	for r := range mine.all() {
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

// RoomCount is the number of local rooms, the sockets' own id-rooms left
// out (they are not kept as rooms here).
func (a *MemoryAdapter) RoomCount() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.rooms)
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

// roomSetSmall is how many rooms a roomSet keeps in its slice before it
// moves them to a map.
const roomSetSmall = 8

// roomSet is the rooms of one socket besides its id-room. Most sockets are
// in one room or a few: a short slice, scanned, costs an idle socket
// about 50 bytes where a map of one entry costs about 200. Past
// roomSetSmall rooms it is a map, so a socket in many rooms
// (MaxRoomsPerSocket may be off) joins and leaves in constant time. The
// methods take a nil set as empty (has, len, all, del).
type roomSet struct {
	few  []string
	many map[string]struct{}
}

func (s *roomSet) len() int {
	if s == nil {
		return 0
	}
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

func (s *roomSet) has(r string) bool {
	if s == nil {
		return false
	}
	if s.many != nil {
		_, in := s.many[r]
		return in
	}
	return slices.Contains(s.few, r)
}

// add adds r; false if it was there.
func (s *roomSet) add(r string) bool {
	if s.has(r) {
		return false
	}
	switch {
	case s.many != nil:
		s.many[r] = struct{}{}
	case len(s.few) < roomSetSmall:
		s.few = append(s.few, r)
	default:
		s.many = make(map[string]struct{}, 2*roomSetSmall)
		for _, x := range s.few {
			s.many[x] = struct{}{}
		}
		s.many[r] = struct{}{}
		s.few = nil
	}
	return true
}

// del removes r; false if it was not there.
func (s *roomSet) del(r string) bool {
	if s == nil {
		return false
	}
	if s.many != nil {
		_, in := s.many[r]
		delete(s.many, r)
		return in
	}
	i := slices.Index(s.few, r)
	if i < 0 {
		return false
	}
	s.few = slices.Delete(s.few, i, i+1)
	return true
}

// all yields the rooms; the set must not change meanwhile.
func (s *roomSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if s == nil {
			return
		}
		if s.many != nil {
			for r := range s.many {
				if !yield(r) {
					return
				}
			}
			return
		}
		for _, r := range s.few {
			if !yield(r) {
				return
			}
		}
	}
}
