package realtime

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Connection limits: how many connections the server holds, in all and
// per client address, and how fast one address may open them. They are
// checked when an Engine.IO handshake arrives (engineio.Options.AllowRequest):
// a refused handshake gets what Node's engine.io sends when its
// allowRequest refuses one, HTTP 403 {"code":4,"message":"<why>"} (over
// WebSocket, a 403 with the message as its body), so the official client
// reports a connect_error and retries with its backoff. The check reserves
// the counts at once, so concurrent handshakes cannot pass a bound
// together; the new connection takes the reservation over and gives it
// back when it closes.

// Messages of refused handshakes, CONNECTs and emits.
const (
	errServerFull        = "too many connections"
	errTooManyFromIP     = "too many connections from this address"
	errHandshakeRate     = "too many handshakes from this address, retry later"
	errLimitTableFull    = "too many client addresses, retry later"
	errTooManyNamespaces = "too many namespaces"
)

// ErrTooManyPendingAcks is returned by the emits that wait for an
// acknowledgement when the socket already has Options.MaxPendingAcks
// unanswered ones: a client that never answers cannot make the server
// hold callbacks without bound.
var ErrTooManyPendingAcks = errors.New("too many pending acknowledgements")

// ErrTooManyNamespaces is what Observer.OnRefused gets for a CONNECT
// refused by Options.MaxNamespacesPerConn.
var ErrTooManyNamespaces = errors.New(errTooManyNamespaces)

// Defaults of the connection limits that are on unless turned off.
const (
	// DefaultMaxNamespacesPerConn bounds the namespaces one connection is
	// in (or connecting to) at once.
	DefaultMaxNamespacesPerConn = 32
	// DefaultMaxPendingAcks bounds the acknowledgements the server waits
	// for from one socket.
	DefaultMaxPendingAcks = 1000
	// DefaultLimitTableBytes bounds the memory of a table of per-key
	// counts (client addresses, token subjects): about 100,000 keys.
	DefaultLimitTableBytes = 16 << 20
)

// limitTableSweep is how often a table that holds keys looks for idle ones
// to forget: an address with no connection whose handshake bucket is full
// again weighs nothing, and goes.
const limitTableSweep = 10 * time.Second

// keyEntryOverhead is what one key of a table costs besides the key's
// bytes: the map slot and the string header, the pointer, the entry.
const keyEntryOverhead = 128

// KeyTable counts, per key (a client address, a token subject), the
// connections or sockets that hold it, and a token bucket of new ones. Its
// memory is bounded in bytes: a key costs its length plus about 128 bytes,
// and a full table refuses new keys until idle ones are gone. Idle keys (no
// holder, bucket full) are forgotten by a goroutine that runs only while
// the table holds keys, and ends with Close. The zero value is not usable:
// use NewKeyTable.
type KeyTable struct {
	maxBytes int64

	mu        sync.Mutex
	entries   map[string]*keyEntry
	bytes     int64
	running   bool // the sweeper goroutine
	closed    bool
	stop      chan struct{}
	lastSweep time.Time
}

type keyEntry struct {
	held   int
	tokens float64
	last   time.Time
	full   time.Time // when the bucket is full again
}

// Results of KeyTable.Acquire and Allow.
var (
	errKeyLimit  = errors.New("over the key's bound")
	errKeyRate   = errors.New("over the key's rate")
	errTableFull = errors.New("limit table full")
)

// NewKeyTable returns a table bounded to maxBytes (DefaultLimitTableBytes
// when not positive).
func NewKeyTable(maxBytes int64) *KeyTable {
	if maxBytes <= 0 {
		maxBytes = DefaultLimitTableBytes
	}
	return &KeyTable{maxBytes: maxBytes, entries: make(map[string]*keyEntry), stop: make(chan struct{})}
}

// Len is the number of keys held; Bytes their estimated memory.
func (t *KeyTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Bytes is the table's estimated memory, in bytes.
func (t *KeyTable) Bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes
}

