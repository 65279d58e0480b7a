package redisadapter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Connection state recovery across the nodes of a cluster, in the spirit
// of @socket.io/redis-streams-adapter: the events of a namespace are kept
// in one Redis Stream, the sessions of dropped sockets in keys that expire
// with the window, so a client that drops on one node recovers on any.
//
// Order. One Lua script adds the event to the stream and publishes it, so
// Redis gives every event one place, the same in the stream and on the
// broadcast channels. The node that sends a recorded event does not
// deliver it to its own sockets at once, as other broadcasts: it does when
// the event comes back on its subscription, so that the sockets of every
// node receive the events in the stream's order, which is what replaying
// "what came after the offset" needs. Each node remembers the last event
// its subscription delivered (per namespace); a recovering socket is
// replayed the events after its offset up to that one, under the
// namespace's recovery lock, and gets the later ones live.
//
// Memory, in bytes: each stream entry is counted (its fields, plus
// recEntryOverhead) in a counter key beside the stream; the script that
// adds an event drops the oldest while the count is over BufferBytes or
// they are older than the window. An event larger than the whole bound is
// kept as a marker only ("gone"): an offset before it cannot be replayed
// (those clients get a new session), one at or after it can. Sessions are
// SET with PX = the window; one over recMaxSessionBytes is not kept.

// Offsets of the Redis store: the stream entry's id "<ms>-<seq>" written
// with fixed widths (recOffsetMS digits, "-", recOffsetSeq digits), so
// that the Lua script can write it over a placeholder of the same length
// in an encoded message.
const (
	recOffsetMS  = 15
	recOffsetSeq = 6
	recOffsetLen = recOffsetMS + 1 + recOffsetSeq
	// MaxPIDLength bounds a client's pid before any Redis call (the
	// engine's ids are 20 characters).
	MaxPIDLength = 32
	// recEntryOverhead is what one stream entry is counted for besides its
	// fields' bytes (Redis's own bookkeeping of an entry, roughly).
	recEntryOverhead = 64
	// recMaxSessionBytes bounds one saved session (ids, rooms, data as
	// JSON); a larger one is not kept.
	recMaxSessionBytes = 64 << 10
	// recTrimPerEvent bounds the old entries one added event drops.
	recTrimPerEvent = 64
	// recTimeout bounds every Redis call of the store.
	recTimeout = time.Second
	// recCatchUp bounds how long a recovery waits for this node's
	// subscription to deliver the client's last event (it was delivered
	// by another node a moment before).
	recCatchUp = time.Second
	// recTakeOverWait bounds how long a recovery waits for the other
	// nodes to say whether they held the client's old socket.
	recTakeOverWait = 300 * time.Millisecond
)

// errNotRecorded: the event was not recorded (Redis unreachable); it was
// delivered without an offset.
var errNotRecorded = errors.New("not recorded")

// appendScript adds an event to a namespace's stream, trims the stream to
// its byte bound and window, and publishes the event with its offset
// written over the placeholder. KEYS: stream, byte counter. ARGV: payload,
// placeholder position (0-based), rooms JSON, except JSON, byte bound,
// window (ms), channel ("" publishes nothing), trim bound, key TTL (ms),
// the overhead counted per entry.
// It returns the entry's id.
var appendScript = redis.NewScript(`
local ov = tonumber(ARGV[10])
local size = #ARGV[1] + #ARGV[3] + #ARGV[4] + ov
local maxb = tonumber(ARGV[5])
local id
local total
if size > maxb then
  id = redis.call('XADD', KEYS[1], '*', 'g', '1')
  redis.call('XTRIM', KEYS[1], 'MINID', id)
  total = ov
  redis.call('SET', KEYS[2], total)
else
  id = redis.call('XADD', KEYS[1], '*', 'p', ARGV[1], 'o', ARGV[2], 'r', ARGV[3], 'x', ARGV[4], 's', size)
  total = redis.call('INCRBY', KEYS[2], size)
end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[6])
local n = tonumber(ARGV[8])
while n > 0 do
  local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if e == nil or e[1] == id then break end
  local ms = tonumber(string.match(e[1], '^(%d+)'))
  if total <= maxb and ms >= cutoff then break end
  local s = ov
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == 's' then s = tonumber(f[i + 1]) end
  end
  redis.call('XDEL', KEYS[1], e[1])
  total = redis.call('DECRBY', KEYS[2], s)
  n = n - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
if ARGV[7] ~= '' then
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  if #ms > 15 or #seq > 6 then
    return redis.error_reply('stream id out of the offset range')
  end
  local off = string.rep('0', 15 - #ms) .. ms .. '-' .. string.rep('0', 6 - #seq) .. seq
  local pos = tonumber(ARGV[2])
  redis.call('PUBLISH', ARGV[7], string.sub(ARGV[1], 1, pos) .. off .. string.sub(ARGV[1], pos + #off + 1))
end
return id
`)

