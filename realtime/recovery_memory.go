package realtime

import (
	"container/list"
	"encoding/json"
	"sync"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// Costs the memory store counts besides the bytes it keeps.
const (
	// recoveryEntryOverhead is one buffered event's bookkeeping: its
	// entry, its messages' headers, the slack of the growing slice
	// (TestRecoveryEventHeap measures it).
	recoveryEntryOverhead = 160
	// recoverySessionOverhead is one session's bookkeeping, its local
	// value included (TestRecoverySessionHeap measures it: some 700 heap
	// bytes for a session with three rooms and a small data map).
	recoverySessionOverhead = 512
	// recoveryRoomOverhead is one room name's slice header.
	recoveryRoomOverhead = 16
)

// MemoryRecoveryStore is the RecoveryStore of one process: per namespace,
// the events of the last MaxDisconnectionDuration (at most BufferBytes)
// and the sessions of the sockets that dropped (at most SessionBytes).
// One timer drops what is older than the window.
//
// Offsets are a number counted by the store, written in the alphabet of
// Node's offsets (yeast: 0-9A-Za-z-_) after the store's start time, so
// they look like Node's and never repeat within a process.
type MemoryRecoveryStore struct {
	opts  RecoveryOptions
	clock clock
	now   func() time.Time

	mu     sync.Mutex
	seq    uint64 // the last offset given
	base   uint64 // added to seq in the offset's text: the start in ms
	nsps   map[string]*recoveryBuffer
	timer  stopTimer
	closed bool
}

// recoveryBuffer is one namespace's events and sessions.
type recoveryBuffer struct {
	// entries[head:] are the buffered events, oldest first; floor is the
	// newest offset whose event is gone (evicted, or before the buffer
	// existed): an offset at or after it has all its followers here.
	entries []recoveryEntry
	head    int
	floor   uint64
	bytes   int64
	touched time.Time // last event or session

	sessions     map[string]*list.Element // by pid; values *recoverySessionEntry
	order        list.List                // sessions, oldest first
	sessionBytes int64
}

type recoveryEntry struct {
	seq    uint64
	at     time.Time
	rooms  []string
	except []string
	msgs   []*engineio.Message
	size   int64
}

type recoverySessionEntry struct {
	sess *RecoverySession
	size int64
}

// NewMemoryRecoveryStore returns an empty store.
func NewMemoryRecoveryStore(opts RecoveryOptions) *MemoryRecoveryStore {
	now := time.Now()
	return &MemoryRecoveryStore{
		opts:  opts.withDefaults(),
		clock: realClock{},
		now:   time.Now,
		base:  uint64(now.UnixMilli()),
		nsps:  make(map[string]*recoveryBuffer),
	}
}

// SetOptions replaces the window and the bounds (a configuration reload):
// they apply from the next event, session or sweep on; what is over a
// smaller bound goes as new events and sessions come.
func (m *MemoryRecoveryStore) SetOptions(opts RecoveryOptions) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opts = opts.withDefaults()
}

// sweepEvery is how often the store drops what has aged out: a quarter of
// the window, between 1s and 30s (Node sweeps every 60s).
func (m *MemoryRecoveryStore) sweepEvery() time.Duration {
	return min(max(m.opts.MaxDisconnectionDuration/4, time.Second), 30*time.Second)
}

// buffer returns the namespace's buffer, making it. m.mu is held.
func (m *MemoryRecoveryStore) buffer(nsp string) *recoveryBuffer {
	b := m.nsps[nsp]
	if b == nil {
		b = &recoveryBuffer{floor: m.seq, sessions: make(map[string]*list.Element), touched: m.now()}
		m.nsps[nsp] = b
		if m.timer == nil && !m.closed {
			m.timer = m.clock.AfterFunc(m.sweepEvery(), m.sweep)
		}
	}
	return b
}

// Append implements RecoveryStore.
func (m *MemoryRecoveryStore) Append(nsp string, opts BroadcastOptions, encode func(string) ([]*engineio.Message, error)) ([]*engineio.Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	seq := m.seq
	msgs, err := encode(formatOffset(m.base + seq))
	if err != nil || m.closed {
		return msgs, err
	}
	b := m.buffer(nsp)
	e := recoveryEntry{seq: seq, at: m.now(), rooms: opts.Rooms, except: opts.Except, msgs: msgs}
	e.size = recoveryEntryOverhead + roomsCost(opts.Rooms) + roomsCost(opts.Except)
	for _, msg := range msgs {
		e.size += int64(len(msg.Data())) + 1
	}
	b.touched = e.at
	if e.size > m.opts.BufferBytes {
		// Larger than the whole buffer: nothing before it can be
		// replayed any more, and it cannot be either.
		b.dropEntries(len(b.entries) - b.head)
		b.floor = seq
		return msgs, nil
	}
	for b.bytes+e.size > m.opts.BufferBytes {
		b.dropEntries(1)
	}
	b.entries = append(b.entries, e)
	b.bytes += e.size
	return msgs, nil
}

func roomsCost(rooms []string) int64 {
	var n int64
	for _, r := range rooms {
		n += int64(len(r)) + recoveryRoomOverhead
	}
	return n
}

// dropEntries forgets the n oldest events.
func (b *recoveryBuffer) dropEntries(n int) {
	for ; n > 0 && b.head < len(b.entries); n-- {
		e := &b.entries[b.head]
		b.floor = e.seq
		b.bytes -= e.size
		*e = recoveryEntry{}
		b.head++
	}
	if b.head == len(b.entries) {
		b.entries, b.head = b.entries[:0], 0
	} else if b.head > len(b.entries)/2 {
		b.entries = append(b.entries[:0], b.entries[b.head:]...)
		b.head = 0
	}
}