// Held is how many holders key has.
func (t *KeyTable) Held(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[key]; e != nil {
		return e.held
	}
	return 0
}

// entryLocked finds or makes the entry of key; nil when the table is full.
func (t *KeyTable) entryLocked(key string, now time.Time) *keyEntry {
	if e := t.entries[key]; e != nil {
		return e
	}
	if t.closed {
		return nil
	}
	cost := int64(len(key)) + keyEntryOverhead
	if t.bytes+cost > t.maxBytes {
		// At most one sweep a second: a flood of new keys must not make
		// every handshake walk the table.
		if now.Sub(t.lastSweep) < time.Second {
			return nil
		}
		t.sweepLocked(now)
		if t.bytes+cost > t.maxBytes {
			return nil
		}
	}
	e := &keyEntry{tokens: -1, last: now}
	t.entries[key] = e
	t.bytes += cost
	if !t.running {
		t.running = true
		go t.sweeper()
	}
	return e
}

// Allow checks, without holding anything, that key may have one more
// holder under max (none when max <= 0) and spends a token of its bucket
// (rate per second, burst; none when rate <= 0).
func (t *KeyTable) Allow(key string, max int, rate float64, burst int) error {
	if max <= 0 && (rate <= 0 || burst <= 0) {
		return nil
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entryLocked(key, now)
	if e == nil {
		return errTableFull
	}
	if max > 0 && e.held >= max {
		return errKeyLimit
	}
	if rate > 0 && burst > 0 {
		b := float64(burst)
		if e.tokens < 0 { // new: a full bucket
			e.tokens = b
		} else {
			e.tokens = min(b, e.tokens+now.Sub(e.last).Seconds()*rate)
		}
		e.last = now
		if e.tokens < 1 {
			return errKeyRate
		}
		e.tokens--
		e.full = now.Add(time.Duration((b - e.tokens) / rate * float64(time.Second)))
	}
	return nil
}

// Acquire adds a holder to key if it has fewer than max (any number when
// max <= 0). release undoes it, once; it is nil when err is not.
func (t *KeyTable) Acquire(key string, max int) (release func(), err error) {
	now := time.Now()
	t.mu.Lock()
	e := t.entryLocked(key, now)
	switch {
	case e == nil:
		err = errTableFull
	case max > 0 && e.held >= max:
		err = errKeyLimit
	default:
		e.held++
	}
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { t.release(key) }) }, nil
}

func (t *KeyTable) release(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[key]; e != nil && e.held > 0 {
		e.held--
	}
}

// sweepLocked forgets the idle keys.
func (t *KeyTable) sweepLocked(now time.Time) {
	for k, e := range t.entries {
		if e.held == 0 && !e.full.After(now) {
			delete(t.entries, k)
			t.bytes -= int64(len(k)) + keyEntryOverhead
		}
	}
	t.lastSweep = now
}

// sweeper forgets idle keys every limitTableSweep; it ends when the table
// is empty (the next new key starts another) or closed.
func (t *KeyTable) sweeper() {
	tick := time.NewTicker(limitTableSweep)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case now := <-tick.C:
			t.mu.Lock()
			t.sweepLocked(now)
			if len(t.entries) == 0 {
				t.running = false
				t.mu.Unlock()
				return
			}
			t.mu.Unlock()
		}
	}
}

// Close stops the sweeper and forgets every key; Acquire and Allow then
// refuse new keys.
func (t *KeyTable) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	close(t.stop)
	clear(t.entries)
	t.bytes = 0
}

// AddrKey is the key of a client address (host:port or a bare IP) in the
// per-address limits: the IP, an IPv6 address cut to its /64 (one client
// usually holds a whole /64, so counting addresses would count nothing).
func AddrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// LogGate lets one log line of a kind through per LogGateEvery, and counts
// the ones it held back, so that a client hitting a limit in a loop cannot
// flood the log. The zero value is ready.
type LogGate struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// LogGateEvery is how often a LogGate lets a line through.
const LogGateEvery = 10 * time.Second

