// Package redispresence is a realtime.PresenceTracker shared by every node
// on one Redis: a key (a user) is online from its first socket on any node
// until its last socket on every node has been gone for the grace, and each
// online and offline is reported by exactly one node. It is a plain
// library and does not depend on Caddy.
//
// # What Redis holds
//
// With P = "<Key>-presence":
//
//   - P#total, a hash: key -> sockets on every node;
//   - P#node#<id>, a hash per node: key -> that node's sockets;
//   - P#grace, a sorted set: key -> when its grace ends (ms, Redis clock),
//     for the keys whose total fell to zero;
//   - P#nodes, a sorted set: node id -> when the node is taken as dead
//     (ms, Redis clock), pushed forward by each node's heartbeat.
//
// Every change is a Lua script, so a transition is decided once: the
// script that takes a key's total from 0 up, with no grace pending,
// answers "online" to the node that ran it; the script that finds a grace
// over removes it and answers "offline" to the node that ran it (each node
// polls). A node whose heartbeat is older than the TTL is dead: the first
// live node to see it subtracts its counts (in chunks), which may start
// graces.
//
// # This node
//
// Add and Remove never touch Redis: they change this node's counts in
// memory (bounded in bytes) and mark the key dirty; one goroutine writes
// the dirty keys' counts, as absolute values, in batches. So a connect
// never waits for Redis, a write that failed is simply written again, and
// after an outage (or after the other nodes took this one for dead) the
// whole table is written again.
package redispresence

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Defaults and bounds.
const (
	// DefaultKey is the prefix of the keys, the default key of
	// @socket.io/redis-adapter.
	DefaultKey = "socket.io"
	// DefaultNodeTTL is how long a node that stopped heartbeating still
	// counts; its heartbeat runs every third of it.
	DefaultNodeTTL = 15 * time.Second
	// DefaultTimeout bounds one Redis call.
	DefaultTimeout = 2 * time.Second

	// batch is how many keys one script call writes, reaps or expires:
	// the Redis work of one call is bounded by it.
	batch = 128
	// maxReapCalls bounds the reap calls of one poll (a dead node with
	// many keys is reaped over several polls).
	maxReapCalls = 16
	// maxScan bounds the HSCAN calls of a resync.
	maxScan = 4096
	// keyOverhead is what one key costs in memory besides its bytes.
	keyOverhead = 160
)

// Options configure a Tracker.
type Options struct {
	// Client reaches Redis. Required; the Tracker owns it and closes it.
	Client redis.UniversalClient
	// Key prefixes the Redis keys ("<Key>-presence#..."); every node of a
	// cluster uses the same. Default: DefaultKey.
	Key string
	// Grace, MaxBytes, MaxKeyLength, OnOnline and OnOffline are as in
	// realtime.PresenceOptions, except that OnOnline and OnOffline are
	// called on the tracker's goroutine, without a lock held (they must
	// still not block: queue the work).
	realtime.PresenceOptions
	// NodeTTL is how long this node's counts survive it when it stops
	// heartbeating (killed, or cut from Redis). Default: DefaultNodeTTL.
	NodeTTL time.Duration
	// Poll is how often this node looks for graces that ended and nodes
	// that died. Default: a tenth of the grace, between 100ms and 1s.
	Poll time.Duration
	// Timeout bounds each Redis call. Default: DefaultTimeout.
	Timeout time.Duration
	// Logger gets outages. Default: none.
	Logger *zap.Logger
}

// entry is one key's sockets on this node.
type entry struct {
	n     int
	dirty bool // queued in Tracker.dirty
}

// Tracker is a realtime.PresenceTracker spanning the nodes on one Redis.
type Tracker struct {
	rdb  redis.UniversalClient
	id   string
	pfx  string
	keys scriptKeys
	log  *zap.Logger
	ttl  time.Duration
	poll time.Duration
	tmo  time.Duration

	mu     sync.Mutex
	opts   realtime.PresenceOptions
	local  map[string]*entry
	dirty  []string
	bytes  int64
	resync bool // write the whole table (after an outage or a reap)
	closed bool
	// crashed makes the goroutine end without leaving the node set (a
	// test's stand-in for a killed process).
	crashed bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	failing bool // the worker's last Redis call failed (worker only)
}

type scriptKeys struct {
	total, node, grace, nodes string
}