// Save implements RecoveryStore.
func (m *MemoryRecoveryStore) Save(sess *RecoverySession) {
	size := int64(recoverySessionOverhead+len(sess.ID)+len(sess.PID)) + roomsCost(sess.Rooms)
	if len(sess.Data) > 0 {
		if raw, err := json.Marshal(sess.Data); err == nil {
			size += int64(len(raw))
		} else {
			size += 4096 // not JSON: a guess, bounded by SessionBytes anyway
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || size > m.opts.SessionBytes {
		return
	}
	b := m.buffer(sess.Namespace)
	b.touched = m.now()
	sess.DisconnectedAt = b.touched // the store's clock decides the window
	if old, ok := b.sessions[sess.PID]; ok {
		b.removeSession(old)
	}
	for b.sessionBytes+size > m.opts.SessionBytes && b.order.Len() > 0 {
		b.removeSession(b.order.Front())
	}
	b.sessions[sess.PID] = b.order.PushBack(&recoverySessionEntry{sess: sess, size: size})
	b.sessionBytes += size
}

func (b *recoveryBuffer) removeSession(e *list.Element) {
	se := e.Value.(*recoverySessionEntry)
	b.order.Remove(e)
	delete(b.sessions, se.sess.PID)
	b.sessionBytes -= se.size
}

// Take implements RecoveryStore.
func (m *MemoryRecoveryStore) Take(nsp, pid, offset string) (*RecoverySession, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.nsps[nsp]
	if b == nil {
		return nil, false
	}
	e, ok := b.sessions[pid]
	if !ok {
		return nil, false
	}
	sess := e.Value.(*recoverySessionEntry).sess
	if m.now().Sub(sess.DisconnectedAt) > m.opts.MaxDisconnectionDuration {
		return nil, false
	}
	if _, ok := m.after(b, offset); !ok {
		return nil, false
	}
	b.removeSession(e)
	return sess, true
}

// after is the index in b.entries of the first event after offset; false
// when offset is not one this store gave in this namespace's window.
// m.mu is held.
func (m *MemoryRecoveryStore) after(b *recoveryBuffer, offset string) (int, bool) {
	v, ok := parseOffset(offset)
	if !ok || v <= m.base {
		return 0, false
	}
	seq := v - m.base
	if seq > m.seq || seq < b.floor || seq == 0 {
		return 0, false
	}
	for i := b.head; i < len(b.entries); i++ {
		if b.entries[i].seq > seq {
			return i, true
		}
	}
	return len(b.entries), true
}

// Missed implements RecoveryStore.
func (m *MemoryRecoveryStore) Missed(nsp, offset string, rooms []string) ([][]*engineio.Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.nsps[nsp]
	if b == nil {
		return nil, false
	}
	i, ok := m.after(b, offset)
	if !ok {
		return nil, false
	}
	var out [][]*engineio.Message
	for ; i < len(b.entries); i++ {
		if e := &b.entries[i]; reaches(e.rooms, e.except, rooms) {
			out = append(out, e.msgs)
		}
	}
	return out, true
}

// reaches reports whether an event sent to rooms (everyone when empty)
// except the except rooms reached a socket in mine (Node's
// shouldIncludePacket).
func reaches(rooms, except, mine []string) bool {
	for _, r := range except {
		if containsString(mine, r) {
			return false
		}
	}
	if len(rooms) == 0 {
		return true
	}
	for _, r := range rooms {
		if containsString(mine, r) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sweep drops the events and sessions older than the window, and the
// buffers of namespaces left with neither for a whole window.
func (m *MemoryRecoveryStore) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timer = nil
	if m.closed {
		return
	}
	cutoff := m.now().Add(-m.opts.MaxDisconnectionDuration)
	for name, b := range m.nsps {
		n := 0
		for i := b.head; i < len(b.entries) && b.entries[i].at.Before(cutoff); i++ {
			n++
		}
		b.dropEntries(n)
		for e := b.order.Front(); e != nil && e.Value.(*recoverySessionEntry).sess.DisconnectedAt.Before(cutoff); e = b.order.Front() {
			b.removeSession(e)
		}
		if b.head == len(b.entries) && b.order.Len() == 0 && b.touched.Before(cutoff) {
			delete(m.nsps, name)
		}
	}
	if len(m.nsps) > 0 {
		m.timer = m.clock.AfterFunc(m.sweepEvery(), m.sweep)
	}
}

// Bytes is what the store holds, events and sessions, as its bounds count
// it.
func (m *MemoryRecoveryStore) Bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, b := range m.nsps {
		n += b.bytes + b.sessionBytes
	}
	return n
}

// Close implements RecoveryStore: it forgets everything and stops the
// timer.
func (m *MemoryRecoveryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	clear(m.nsps)
	return nil
}

// yeastAlphabet is the alphabet of Node's offsets.
const yeastAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"

// formatOffset writes v in base 64 with yeast's alphabet.
func formatOffset(v uint64) string {
	var buf [11]byte
	i := len(buf)
	for {
		i--
		buf[i] = yeastAlphabet[v%64]
		v /= 64
		if v == 0 {
			break
		}
	}
	return string(buf[i:])
}

// parseOffset reads formatOffset's text; false for anything else (a
// client's bogus offset included).
func parseOffset(s string) (uint64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'A' && c <= 'Z':
			d = uint64(c-'A') + 10
		case c >= 'a' && c <= 'z':
			d = uint64(c-'a') + 36
		case c == '-':
			d = 62
		case c == '_':
			d = 63
		default:
			return 0, false
		}
		v = v*64 + d
	}
	return v, true
}

var _ RecoveryStore = (*MemoryRecoveryStore)(nil)