// takeScript takes a session if the client's offset is still in the
// stream, atomically: two nodes cannot both take one. KEYS: session,
// stream. ARGV: the offset's entry id. It returns the session, or nil.
var takeScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
`)

// missedScript returns the entries after an offset up to an end, or nil
// when the offset is no longer in the stream (then entries after it may
// have gone too). KEYS: stream. ARGV: offset id, end id.
var missedScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], ARGV[2])
`)

// lastScript returns the id of a stream's last entry ("0-0" when empty).
var lastScript = redis.NewScript(`
local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if e == nil then return '0-0' end
return e[1]
`)

// streamID is a stream entry id.
type streamID struct{ ms, seq uint64 }

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// parseStreamID reads Redis's "<ms>-<seq>".
func parseStreamID(s string) (streamID, bool) {
	i := bytes.IndexByte([]byte(s), '-')
	if i <= 0 || i == len(s)-1 || len(s) > 41 {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(s[:i], 10, 64)
	seq, err2 := strconv.ParseUint(s[i+1:], 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

// ParseOffset reads an offset of this store: exactly recOffsetLen bytes,
// digits with one '-' at its place. Anything else (a client's bogus or
// huge offset) is false, before any Redis call.
func ParseOffset(s string) (streamID, bool) {
	if len(s) != recOffsetLen || s[recOffsetMS] != '-' {
		return streamID{}, false
	}
	var id streamID
	for i := 0; i < len(s); i++ {
		if i == recOffsetMS {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return streamID{}, false
		}
		if i < recOffsetMS {
			id.ms = id.ms*10 + uint64(c-'0')
		} else {
			id.seq = id.seq*10 + uint64(c-'0')
		}
	}
	return id, true
}

// future reports whether an offset names a time no event can have yet
// (Redis's clock and this node's may differ by recCatchUp).
func future(id streamID) bool {
	return id.ms > uint64(time.Now().Add(recCatchUp).UnixMilli())
}

// formatOffset writes id as ParseOffset reads it.
func formatOffset(id streamID) string {
	ms := strconv.FormatUint(id.ms, 10)
	seq := strconv.FormatUint(id.seq, 10)
	if len(ms) > recOffsetMS || len(seq) > recOffsetSeq {
		return ""
	}
	return zeros(recOffsetMS-len(ms)) + ms + "-" + zeros(recOffsetSeq-len(seq)) + seq
}

func zeros(n int) string { return "000000000000000"[:n] }

// RecoveryStore is the realtime.RecoveryStore of a Cluster (see
// Cluster.RecoveryStore): events in Redis Streams, sessions in expiring
// keys, shared by every node on the same Redis and key.
type RecoveryStore struct {
	c *Cluster
	// marker is the placeholder of the offset in an encoded event: random
	// per process, never sent (the script writes the offset over it).
	marker string

	mu        sync.Mutex
	opts      realtime.RecoveryOptions
	delivered map[string]streamID // by namespace: the last event the subscription delivered
	changed   chan struct{}       // closed and replaced when delivered moves
}

// RecoveryStore returns the cluster's recovery store, made on the first
// call (opts apply, later calls give theirs to SetOptions). Use it as
// realtime.RecoveryOptions.NewStore with this cluster's adapters: the
// adapters then record events through it.
func (c *Cluster) RecoveryStore(opts realtime.RecoveryOptions) realtime.RecoveryStore {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec == nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		m := base64.RawURLEncoding.EncodeToString(b[:])
		c.rec = &RecoveryStore{
			c:         c,
			marker:    "~" + m[:recOffsetLen-1],
			delivered: make(map[string]streamID),
			changed:   make(chan struct{}),
		}
	}
	c.rec.SetOptions(opts)
	return c.rec
}

// recording is the cluster's store, or nil when recovery is off.
func (c *Cluster) recording() *RecoveryStore {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// SetOptions takes a reload's window and bounds; they apply to the next
// event and session.
func (r *RecoveryStore) SetOptions(opts realtime.RecoveryOptions) {
	if opts.MaxDisconnectionDuration <= 0 {
		opts.MaxDisconnectionDuration = realtime.DefaultMaxDisconnectionDuration
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = realtime.DefaultRecoveryBufferBytes
	}
	r.mu.Lock()
	r.opts = opts
	r.mu.Unlock()
}

func (r *RecoveryStore) options() realtime.RecoveryOptions {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts
}

func (r *RecoveryStore) streamKey(nsp string) string {
	return r.c.opts.Key + "-recovery#" + nsp + "#"
}

func (r *RecoveryStore) sessionKey(nsp, pid string) string {
	return r.c.opts.Key + "-recovery#" + nsp + "#session#" + pid
}

// record adds an event to the stream and publishes it on channel, with its
// offset. payload holds r.marker once, as the event's last argument.
func (r *RecoveryStore) record(nsp string, opts realtime.BroadcastOptions, payload []byte, channel string) (streamID, error) {
	pos := bytes.Index(payload, []byte(r.marker))
	if pos < 0 || bytes.Count(payload, []byte(r.marker)) != 1 {
		return streamID{}, errors.New("recording an event: the offset placeholder is not found once")
	}
	rooms, _ := json.Marshal(nonNil(opts.Rooms))
	except, _ := json.Marshal(nonNil(opts.Except))
	o := r.options()
	window := o.MaxDisconnectionDuration.Milliseconds()
	// The script goes out on the publisher's pipeline, in the order of
	// the broadcasts queued before it (a volatile one, say), as Node's
	// adapters keep a node's emits in order on their one connection.
	call := &scriptCall{script: appendScript, keys: []string{r.streamKey(nsp), r.streamKey(nsp) + "bytes"},
		args: []any{payload, pos, rooms, except, o.BufferBytes, window, channel, recTrimPerEvent, 2*window + 1000, recEntryOverhead}}
	done := make(chan error, 1)
	err := r.c.enqueue(publication{payload: payload, script: call, done: done})
	if err == nil {
		wait := time.NewTimer(recTimeout)
		select {
		case err = <-done:
		case <-wait.C:
			if call.state.CompareAndSwap(scriptQueued, scriptWithdrawn) {
				// Never sent: the caller may deliver it without an offset.
				err = errors.New("the publisher did not take it in time")
			} else {
				err = <-done // sent: its answer comes within publishTimeout
			}
		}
		wait.Stop()
	}
	if err != nil {
		return streamID{}, fmt.Errorf("recording an event: %w", err)
	}
	res := call.result
	id, ok := parseStreamID(res)
	if !ok {
		return streamID{}, fmt.Errorf("recording an event: stream id %q", res)
	}
	return id, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Append implements realtime.RecoveryStore for an event that is not
// published (an adapter that is not this cluster's): the event is kept
// and its messages are returned for the caller to deliver.
func (r *RecoveryStore) Append(nsp string, opts realtime.BroadcastOptions, encode func(string) ([]*engineio.Message, error)) ([]*engineio.Message, error) {
	return nil, errors.New("recording an event: the redis recovery store records through the redis adapter's broadcasts")
}

// Save implements realtime.RecoveryStore: the session is kept in Redis
// for the window; one that does not fit recMaxSessionBytes, or that Redis
// does not take, is not (its client gets a new session).
func (r *RecoveryStore) Save(sess *realtime.RecoverySession) {
	if len(sess.PID) > MaxPIDLength || len(sess.PID) == 0 {
		return
	}
	raw, err := json.Marshal(savedSession{ID: sess.ID, PID: sess.PID, Rooms: sess.Rooms, Data: sess.Data})
	if err != nil || len(raw) > recMaxSessionBytes {
		r.c.log.Debug("recovery: session not kept (not JSON, or too large)", zap.String("namespace", sess.Namespace), zap.Int("bytes", len(raw)))
		return
	}
	if !r.c.Up() {
		return
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, recTimeout)
	defer cancel()
	if err := r.c.client.Set(ctx, r.sessionKey(sess.Namespace, sess.PID), raw, r.options().MaxDisconnectionDuration).Err(); err != nil {
		r.c.log.Warn("recovery: keeping a session in redis", zap.String("namespace", sess.Namespace), zap.Error(err))
	}
}

// savedSession is a session's JSON in Redis.
type savedSession struct {
	ID    string         `json:"id"`
	PID   string         `json:"pid"`
	Rooms []string       `json:"rooms"`
	Data  map[string]any `json:"data,omitempty"`
}

// Take implements realtime.RecoveryStore: the session and the offset are
// checked and the session removed in one script. The pid and offset are
// checked for their form first, so a bogus attempt costs no Redis call;
// a well-formed one costs one. Before it, Take waits (at most recCatchUp)
// for this node to have delivered the client's last event itself, so that
// the replay and the live events meet exactly there.
func (r *RecoveryStore) Take(nsp, pid, offset string) (*realtime.RecoverySession, bool) {
	id, ok := ParseOffset(offset)
	if !ok || pid == "" || len(pid) > MaxPIDLength || !r.c.Up() {
		return nil, false
	}
	if future(id) {
		return nil, false // nothing to wait for
	}
	if !r.catchUp(nsp, id) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, recTimeout)
	defer cancel()
	raw, err := takeScript.Run(ctx, r.c.client, []string{r.sessionKey(nsp, pid), r.streamKey(nsp)}, id.String()).Text()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			r.c.log.Warn("recovery: taking a session from redis", zap.String("namespace", nsp), zap.Error(err))
		}
		return nil, false
	}
	var s savedSession
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.PID != pid || s.ID == "" {
		return nil, false
	}
	return &realtime.RecoverySession{Namespace: nsp, ID: s.ID, PID: s.PID, Rooms: s.Rooms, Data: s.Data, DisconnectedAt: time.Now()}, true
}

// catchUp waits until this node's subscription has delivered id, or
// learns where the stream is when it has delivered nothing yet. False
// when it could not tell in time.
func (r *RecoveryStore) catchUp(nsp string, id streamID) bool {
	deadline := time.NewTimer(recCatchUp)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		d, known := r.delivered[nsp]
		ch := r.changed
		r.mu.Unlock()
		if known && !d.less(id) {
			return true
		}
		if !known {
			// Nothing delivered since this node subscribed: every entry in
			// the stream now is one it will not deliver (or is on its way,
			// a race of a few milliseconds at most).
			last, err := r.last(nsp)
			if err != nil {
				return false
			}
			r.mu.Lock()
			if _, ok := r.delivered[nsp]; !ok {
				r.delivered[nsp] = last
			}
			r.mu.Unlock()
			continue
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		case <-r.c.ctx.Done():
			return false
		}
	}
}