// New starts a Tracker. It does not wait for Redis.
func New(o Options) (*Tracker, error) {
	if o.Client == nil {
		return nil, errors.New("starting the redis presence: no Redis client")
	}
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	t := &Tracker{
		rdb:    o.Client,
		id:     newID(),
		pfx:    o.Key + "-presence#",
		log:    o.Logger.Named("presence"),
		ttl:    o.NodeTTL,
		poll:   o.Poll,
		tmo:    o.Timeout,
		local:  make(map[string]*entry),
		resync: true,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	t.opts = withDefaults(o.PresenceOptions)
	if t.poll <= 0 {
		t.poll = min(max(t.opts.Grace/10, 100*time.Millisecond), time.Second)
	}
	t.keys = scriptKeys{total: t.pfx + "total", node: t.pfx + "node#" + t.id, grace: t.pfx + "grace", nodes: t.pfx + "nodes"}
	go t.run()
	return t, nil
}

func withDefaults(o realtime.PresenceOptions) realtime.PresenceOptions {
	if o.Grace <= 0 {
		o.Grace = realtime.DefaultPresenceGrace
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = realtime.DefaultPresenceMaxBytes
	}
	if o.MaxKeyLength <= 0 {
		o.MaxKeyLength = realtime.DefaultPresenceMaxKeyLength
	}
	return o
}

// newID is a node id: 12 random base64url characters, new on every start
// (a restarted node does not inherit the counts of its previous life).
func newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NodeID is this tracker's node id in Redis.
func (t *Tracker) NodeID() string { return t.id }

// SetOptions replaces the presence options (a configuration reload).
func (t *Tracker) SetOptions(o realtime.PresenceOptions) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opts = withDefaults(o)
}

func cost(key string) int64 { return int64(len(key)) + keyOverhead }

// Add implements realtime.PresenceTracker.
func (t *Tracker) Add(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || key == "" || len(key) > t.opts.MaxKeyLength {
		return false
	}
	e := t.local[key]
	if e == nil {
		c := cost(key)
		if t.bytes+c > t.opts.MaxBytes {
			return false
		}
		t.bytes += c
		e = &entry{}
		t.local[key] = e
	}
	e.n++
	t.markLocked(key, e)
	return true
}

// Remove implements realtime.PresenceTracker.
func (t *Tracker) Remove(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.local[key]
	if e == nil || e.n == 0 || t.closed {
		return
	}
	e.n--
	t.markLocked(key, e)
}

// markLocked queues key for writing. t.mu is held.
func (t *Tracker) markLocked(key string, e *entry) {
	if !e.dirty {
		e.dirty = true
		t.dirty = append(t.dirty, key)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Online implements realtime.PresenceTracker: true when this node has a
// socket of key, else what Redis says (false when it does not answer).
func (t *Tracker) Online(key string) bool {
	t.mu.Lock()
	e := t.local[key]
	local := e != nil && e.n > 0
	t.mu.Unlock()
	if local {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.tmo)
	defer cancel()
	pipe := t.rdb.Pipeline()
	total := pipe.HExists(ctx, t.keys.total, key)
	grace := pipe.ZScore(ctx, t.keys.grace, key)
	_, _ = pipe.Exec(ctx)
	return total.Val() || grace.Err() == nil
}

// Len is the number of keys this node holds (with sockets, or waiting to
// be written).
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.local)
}

// Bytes is what this node's keys cost, as MaxBytes counts it.
func (t *Tracker) Bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes
}

// Close implements realtime.PresenceTracker for a node that goes away: its
// sockets stop counting (written to Redis within the timeout) and it
// leaves the node set. Unlike a single node's Presence it reports nobody
// offline itself: a key whose last socket was here gets its grace, and a
// live node reports it offline at the end of it (a user who reconnects to
// another node within the grace never went offline). It closes the Redis
// client and is idempotent.
func (t *Tracker) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	for k, e := range t.local {
		if e.n != 0 {
			e.n = 0
			t.markLocked(k, e)
		}
	}
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	_ = t.rdb.Close()
}

// run is the tracker's goroutine: it writes the dirty keys, heartbeats,
// and polls for graces over and dead nodes, until Close.
func (t *Tracker) run() {
	defer close(t.done)
	tick := time.NewTicker(t.poll)
	defer tick.Stop()
	var lastBeat time.Time
	alive := false
	for {
		if !alive || time.Since(lastBeat) >= t.ttl/3 {
			alive = t.heartbeat()
			if alive {
				lastBeat = time.Now()
			}
		}
		if alive {
			alive = t.flush()
		}
		// While Redis fails, only the ticker retries: a burst of
		// connects does not make a burst of failing calls.
		polled := false
		for waiting := true; waiting; {
			select {
			case <-t.stop:
				t.mu.Lock()
				crashed := t.crashed
				t.mu.Unlock()
				if !crashed {
					t.leave(alive)
				}
				return
			case <-t.wake:
				waiting = !alive
			case <-tick.C:
				waiting, polled = false, true
			}
		}
		if polled && alive {
			t.expire()
			t.reap()
		}
	}
}