// Pass reports whether a line may be written now, and how many were held
// back since the last one (for a "similar_not_logged" field).
func (g *LogGate) Pass() (bool, int) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.next) {
		g.suppressed++
		return false, 0
	}
	n := g.suppressed
	g.suppressed = 0
	g.next = now.Add(LogGateEvery)
	return true, n
}

// Hold runs release once when the socket is done: refused by a later
// middleware, or disconnected. A middleware that counts the socket
// against a limit (the Caddy module's sockets per token subject) gives the
// count back that way. Called on a socket that is already done, it runs
// release at once.
func (s *Socket) Hold(release func()) {
	s.mu.Lock()
	if s.state.Load() != socketClosed {
		s.holds = append(s.holds, release)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	release()
}

// releaseHolds runs the Hold functions, once.
func (s *Socket) releaseHolds() {
	s.mu.Lock()
	hs := s.holds
	s.holds = nil
	s.mu.Unlock()
	for _, fn := range hs {
		fn()
	}
}

// connLimits is the server's state for the connection limits: it lives as
// long as the Server, so a reload (SetOptions) keeps the counts.
type connLimits struct {
	open  atomic.Int64 // connections held (sessions with a conn)
	addrs *KeyTable
	gates [limitKinds]LogGate
}

// Indexes of connLimits.gates.
const (
	gateConnections = iota
	gateAddr
	gateHandshakeRate
	gateTable
	gateNamespaces
	gatePendingAcks
	limitKinds
)

func newConnLimits(tableBytes int64) *connLimits {
	return &connLimits{addrs: NewKeyTable(tableBytes)}
}

// logLimit writes one WARN line for a limit that acted, through its gate.
func (s *Server) logLimit(gate int, msg string, fields ...zap.Field) {
	ok, held := s.limits.gates[gate].Pass()
	if !ok {
		return
	}
	if held > 0 {
		fields = append(fields, zap.Int("similar_not_logged", held))
	}
	s.logger().Warn(msg, fields...)
}

// limitedBefore reports a limit that acted before any socket existed (a
// handshake, a CONNECT) to Options.OnLimited, with a nil socket.
func (s *Server) limitedBefore(limit string) {
	if fn := s.opts.Load().OnLimited; fn != nil {
		fn(nil, limit)
	}
}

// admission is what a handshake reserved of the connection limits: the
// Server's ServeHTTP puts one in the handshake request (wrapped with the
// host's own kept value, see Kept), allowHandshake fills it, and the new
// session's conn takes it over (onSession); a handshake that opens no
// session gives it back when ServeHTTP returns.
type admission struct {
	app any // the value the host kept with engineio.WithKept

	mu      sync.Mutex
	release func() // gives back the reservation; nil when none
	taken   bool
}

// take hands the reservation to a connection: its release, or nil.
func (a *admission) take() func() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.taken = true
	return a.release
}

// cancel gives back a reservation no connection took.
func (a *admission) cancel() {
	a.mu.Lock()
	rel := a.release
	if a.taken {
		rel = nil
	}
	a.release = nil
	a.mu.Unlock()
	if rel != nil {
		rel()
	}
}

// withAdmission returns the handshake request r carrying a new admission.
func withAdmission(r *http.Request) (*http.Request, *admission) {
	a := &admission{app: engineio.Kept(r)}
	return r.WithContext(engineio.WithKept(r.Context(), a)), a
}

// Kept returns the value a host put in a handshake request's context with
// engineio.WithKept, from a session's request (Socket.Handshake, or what a
// middleware sees): the Server wraps it with its own. Nil when none.
func Kept(r *http.Request) any {
	v := engineio.Kept(r)
	if a, ok := v.(*admission); ok {
		return a.app
	}
	return v
}