// last is the id of the namespace stream's last entry.
func (r *RecoveryStore) last(nsp string) (streamID, error) {
	ctx, cancel := context.WithTimeout(r.c.ctx, recTimeout)
	defer cancel()
	res, err := lastScript.Run(ctx, r.c.client, []string{r.streamKey(nsp)}).Text()
	if err != nil {
		return streamID{}, fmt.Errorf("reading the recovery stream: %w", err)
	}
	id, ok := parseStreamID(res)
	if !ok {
		return streamID{}, fmt.Errorf("reading the recovery stream: id %q", res)
	}
	return id, nil
}

// delivered records that the subscription delivered event id of nsp. It
// is called under the namespace's recovery lock.
func (r *RecoveryStore) markDelivered(nsp string, id streamID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.delivered[nsp]; ok && !d.less(id) {
		return
	}
	r.delivered[nsp] = id
	close(r.changed)
	r.changed = make(chan struct{})
}

// forget drops what the node knows of a namespace's deliveries (its
// subscription was lost: events published meanwhile never arrive).
func (r *RecoveryStore) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.delivered)
}

// forgetNamespace drops what the node knows of one namespace's
// deliveries (it unsubscribed its channels).
func (r *RecoveryStore) forgetNamespace(nsp string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.delivered, nsp)
}