// call runs a script with the call timeout, logging the first failure of
// an outage and the recovery.
func (t *Tracker) call(s *redis.Script, keys []string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), t.tmo)
	defer cancel()
	v, err := s.Run(ctx, t.rdb, keys, args...).Result()
	switch {
	case err != nil && !t.failing:
		t.failing = true
		t.log.Warn("presence: redis call failed; counts are kept here and written again when redis answers", zap.Error(err))
	case err == nil && t.failing:
		t.failing = false
		t.log.Info("presence: redis answers again")
	}
	return v, err
}

// heartbeat pushes this node's deadline forward. When the node was not
// (or no longer) in the node set, every count of it is written again.
func (t *Tracker) heartbeat() bool {
	v, err := t.call(heartbeatScript, []string{t.keys.nodes}, t.id, t.ttl.Milliseconds())
	if err != nil {
		return false
	}
	if n, _ := v.(int64); n == 1 {
		t.mu.Lock()
		t.resync = true
		t.mu.Unlock()
	}
	return true
}

// flush writes the dirty keys (all keys after a resync), batch by batch;
// false when Redis failed or took this node for dead (then the next
// heartbeat comes first).
func (t *Tracker) flush() bool {
	t.mu.Lock()
	resync := t.resync
	t.resync = false
	if resync {
		for k, e := range t.local {
			t.markLocked(k, e)
		}
	}
	t.mu.Unlock()
	if resync && !t.zeroStale() {
		t.mu.Lock()
		t.resync = true
		t.mu.Unlock()
		return false
	}
	for {
		t.mu.Lock()
		n := min(len(t.dirty), batch)
		keys := make([]string, n)
		copy(keys, t.dirty)
		t.dirty = t.dirty[n:]
		args := make([]any, 0, 3+2*n)
		args = append(args, t.id, t.opts.Grace.Milliseconds(), 0)
		for _, k := range keys {
			e := t.local[k]
			e.dirty = false
			args = append(args, k, e.n)
		}
		if len(t.dirty) == 0 {
			t.dirty = nil // let the array go
		}
		onOnline := t.opts.OnOnline
		t.mu.Unlock()
		if n == 0 {
			return true
		}
		v, err := t.call(syncScript, []string{t.keys.total, t.keys.node, t.keys.grace, t.keys.nodes}, args...)
		ok := err == nil
		var online []any
		if ok {
			res, _ := v.([]any)
			if len(res) == 0 || res[0] != int64(1) {
				ok = false // this node is not in the node set: heartbeat first
			} else {
				online = res[1:]
			}
		}
		t.mu.Lock()
		for _, k := range keys {
			e := t.local[k]
			switch {
			case !ok:
				t.markLocked(k, e)
			case e.n == 0 && !e.dirty:
				delete(t.local, k)
				t.bytes -= cost(k)
			}
		}
		t.mu.Unlock()
		if !ok {
			return false
		}
		for _, u := range online {
			if s, isStr := u.(string); isStr && onOnline != nil {
				onOnline(s)
			}
		}
	}
}

// zeroStale writes zero for the keys Redis holds for this node that this
// node no longer has (a previous write lost to an outage).
func (t *Tracker) zeroStale() bool {
	var cursor uint64
	for range maxScan {
		ctx, cancel := context.WithTimeout(context.Background(), t.tmo)
		fields, next, err := t.rdb.HScan(ctx, t.keys.node, cursor, "*", batch).Result()
		cancel()
		if err != nil {
			return false
		}
		var args []any
		t.mu.Lock()
		grace := t.opts.Grace.Milliseconds()
		for i := 0; i+1 < len(fields); i += 2 {
			if e := t.local[fields[i]]; e == nil {
				args = append(args, fields[i], 0)
			}
		}
		t.mu.Unlock()
		if len(args) > 0 {
			args = append([]any{t.id, grace, 0}, args...)
			if _, err := t.call(syncScript, []string{t.keys.total, t.keys.node, t.keys.grace, t.keys.nodes}, args...); err != nil {
				return false
			}
		}
		if next == 0 {
			return true
		}
		cursor = next
	}
	return true
}

// expire reports offline the keys whose grace ended, batch by batch.
func (t *Tracker) expire() {
	for range maxReapCalls {
		v, err := t.call(expireScript, []string{t.keys.total, t.keys.grace}, batch)
		if err != nil {
			return
		}
		due, _ := v.([]any)
		t.mu.Lock()
		onOffline := t.opts.OnOffline
		t.mu.Unlock()
		n := 0
		for _, u := range due {
			if s, ok := u.(string); ok && s != "" {
				if onOffline != nil {
					onOffline(s)
				}
			}
			n++
		}
		if n < batch {
			return
		}
	}
}

