package redisadapter

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Defaults and timing.
const (
	// DefaultKey is the channel prefix of Node's redis-adapter ("key").
	DefaultKey = "socket.io"
	// DefaultRequestTimeout is how long a request to the other nodes
	// (fetchSockets, allRooms, serverSideEmit with acks, the client counts
	// of a broadcast with acks) waits for their answers, Node's
	// requestsTimeout.
	DefaultRequestTimeout = 5 * time.Second

	// healthInterval is how long the subscriber waits for a message before
	// it pings Redis; a ping unanswered by the next interval, or any read
	// error, marks the cluster down.
	healthInterval = 2 * time.Second
	// minBackoff and maxBackoff bound the wait between reconnection
	// attempts of the subscriber (go-redis redials and resubscribes every
	// channel on the next read).
	minBackoff = 50 * time.Millisecond
	maxBackoff = 1 * time.Second
	// publishTimeout bounds one batch of PUBLISH commands.
	publishTimeout = 2 * time.Second
	// maxQueued and maxQueuedBytes bound the publications waiting for the
	// publisher goroutine; past them a broadcast is not sent to the other
	// nodes (counted as a drop, "queue_full").
	maxQueued      = 8192
	maxQueuedBytes = 64 << 20
	// maxBatch is how many publications one pipeline carries.
	maxBatch = 128
)

// EmitterUID is the uid @socket.io/redis-emitter puts in its messages.
const EmitterUID = "emitter"

// Observer is told what the cluster does, for counting (metrics). Every
// field is optional; each is called synchronously and must not block.
type Observer struct {
	// OnPublish: a message was published; kind is broadcast, request or
	// response.
	OnPublish func(kind string)
	// OnReceive: a message from another node (or an emitter) was
	// received and applied; kind is broadcast, request or response.
	OnReceive func(kind string)
	// OnDrop: a message was not applied or not sent; reason is malformed
	// (did not decode, or a known type missing fields), too_large,
	// unknown_type, queue_full or unavailable (Redis down).
	OnDrop func(reason string)
	// OnRequestFailed: a request to the other nodes ended without all
	// their answers (timeout, or Redis down); request names it:
	// fetch_sockets, all_rooms, server_side_emit, broadcast_ack,
	// remote_join, remote_leave, remote_disconnect.
	OnRequestFailed func(request string)
	// OnConnection: the subscriber connection went up or down.
	OnConnection func(up bool)
}

// Options configure a Cluster.
type Options struct {
	// Client reaches Redis; the Cluster owns it and closes it. Required.
	Client redis.UniversalClient
	// Key prefixes every channel, as Node's key option. Default: DefaultKey.
	Key string
	// RequestTimeout bounds waiting for the other nodes' answers.
	// Default: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger gets malformed messages and outages. Default: none.
	Logger *zap.Logger
	// Observer is told what the cluster does.
	Observer Observer
}

// Cluster is this process's membership in a Node redis-adapter cluster:
// one subscriber connection holding the channels of every namespace (so
// PUBSUB NUMSUB counts this node once per namespace, as Node's peers
// expect), one publisher goroutine, and the requests waiting for answers.
// NewAdapter gives each namespace its Adapter. Close ends it all.
type Cluster struct {
	opts   Options
	uid    string
	client redis.UniversalClient
	ps     *redis.PubSub
	log    *zap.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pubq        chan publication
	queuedBytes atomic.Int64
	up          atomic.Bool

	mu       sync.Mutex
	nsps     map[string][]*Adapter // by namespace; the first gets the messages
	patterns map[string]string     // broadcast pattern -> namespace
	channels map[string]string     // request and response channels -> namespace
	pending  map[string]*pending   // by namespace "\x00" requestId
	rec      *RecoveryStore        // recovery on: the store (recovery.go)
	closed   bool
}

// publication is one PUBLISH for the publisher goroutine, or, with
// script, one script call (a recorded event, recovery.go) that goes out in
// the same pipeline and order as the PUBLISHes queued around it.
type publication struct {
	channel string
	payload []byte
	kind    string      // for the Observer; "" for a script
	script  *scriptCall // nil: a PUBLISH of payload on channel
	done    chan error  // nil: fire and forget
}

// scriptCall is a script the publisher runs for a caller that waits for
// its result.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	// state: scriptQueued until the publisher takes it (scriptSent) or
	// its caller gives up waiting first (scriptWithdrawn: never sent).
	state  atomic.Int32
	result string // set before done is answered
}

const (
	scriptQueued int32 = iota
	scriptSent
	scriptWithdrawn
)