// Knows reports whether offset is in the namespace's stream (takeOver
// asks before it closes a socket).
func (r *RecoveryStore) Knows(nsp, offset string) bool {
	id, ok := ParseOffset(offset)
	if !ok || future(id) || !r.c.Up() {
		return false
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, recTimeout)
	defer cancel()
	n, err := r.c.client.XRange(ctx, r.streamKey(nsp), id.String(), id.String()).Result()
	return err == nil && len(n) == 1
}

// Missed implements realtime.RecoveryStore: the events after offset up to
// the last one this node delivered, those rooms would have got. It is
// called under the namespace's recovery lock, so nothing is delivered
// meanwhile.
func (r *RecoveryStore) Missed(nsp, offset string, rooms []string) ([][]*engineio.Message, bool) {
	id, ok := ParseOffset(offset)
	if !ok {
		return nil, false
	}
	r.mu.Lock()
	end, known := r.delivered[nsp]
	r.mu.Unlock()
	if !known || end.less(id) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, recTimeout)
	defer cancel()
	res, err := missedScript.Run(ctx, r.c.client, []string{r.streamKey(nsp)}, id.String(), end.String()).Slice()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			r.c.log.Warn("recovery: reading missed events from redis", zap.String("namespace", nsp), zap.Error(err))
		}
		return nil, false
	}
	var out [][]*engineio.Message
	for _, v := range res {
		e, ok := readEntry(v)
		if !ok {
			return nil, false
		}
		if e.gone {
			return nil, false // an event too large to keep was sent after the offset
		}
		if !reaches(e.rooms, e.except, rooms) {
			continue
		}
		msgs, err := r.entryMessages(nsp, e)
		if err != nil {
			r.c.log.Warn("recovery: a stored event does not decode", zap.String("namespace", nsp), zap.Error(err))
			return nil, false
		}
		out = append(out, msgs)
	}
	return out, true
}