// reap subtracts the counts of dead nodes, a chunk per call.
func (t *Tracker) reap() {
	t.mu.Lock()
	grace := t.opts.Grace.Milliseconds()
	t.mu.Unlock()
	for range maxReapCalls {
		v, err := t.call(reapScript, []string{t.keys.total, t.keys.grace, t.keys.nodes}, t.pfx+"node#", grace, batch)
		if err != nil {
			return
		}
		if res, _ := v.([]any); len(res) == 2 {
			dead, _ := res[0].(string)
			n, _ := res[1].(int64)
			if n > 0 && dead != "" {
				t.log.Info("presence: forgot the sockets of a node that stopped heartbeating",
					zap.String("node", dead), zap.Int64("keys", n))
			}
			continue
		}
		return // no dead node
	}
}

// leave writes this node's last counts (zero, after Close) and leaves the
// node set; if Redis does not answer, the node expires by itself.
func (t *Tracker) leave(alive bool) {
	if !alive || !t.flush() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.tmo)
	defer cancel()
	if err := leaveScript.Run(ctx, t.rdb, []string{t.keys.nodes, t.keys.node}, t.id).Err(); err != nil {
		t.log.Warn("presence: leaving the node set failed; this node expires by itself", zap.Error(err))
	}
}

// nowLua reads the Redis clock in ms: every deadline uses one clock,
// whatever the nodes' clocks say.
const nowLua = `local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
`

// heartbeatScript: KEYS nodes; ARGV id, ttl ms. 1 when the node was not
// alive in the set (new, or dead), else 0.
var heartbeatScript = redis.NewScript(nowLua + `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if (not s) or tonumber(s) <= now then return 1 end
return 0`)

// syncScript: KEYS total, node, grace, nodes; ARGV id, grace ms, unused,
// then key, count pairs: this node's counts, absolute. Returns {1,
// online keys...}, or {0} when the node is not alive in the set (its
// counts may be being reaped: it writes after its next heartbeat).
var syncScript = redis.NewScript(nowLua + `
local s = redis.call('ZSCORE', KEYS[4], ARGV[1])
if (not s) or tonumber(s) <= now then return {0} end
local grace = tonumber(ARGV[2])
local out = {1}
for i = 4, #ARGV - 1, 2 do
  local key, n = ARGV[i], tonumber(ARGV[i + 1])
  local old = tonumber(redis.call('HGET', KEYS[2], key) or '0') or 0
  if n ~= old then
    if n > 0 then redis.call('HSET', KEYS[2], key, n) else redis.call('HDEL', KEYS[2], key) end
    local tot = redis.call('HINCRBY', KEYS[1], key, n - old)
    if tot <= 0 then
      redis.call('HDEL', KEYS[1], key)
      redis.call('ZADD', KEYS[3], now + grace, key)
    elseif tot - (n - old) <= 0 then
      if redis.call('ZREM', KEYS[3], key) == 0 then out[#out + 1] = key end
    end
  end
end
return out`)

// expireScript: KEYS total, grace; ARGV limit. Removes and returns the
// keys whose grace is over (each is returned to one caller only); a key
// that has sockets again is dropped from the set without being returned.
var expireScript = redis.NewScript(nowLua + `
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[2], key)
  if redis.call('HEXISTS', KEYS[1], key) == 0 then out[#out + 1] = key else out[#out + 1] = '' end
end
return out`)

// reapScript: KEYS total, grace, nodes; ARGV node hash prefix, grace ms,
// limit. Takes the first dead node and subtracts up to limit of its
// counts (a value that is not a number counts 0, a key that is not a hash
// is dropped: garbage never wedges the reaping); the node leaves the set
// once it has none. Returns {id, count},
// or {} when no node is dead.
var reapScript = redis.NewScript(nowLua + `
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1)
if #dead == 0 then return {} end
local id = dead[1]
local hash = ARGV[1] .. id
local grace = tonumber(ARGV[2])
if redis.call('EXISTS', hash) == 1 and redis.call('TYPE', hash).ok ~= 'hash' then
  redis.call('DEL', hash)
end
local kv = redis.call('HRANDFIELD', hash, tonumber(ARGV[3]), 'WITHVALUES')
for i = 1, #kv - 1, 2 do
  local key, n = kv[i], tonumber(kv[i + 1]) or 0
  redis.call('HDEL', hash, key)
  if n > 0 then
    local tot = redis.call('HINCRBY', KEYS[1], key, -n)
    if tot <= 0 then
      redis.call('HDEL', KEYS[1], key)
      redis.call('ZADD', KEYS[2], now + grace, key)
    end
  end
end
if redis.call('EXISTS', hash) == 0 then redis.call('ZREM', KEYS[3], id) end
return {id, #kv / 2}`)

// leaveScript: KEYS nodes, node; ARGV id. Leaves the set if the node holds
// no count any more.
var leaveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`)

var _ realtime.PresenceTracker = (*Tracker)(nil)
