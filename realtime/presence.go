package realtime

import (
	"container/list"
	"sync"
	"time"
)

// Presence defaults.
const (
	// DefaultPresenceGrace is how long a key stays online after its last
	// socket is gone, when PresenceOptions.Grace is not set: long enough
	// for a client on a flaky network to come back.
	DefaultPresenceGrace = 15 * time.Second
	// DefaultPresenceMaxBytes bounds what a Presence holds: 16 MiB, some
	// 80,000 keys of 20 bytes.
	DefaultPresenceMaxBytes = 16 << 20
	// DefaultPresenceMaxKeyLength bounds a key, in bytes.
	DefaultPresenceMaxKeyLength = 256
	// presenceKeyOverhead is what one key costs besides its bytes: the map
	// entry, the counter and the list element of the grace queue.
	presenceKeyOverhead = 160
)

// PresenceTracker counts the sockets of each key (a user: a token's
// subject, the user id of the site's authentication) and says when a key
// comes online and goes offline. Presence is the one for a single node;
// redispresence.Tracker spans the nodes on one Redis.
//
// A tracker spanning nodes implements the same methods with the counts of
// every node: it sums the sockets of a key over the nodes, decides
// "offline" once for the whole cluster when the sum stays at zero for the
// grace, and forgets the sockets of a node that died without saying so (a
// heartbeat per node). Presence has none of that.
type PresenceTracker interface {
	// Add counts one more socket for key; false when the key is not
	// tracked (too long, or the tracker is full), and then Remove must
	// not be called for it.
	Add(key string) bool
	// Remove counts one socket of key less.
	Remove(key string)
	// Online reports whether key is online: it has sockets, or lost its
	// last one less than the grace ago.
	Online(key string) bool
	// Close reports every key still online offline and stops the
	// tracker; nothing is reported after it.
	Close()
}

// PresenceOptions configure a Presence.
type PresenceOptions struct {
	// Grace is how long a key whose last socket is gone stays online: a
	// socket of it that comes back within the grace (a reconnect, a
	// recovered session) means it never went offline. Default: 15s.
	Grace time.Duration
	// MaxBytes bounds the memory of the keys tracked (each costs its
	// length plus about 160 bytes): a new key beyond it is not tracked
	// (Add returns false) until others have gone offline. Default: 16 MiB.
	MaxBytes int64
	// MaxKeyLength bounds a key, in bytes; a longer one is not tracked.
	// Default: 256.
	MaxKeyLength int
	// OnOnline is called when key gets its first socket, OnOffline when
	// its last socket has been gone for Grace. Each transition is reported
	// once and in order: they are called with the tracker's lock held, so
	// they must not block nor call the tracker (queue the work instead).
	OnOnline  func(key string)
	OnOffline func(key string)
}

// Presence is the PresenceTracker of one node. It holds one entry per key
// with sockets or within its grace, and a single timer for all graces
// (they all last the same, so the keys waiting are in the order they
// expire): what it holds is bounded by MaxBytes, whatever the clients do.
type Presence struct {
	clock clock
	now   func() time.Time

	mu      sync.Mutex
	opts    PresenceOptions
	keys    map[string]*presenceKey
	waiting list.List // *presenceKey with no socket, oldest first
	bytes   int64
	timer   stopTimer // armed while waiting is not empty
	closed  bool
}

// presenceKey is one key's count.
type presenceKey struct {
	key     string
	sockets int
	goneAt  time.Time     // when sockets fell to zero
	elem    *list.Element // in Presence.waiting while sockets is zero
}

// NewPresence returns a Presence.
func NewPresence(opts PresenceOptions) *Presence {
	p := &Presence{clock: realClock{}, now: time.Now, keys: make(map[string]*presenceKey)}
	p.opts = opts.withDefaults()
	return p
}

func (o PresenceOptions) withDefaults() PresenceOptions {
	if o.Grace <= 0 {
		o.Grace = DefaultPresenceGrace
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultPresenceMaxBytes
	}
	if o.MaxKeyLength <= 0 {
		o.MaxKeyLength = DefaultPresenceMaxKeyLength
	}
	return o
}

// SetOptions replaces the options (a configuration reload). Keys already
// waiting keep the grace they started with; the bound applies to new keys.
func (p *Presence) SetOptions(opts PresenceOptions) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opts = opts.withDefaults()
}

func keyCost(key string) int64 { return int64(len(key)) + presenceKeyOverhead }

// Add implements PresenceTracker.
func (p *Presence) Add(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || key == "" || len(key) > p.opts.MaxKeyLength {
		return false
	}
	if k := p.keys[key]; k != nil {
		if k.sockets == 0 {
			// Back within the grace: it never went offline.
			p.waiting.Remove(k.elem)
			k.elem = nil
		}
		k.sockets++
		return true
	}
	cost := keyCost(key)
	if p.bytes+cost > p.opts.MaxBytes {
		return false
	}
	p.bytes += cost
	p.keys[key] = &presenceKey{key: key, sockets: 1}
	if fn := p.opts.OnOnline; fn != nil {
		fn(key)
	}
	return true
}

// Remove implements PresenceTracker.
func (p *Presence) Remove(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[key]
	if k == nil || k.sockets == 0 || p.closed {
		return
	}
	k.sockets--
	if k.sockets > 0 {
		return
	}
	k.goneAt = p.now()
	k.elem = p.waiting.PushBack(k)
	if p.timer == nil {
		p.armLocked(p.opts.Grace)
	}
}

// armLocked starts the timer that ends the oldest grace. p.mu is held.
func (p *Presence) armLocked(d time.Duration) {
	p.timer = p.clock.AfterFunc(d, p.expire)
}

// expire reports the keys whose grace is over and arms the timer for the
// next one.
func (p *Presence) expire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed {
		return
	}
	now := p.now()
	grace := p.opts.Grace
	for e := p.waiting.Front(); e != nil; e = p.waiting.Front() {
		k := e.Value.(*presenceKey)
		if left := k.goneAt.Add(grace).Sub(now); left > 0 {
			p.armLocked(left)
			return
		}
		p.waiting.Remove(e)
		delete(p.keys, k.key)
		p.bytes -= keyCost(k.key)
		if fn := p.opts.OnOffline; fn != nil {
			fn(k.key)
		}
	}
}

// Online implements PresenceTracker.
func (p *Presence) Online(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.keys[key]
	return ok
}

// Len is the number of keys online (within their grace included).
func (p *Presence) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.keys)
}

// Bytes is what the keys cost, as MaxBytes counts it.
func (p *Presence) Bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// Close implements PresenceTracker. Every key still online is reported
// offline at once (those waiting out their grace first, oldest first): the
// node holding their sockets is going away. It is idempotent.
func (p *Presence) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	fn := p.opts.OnOffline
	for e := p.waiting.Front(); e != nil; e = e.Next() {
		k := e.Value.(*presenceKey)
		delete(p.keys, k.key)
		if fn != nil {
			fn(k.key)
		}
	}
	p.waiting.Init()
	for key := range p.keys {
		if fn != nil {
			fn(key)
		}
	}
	clear(p.keys)
	p.bytes = 0
}

var _ PresenceTracker = (*Presence)(nil)