// New starts a Cluster on opts.Client. It does not wait for Redis: a node
// whose Redis is down serves its own sockets and joins the cluster when
// Redis answers.
func New(opts Options) (*Cluster, error) {
	if opts.Client == nil {
		return nil, errors.New("starting the redis adapter: no client")
	}
	if opts.Key == "" {
		opts.Key = DefaultKey
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Cluster{
		opts:     opts,
		uid:      newUID(),
		client:   opts.Client,
		log:      opts.Logger.Named("redis"),
		pubq:     make(chan publication, maxQueued),
		nsps:     make(map[string][]*Adapter),
		patterns: make(map[string]string),
		channels: make(map[string]string),
		pending:  make(map[string]*pending),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.ps = c.client.Subscribe(c.ctx)
	c.wg.Add(2)
	go c.receive()
	go c.publish()
	return c, nil
}

// UID is this node's id in the cluster (6 characters, as Node's).
func (c *Cluster) UID() string { return c.uid }

// Up reports whether the subscriber connection is up.
func (c *Cluster) Up() bool { return c.up.Load() }

// NewAdapter is a realtime.Options.NewAdapter: the namespace's Adapter,
// subscribed to its channels.
func (c *Cluster) NewAdapter(n *realtime.Namespace) realtime.Adapter {
	a := &Adapter{MemoryAdapter: realtime.NewMemoryAdapter(n), c: c, nsp: n, name: n.Name()}
	a.initChannels()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		a.closed.Store(true)
		return a
	}
	first := len(c.nsps[a.name]) == 0
	c.nsps[a.name] = append(c.nsps[a.name], a)
	c.patterns[a.pattern] = a.name
	for _, ch := range []string{a.reqChannel, a.respChannel, a.ownRespChannel} {
		c.channels[ch] = a.name
	}
	c.mu.Unlock()
	if first {
		ctx, cancel := context.WithTimeout(c.ctx, publishTimeout)
		defer cancel()
		// go-redis remembers the channels even when Redis is down now, and
		// subscribes them again on every reconnection.
		if err := c.ps.Subscribe(ctx, a.reqChannel, a.respChannel, a.ownRespChannel); err != nil {
			c.log.Warn("subscribing (will retry on reconnection)", zap.String("namespace", a.name), zap.Error(err))
		}
		if err := c.ps.PSubscribe(ctx, a.pattern); err != nil {
			c.log.Warn("subscribing (will retry on reconnection)", zap.String("namespace", a.name), zap.Error(err))
		}
	}
	return a
}

// release forgets a closed adapter; the last one of its namespace
// unsubscribes.
func (c *Cluster) release(a *Adapter) {
	c.mu.Lock()
	list := c.nsps[a.name]
	for i, x := range list {
		if x == a {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	last := len(list) == 0
	if last {
		delete(c.nsps, a.name)
		delete(c.patterns, a.pattern)
		for _, ch := range []string{a.reqChannel, a.respChannel, a.ownRespChannel} {
			delete(c.channels, ch)
		}
	} else {
		c.nsps[a.name] = list
	}
	closed := c.closed
	rec := c.rec
	c.mu.Unlock()
	if last && rec != nil {
		rec.forgetNamespace(a.name)
	}
	if last && !closed {
		ctx, cancel := context.WithTimeout(c.ctx, publishTimeout)
		defer cancel()
		_ = c.ps.Unsubscribe(ctx, a.reqChannel, a.respChannel, a.ownRespChannel)
		_ = c.ps.PUnsubscribe(ctx, a.pattern)
	}
}

// Close leaves the cluster: the subscriber and publisher goroutines end,
// waiting requests fail, and the client is closed.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	psErr := c.ps.Close()
	c.wg.Wait()
	c.setUp(false, nil)
	err := c.client.Close()
	if err == nil && psErr != nil && !errors.Is(psErr, redis.ErrClosed) {
		err = psErr
	}
	if err != nil {
		return fmt.Errorf("closing the redis adapter: %w", err)
	}
	return nil
}

// setUp records the subscriber's state, logging and reporting changes.
func (c *Cluster) setUp(up bool, cause error) {
	if c.up.Swap(up) == up {
		return
	}
	if r := c.recording(); r != nil && !up {
		r.forget() // what is published while the subscription is down never arrives
	}
	if up {
		c.log.Info("redis adapter connected", zap.String("uid", c.uid))
	} else if cause != nil {
		c.log.Warn("redis adapter disconnected: broadcasts stay on this node until Redis is back",
			zap.String("uid", c.uid), zap.Error(cause))
	}
	if fn := c.opts.Observer.OnConnection; fn != nil {
		fn(up)
	}
}

// receive is the subscriber loop: it reads until Close, reconnecting with
// a bounded backoff when Redis goes away (go-redis subscribes every
// channel again on the new connection).
func (c *Cluster) receive() {
	defer c.wg.Done()
	backoff := minBackoff
	pinged := false
	for {
		msg, err := c.ps.ReceiveTimeout(c.ctx, healthInterval)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged { // the last ping was not answered in time
					c.setUp(false, errors.New("no answer to a ping"))
				}
				pinged = true
				if perr := c.ps.Ping(c.ctx); perr == nil {
					continue
				}
			}
			c.setUp(false, err)
			t := time.NewTimer(backoff)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff, pinged = minBackoff, false
		switch m := msg.(type) {
		case *redis.Subscription, *redis.Pong:
			c.setUp(true, nil)
		case *redis.Message:
			c.setUp(true, nil)
			c.dispatch(m)
		}
	}
}

// dispatch routes a message to the adapter of its namespace.
func (c *Cluster) dispatch(m *redis.Message) {
	payload := []byte(m.Payload)
	if len(payload) > MaxMessageBytes {
		c.dropped("too_large", "message larger than the bound", m.Channel, len(payload), nil)
		return
	}
	c.mu.Lock()
	var a *Adapter
	if m.Pattern != "" {
		if name, ok := c.patterns[m.Pattern]; ok {
			a = c.first(name)
		}
	} else {
		a = c.byChannel(m.Channel)
	}
	c.mu.Unlock()
	if a == nil {
		return // a namespace closed meanwhile
	}
	switch {
	case m.Pattern != "":
		a.onBroadcast(m.Channel, payload)
	case m.Channel == a.reqChannel:
		a.onRequest(payload)
	default:
		a.onResponse(payload)
	}
}

// first is the adapter that handles a namespace's messages. c.mu is held.
func (c *Cluster) first(name string) *Adapter {
	if list := c.nsps[name]; len(list) > 0 {
		return list[0]
	}
	return nil
}

// byChannel finds the adapter of a request or response channel (a
// namespace may hold '#', so channels are matched whole). c.mu is held.
func (c *Cluster) byChannel(ch string) *Adapter {
	if name, ok := c.channels[ch]; ok {
		return c.first(name)
	}
	return nil
}

// dropped counts and logs a message not applied.
func (c *Cluster) dropped(reason, msg, channel string, size int, err error) {
	if fn := c.opts.Observer.OnDrop; fn != nil {
		fn(reason)
	}
	if ce := c.log.Check(zap.WarnLevel, "redis message ignored: "+msg); ce != nil {
		fields := []zap.Field{zap.String("reason", reason), zap.String("channel", cutName(channel)), zap.Int("bytes", size)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		ce.Write(fields...)
	}
}

func (c *Cluster) received(kind string) {
	if fn := c.opts.Observer.OnReceive; fn != nil {
		fn(kind)
	}
}

func (c *Cluster) requestFailed(request string) {
	if fn := c.opts.Observer.OnRequestFailed; fn != nil {
		fn(request)
	}
}

// unavailable is the error of an operation that could not reach the other
// nodes.
func unavailable(doing string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%s: redis is not connected: %w", doing, realtime.ErrClusterUnavailable)
	}
	return fmt.Errorf("%s: %w: %w", doing, realtime.ErrClusterUnavailable, cause)
}

// enqueue hands a publication to the publisher goroutine without waiting;
// it fails at once when Redis is down or the queue is full.
func (c *Cluster) enqueue(p publication) error {
	if !c.up.Load() {
		c.droppedSend("unavailable")
		return unavailable("publishing to the other nodes", nil)
	}
	n := int64(len(p.payload))
	if c.queuedBytes.Add(n) > maxQueuedBytes {
		c.queuedBytes.Add(-n)
		c.droppedSend("queue_full")
		return unavailable("publishing to the other nodes", errors.New("publish queue full"))
	}
	select {
	case c.pubq <- p:
		return nil
	default:
		c.queuedBytes.Add(-n)
		c.droppedSend("queue_full")
		return unavailable("publishing to the other nodes", errors.New("publish queue full"))
	}
}

func (c *Cluster) droppedSend(reason string) {
	if fn := c.opts.Observer.OnDrop; fn != nil {
		fn(reason)
	}
}

// publishWait publishes and waits until Redis took the message or ctx
// ends.
func (c *Cluster) publishWait(ctx context.Context, channel string, payload []byte, kind string) error {
	done := make(chan error, 1)
	if err := c.enqueue(publication{channel: channel, payload: payload, kind: kind, done: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		if err != nil {
			return unavailable("publishing to the other nodes", err)
		}
		return nil
	case <-ctx.Done():
		return unavailable("publishing to the other nodes", ctx.Err())
	}
}

// publish is the publisher loop: it sends what enqueue queued, in order,
// in pipelines of up to maxBatch, until Close.
func (c *Cluster) publish() {
	defer c.wg.Done()
	batch := make([]publication, 0, maxBatch)
	for {
		select {
		case <-c.ctx.Done():
			c.failQueued()
			return
		case p := <-c.pubq:
			batch = append(batch[:0], p)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case p := <-c.pubq:
				batch = append(batch, p)
			default:
				break more
			}
		}
		c.send(batch)
	}
}

// send publishes one batch in one pipeline, in order, so that Redis
// applies it in the order it was queued: a broadcast and a recorded event
// sent after it reach the other nodes in that order. A script Redis has
// lost (NOSCRIPT, after a restart) is loaded and run again after the
// pipeline, which is the one case where it can come after the PUBLISHes
// queued behind it.
func (c *Cluster) send(batch []publication) {
	ctx, cancel := context.WithTimeout(c.ctx, publishTimeout)
	defer cancel()
	pipe := c.client.Pipeline()
	cmds := make([]redis.Cmder, len(batch))
	for i, p := range batch {
		switch {
		case p.script == nil:
			cmds[i] = pipe.Publish(ctx, p.channel, p.payload)
		case p.script.state.CompareAndSwap(scriptQueued, scriptSent):
			cmds[i] = p.script.script.EvalSha(ctx, pipe, p.script.keys, p.script.args...)
		}
	}
	_, _ = pipe.Exec(ctx)
	for i, p := range batch {
		if cmds[i] == nil { // withdrawn: its caller no longer waits
			c.queuedBytes.Add(-int64(len(p.payload)))
			continue
		}
		err := cmds[i].Err()
		if sc := p.script; sc != nil {
			if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				cmds[i] = sc.script.Run(ctx, c.client, sc.keys, sc.args...)
			}
			var text string
			text, err = cmds[i].(*redis.Cmd).Text()
			sc.result = text
		}
		c.sent(p, err)
	}
}

