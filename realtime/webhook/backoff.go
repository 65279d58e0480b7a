package webhook

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Backoff makes clients whose CONNECT the connect hook refused wait
// before the hook is asked again for them, so that a loop of refused
// CONNECTs (from one connection, or many from one address) cannot keep the
// backend busy. A CONNECT during the wait is refused at once, without a
// call (the module answers "too many refused connects, retry later").
//
// Two keys are tracked: the Engine.IO connection (socket.io-client sends a
// new CONNECT on the same connection when the application calls
// socket.connect() again) and the client address (a loop that opens new
// connections). Each key has a few free refusals, then a wait that doubles
// with every refusal, up to backoffMax; a key is forgotten once it has been
// quiet for backoffForget. The table is bounded in entries (and so in
// bytes: a key is at most an IPv6 prefix or a session id).
type Backoff struct {
	mu        sync.Mutex
	entries   map[string]*backoffEntry
	full      bool      // the table was full of live entries at the last sweep
	lastSweep time.Time // sweeps of a full table are at most one a second
	now       func() time.Time
}

type backoffEntry struct {
	strikes int
	until   time.Time // the hook is not asked before this
	seen    time.Time // the last refusal
}

const (
	backoffBase   = 500 * time.Millisecond
	backoffMax    = 30 * time.Second
	backoffForget = time.Minute
	// BackoffFreeConn is how many refusals one connection gets before it
	// waits, BackoffFreeAddr how many one address gets.
	BackoffFreeConn    = 3
	BackoffFreeAddr    = 20
	backoffMaxEntries  = 1 << 16
	backoffKeyConn     = "c:"
	backoffKeyAddr     = "a:"
	backoffIPv6Network = 64 // IPv6 clients are keyed by their /64
)

// NewBackoff returns an empty backoff table.
func NewBackoff() *Backoff {
	return &Backoff{entries: make(map[string]*backoffEntry), now: time.Now}
}

// Wait returns how long a CONNECT from this connection and address must
// still wait; zero when the hook may be asked.
func (b *Backoff) Wait(sid, addr string) time.Duration {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var d time.Duration
	for _, k := range [...]string{backoffKeyConn + sid, backoffKeyAddr + addrKey(addr)} {
		if e := b.entries[k]; e != nil && e.until.After(now) {
			d = max(d, e.until.Sub(now))
		}
	}
	return d
}

// Refused records a refusal by the hook for this connection and address.
func (b *Backoff) Refused(sid, addr string) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.strike(backoffKeyConn+sid, BackoffFreeConn, now)
	b.strike(backoffKeyAddr+addrKey(addr), BackoffFreeAddr, now)
}

// Admitted forgets a connection's refusals once the hook accepted it (its
// address keeps its own: an accepted client does not clear a neighbour's).
func (b *Backoff) Admitted(sid string) {
	b.mu.Lock()
	delete(b.entries, backoffKeyConn+sid)
	b.mu.Unlock()
}

func (b *Backoff) strike(key string, free int, now time.Time) {
	e := b.entries[key]
	if e == nil {
		if len(b.entries) >= backoffMaxEntries {
			if now.Sub(b.lastSweep) >= time.Second {
				b.sweep(now)
			}
			if len(b.entries) >= backoffMaxEntries {
				// Full of live entries: this key goes untracked rather
				// than evicting one that is being waited out.
				b.full = true
				return
			}
		}
		e = &backoffEntry{}
		b.entries[key] = e
	} else if now.Sub(e.seen) > backoffForget {
		*e = backoffEntry{}
	}
	e.strikes++
	e.seen = now
	if over := e.strikes - free; over > 0 {
		d := backoffMax
		if over <= 16 {
			d = min(backoffBase<<(over-1), backoffMax)
		}
		e.until = now.Add(d)
	}
}

// sweep drops the entries quiet for longer than backoffForget.
func (b *Backoff) sweep(now time.Time) {
	for k, e := range b.entries {
		if now.Sub(e.seen) > backoffForget && !e.until.After(now) {
			delete(b.entries, k)
		}
	}
	b.full = len(b.entries) >= backoffMaxEntries
	b.lastSweep = now
}

// addrKey is the address part of a key: the IP of host:port, IPv6 cut to
// its /64 (one client usually holds a whole /64).
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(backoffIPv6Network); err == nil {
			return p.String()
		}
	}
	return ip.String()
}