// allowHandshake is the engine's AllowRequest: the caller's own, then the
// hub's bound, the address's handshake rate and its bound, in that order.
// What it counts is reserved in the request's admission.
func (s *Server) allowHandshake(r *http.Request) error {
	o := s.opts.Load()
	if fn := o.Engine.AllowRequest; fn != nil {
		if err := fn(r); err != nil {
			return err
		}
	}
	a, _ := engineio.Kept(r).(*admission)
	if a == nil {
		return nil // not through ServeHTTP: nothing to reserve into
	}
	if n := s.limits.open.Add(1); o.MaxConnections > 0 && n > int64(o.MaxConnections) {
		s.limits.open.Add(-1)
		s.limitedBefore(LimitConnections)
		s.logLimit(gateConnections, "handshake refused: "+errServerFull,
			zap.Int("max_connections", o.MaxConnections), zap.String("remote", r.RemoteAddr))
		return errors.New(errServerFull)
	}
	open := func() { s.limits.open.Add(-1) }
	if o.MaxConnectionsPerAddr <= 0 && (o.HandshakeRate <= 0 || o.HandshakeBurst <= 0) {
		a.release = open
		return nil
	}
	key := AddrKey(r.RemoteAddr)
	err := s.limits.addrs.Allow(key, 0, o.HandshakeRate, o.HandshakeBurst)
	var rel func()
	if err == nil {
		rel, err = s.limits.addrs.Acquire(key, o.MaxConnectionsPerAddr)
	}
	switch err {
	case nil:
		a.release = func() { rel(); open() }
		return nil
	case errKeyLimit:
		open()
		s.limitedBefore(LimitConnectionsPerAddr)
		s.logLimit(gateAddr, "handshake refused: "+errTooManyFromIP,
			zap.String("address", key), zap.Int("max_connections_per_ip", o.MaxConnectionsPerAddr))
		return errors.New(errTooManyFromIP)
	case errKeyRate:
		open()
		s.limitedBefore(LimitHandshakeRate)
		s.logLimit(gateHandshakeRate, "handshake refused: "+errHandshakeRate,
			zap.String("address", key), zap.Float64("per_second", o.HandshakeRate), zap.Int("burst", o.HandshakeBurst))
		return errors.New(errHandshakeRate)
	default:
		open()
		s.limitedBefore(LimitConnectionsPerAddr)
		s.logLimit(gateTable, "handshake refused: the table of client addresses is full",
			zap.String("address", key), zap.Int64("bytes", s.limits.addrs.Bytes()))
		return errors.New(errLimitTableFull)
	}
}

// OpenConnections is the number of connections the connection limits
// count: those open, and the handshakes being served.
func (s *Server) OpenConnections() int { return int(s.limits.open.Load()) }

// limitNamespaces applies MaxNamespacesPerConn to a CONNECT for name:
// false when the connection already is in (or connecting to) as many
// namespaces, after answering CONNECT_ERROR "too many namespaces". A
// CONNECT to a namespace the connection is already in is not counted.
func (c *conn) limitNamespaces(name string) bool {
	max := c.opts.MaxNamespacesPerConn
	if max < 0 {
		return true
	}
	c.mu.Lock()
	n := len(c.sockets) + len(c.connecting)
	in := c.socketIn(name) != nil || c.connecting[name]
	c.mu.Unlock()
	if in || n < max {
		return true
	}
	c.srv.limitedBefore(LimitNamespaces)
	c.srv.logLimit(gateNamespaces, "connect refused: "+errTooManyNamespaces,
		zap.String("sid", c.sess.ID()), zap.Int("max_namespaces", max))
	c.refused(name, ErrTooManyNamespaces)
	_ = c.write(mustEncode(&parser.Packet{Type: parser.ConnectError, Namespace: name, ID: parser.NoID,
		Data: connectErrorPayload{Message: errTooManyNamespaces}}))
	return false
}