// sent accounts for one publication and reports its result.
func (c *Cluster) sent(p publication, err error) {
	c.queuedBytes.Add(-int64(len(p.payload)))
	if p.kind != "" {
		if err == nil {
			if fn := c.opts.Observer.OnPublish; fn != nil {
				fn(p.kind)
			}
		} else {
			c.droppedSend("unavailable")
		}
	}
	if p.done != nil {
		p.done <- err
	}
}

// failQueued answers what is still queued at Close.
func (c *Cluster) failQueued() {
	for {
		select {
		case p := <-c.pubq:
			c.queuedBytes.Add(-int64(len(p.payload)))
			if p.done != nil {
				p.done <- redis.ErrClosed
			}
		default:
			return
		}
	}
}

// serverCount is PUBSUB NUMSUB of a request channel: how many nodes
// (this one included) serve the namespace.
func (c *Cluster) serverCount(ctx context.Context, channel string) (int, error) {
	if !c.up.Load() {
		return 0, unavailable("counting the nodes", nil)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	res, err := c.client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return 0, unavailable("counting the nodes", err)
	}
	return int(res[channel]), nil
}

// pending is a request waiting for answers.
type pending struct {
	mu     sync.Mutex
	handle func(m map[string]any) // called for each answer, under mu
}

func (c *Cluster) addPending(nsp, id string, handle func(map[string]any)) {
	c.mu.Lock()
	c.pending[nsp+"\x00"+id] = &pending{handle: handle}
	c.mu.Unlock()
}

func (c *Cluster) removePending(nsp, id string) {
	c.mu.Lock()
	delete(c.pending, nsp+"\x00"+id)
	c.mu.Unlock()
}

// answer hands a response to its request; false when none waits for it.
func (c *Cluster) answer(nsp, id string, m map[string]any) bool {
	c.mu.Lock()
	p := c.pending[nsp+"\x00"+id]
	c.mu.Unlock()
	if p == nil {
		return false
	}
	p.mu.Lock()
	p.handle(m)
	p.mu.Unlock()
	return true
}

// uidAlphabet is the alphabet of Node's uid2.
const uidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newUID returns 6 random characters of uidAlphabet, like Node's uid2(6).
func newUID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = uidAlphabet[b[i]&63]
	}
	return string(b[:])
}

// cutName bounds a peer-chosen name in a log line.
func cutName(s string) string { return utf8cut.Cut(s, 128) }