// entry is a stream entry read back.
type entry struct {
	id            streamID
	payload       []byte
	pos           int
	rooms, except []string
	gone          bool
}

// readEntry reads one XRANGE item: [id, [field, value, ...]].
func readEntry(v any) (entry, bool) {
	var e entry
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return e, false
	}
	ids, _ := pair[0].(string)
	if e.id, ok = parseStreamID(ids); !ok {
		return e, false
	}
	fields, ok := pair[1].([]any)
	if !ok {
		return e, false
	}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		val, _ := fields[i+1].(string)
		switch k {
		case "g":
			e.gone = true
		case "p":
			e.payload = []byte(val)
		case "o":
			n, err := strconv.Atoi(val)
			if err != nil {
				return e, false
			}
			e.pos = n
		case "r":
			if json.Unmarshal([]byte(val), &e.rooms) != nil {
				return e, false
			}
		case "x":
			if json.Unmarshal([]byte(val), &e.except) != nil {
				return e, false
			}
		}
	}
	if !e.gone && (e.pos < 0 || e.pos+recOffsetLen > len(e.payload)) {
		return e, false
	}
	return e, true
}

// entryMessages encodes a stored event for a client, its offset written
// in.
func (r *RecoveryStore) entryMessages(nsp string, e entry) ([]*engineio.Message, error) {
	off := formatOffset(e.id)
	if off == "" {
		return nil, errors.New("stream id out of the offset range")
	}
	payload := append([]byte(nil), e.payload...)
	copy(payload[e.pos:], off)
	_, data, _, err := decodeBroadcast(payload)
	if err != nil {
		return nil, err
	}
	return realtime.EncodeBroadcast(&parser.Packet{Type: parser.Event, Namespace: nsp, ID: parser.NoID, Data: forClients(data, 0)})
}

// Close implements realtime.RecoveryStore. The store holds nothing of its
// own: the Redis client is the cluster's, closed with it, and what is in
// Redis expires there.
func (r *RecoveryStore) Close() error { return nil }

// reaches reports whether an event to rooms (everyone when empty) except
// the except rooms reached a socket in mine (Node's shouldIncludePacket).
func reaches(rooms, except, mine []string) bool {
	for _, r := range except {
		if contains(mine, r) {
			return false
		}
	}
	if len(rooms) == 0 {
		return true
	}
	for _, r := range rooms {
		if contains(mine, r) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BroadcastRecorded implements realtime.RecordingAdapter: the event is
// added to the namespace's stream and published in one script, and
// delivered to this node's sockets when it comes back on the subscription
// (see the top of this file). When Redis cannot be reached it is
// delivered here without an offset, as a broadcast is during an outage;
// its clients' next recovery then starts before it (they may get it
// twice). Without a recovery store it reports false.
func (a *Adapter) BroadcastRecorded(p *parser.Packet, opts realtime.BroadcastOptions) (bool, error) {
	r := a.c.recording()
	if r == nil {
		return false, nil
	}
	if opts.Flags.Local {
		// Not published, so not recorded (as Node's cluster adapters).
		return true, a.Broadcast(p, opts)
	}
	err := a.broadcastRecorded(r, p, opts)
	if err == nil {
		return true, nil
	}
	if ce := a.c.log.Check(zap.DebugLevel, "recovery: event not recorded, delivered without an offset"); ce != nil {
		ce.Write(zap.String("namespace", a.name), zap.Error(err))
	}
	if berr := a.Broadcast(p, opts); berr != nil {
		return true, berr
	}
	return true, unavailable("recording an event for recovery", err)
}

func (a *Adapter) broadcastRecorded(r *RecoveryStore, p *parser.Packet, opts realtime.BroadcastOptions) error {
	if a.closed.Load() || !a.c.Up() {
		return errNotRecorded
	}
	data, _ := p.Data.([]any)
	q := *p
	q.Data = append(data[:len(data):len(data)], r.marker)
	payload, err := encodeMsgpack([]any{a.c.uid, a.wirePacket(&q), wireOpts(opts, true), true})
	if err != nil {
		return fmt.Errorf("encoding the event: %w", err)
	}
	if len(payload) > MaxMessageBytes {
		return fmt.Errorf("encoding the event: %d bytes, at most %d", len(payload), MaxMessageBytes)
	}
	if _, err := r.record(a.name, opts, payload, a.channelFor(opts)); err != nil {
		return err
	}
	if fn := a.c.opts.Observer.OnPublish; fn != nil {
		fn("broadcast")
	}
	return nil
}

// decodeBroadcast reads [uid, packet, opts, recorded?]: the uid, the
// event's data, its opts and whether its sender recorded it.
func decodeBroadcast(payload []byte) (uid string, data []any, recorded bool, err error) {
	v, err := decodeMsgpack(payload)
	if err != nil {
		return "", nil, false, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		return "", nil, false, malformed("broadcast is not [uid, packet, opts]")
	}
	uid, _ = arr[0].(string)
	packet, ok := arr[1].(map[string]any)
	if !ok {
		return "", nil, false, malformed("broadcast packet is not an object")
	}
	data, ok = packet["data"].([]any)
	if !ok || len(data) == 0 {
		return "", nil, false, malformed("broadcast packet has no data")
	}
	if len(arr) > 3 {
		recorded, _ = arr[3].(bool)
	}
	return uid, data, recorded, nil
}

// typeRecoveryTakeOver is this module's own request type (Node's nodes
// ignore types they do not know): "close your socket of this pid, whose
// client is back on my node", answered by every node with
// {"requestId", "closed"}.
const typeRecoveryTakeOver = 100

// TakeOver asks the other nodes to close the socket of pid if one of them
// still holds it (its client is back here before that node saw its
// transport go): the socket is closed as "transport close", so its session
// is saved, and the caller can take it. The offset must be in the stream,
// or nothing is asked. It waits until a node says it closed the socket or
// every node answered, at most recTakeOverWait: it runs while the client's
// CONNECT waits, and a Node peer never answers (with one in the cluster, a
// reconnect that finds no session waits that long). True when a node
// closed it.
func (r *RecoveryStore) TakeOver(nsp, pid, offset string) bool {
	if pid == "" || len(pid) > MaxPIDLength || !r.Knows(nsp, offset) {
		return false
	}
	r.c.mu.Lock()
	a := r.c.first(nsp)
	r.c.mu.Unlock()
	if a == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, recTakeOverWait)
	defer cancel()
	servers, err := a.c.serverCount(ctx, a.reqChannel)
	if err != nil || servers <= 1 {
		return false
	}
	id := newUID()
	answers := make(chan bool, servers)
	a.c.addPending(a.name, id, func(m map[string]any) {
		v, _ := m["closed"].(bool)
		select {
		case answers <- v:
		default:
		}
	})
	defer a.c.removePending(a.name, id)
	payload, err := jsonRequest(map[string]any{"uid": a.c.uid, "requestId": id, "type": int64(typeRecoveryTakeOver), "pid": pid})
	if err != nil {
		return false
	}
	if err := a.c.publishWait(ctx, a.reqChannel, payload, "request"); err != nil {
		return false
	}
	for n := 1; n < servers; n++ {
		select {
		case closed := <-answers:
			if closed {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
	return false
}

// onTakeOver closes this node's socket of pid, if any, and answers. The
// close saves the session in Redis, so it runs off the subscriber's
// goroutine (only for a pid this node holds: one goroutine per real
// takeover, ending with the answer).
func (a *Adapter) onTakeOver(uid, id, pid string) {
	if !a.nsp.HoldsPID(pid) {
		a.reply(uid, map[string]any{"requestId": id, "closed": false}, false)
		return
	}
	go func() {
		closed := a.nsp.CloseForRecovery(pid)
		a.reply(uid, map[string]any{"requestId": id, "closed": closed}, false)
	}()
}

var _ realtime.RecoveryStore = (*RecoveryStore)(nil)
var _ realtime.RecordingAdapter = (*Adapter)(nil)
