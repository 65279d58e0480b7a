// Package cluster lets several nodes serve one Socket.IO service behind a
// load balancer without sticky sessions: each node advertises the address
// its peers reach it on in Redis (Registry), puts its node id at the start
// of every Engine.IO session id it makes, and forwards a request for a
// session another node holds to that node (Forwarder, an
// engineio.Forwarder). It is a plain net/http library and does not depend
// on Caddy.
//
// Redis holds one key per advertised node, "<key>-node#<id>" = "host:port",
// with a TTL each node refreshes; nothing is written per session. Peers
// look a node id up when they first see it and cache the answer.
package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Defaults of RegistryOptions.
const (
	// DefaultKey is the prefix of the registry's Redis keys, the default
	// key of @socket.io/redis-adapter.
	DefaultKey = "socket.io"
	// DefaultTTL is how long a node's entry lives without a refresh; each
	// node refreshes its own every TTL/3, so a node that dies unannounced
	// is forgotten within a TTL.
	DefaultTTL = 15 * time.Second
	// DefaultLookupTimeout bounds one Redis lookup of a node id.
	DefaultLookupTimeout = time.Second
)

// NodeIDLength is the length of a node id: 4 base64url characters (24
// bits) of SHA-256 of the advertised address, so that a node keeps its id
// across restarts and two addresses rarely share one (the registry logs
// it when they do). Session ids keep 16 random characters (96 bits).
const NodeIDLength = 4

// Lookup bounds. A client chooses the node id in the sids it sends, so an
// id that is not in the cache costs a Redis GET only within a rate: past
// it the id is taken as unknown at once (a request for it gets 400).
const (
	positiveCacheTTL = 5 * time.Second // an address is looked up again after this
	negativeCacheTTL = time.Second     // an unknown id is looked up again after this
	lookupRate       = 20              // Redis lookups of uncached ids per second
	lookupBurst      = 20
	maxCacheEntries  = 4096
)

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// Client is the Redis connection. Required; the caller closes it after
	// Registry.Close.
	Client redis.UniversalClient
	// Key prefixes the registry's keys: "<Key>-node#<id>". Default:
	// "socket.io".
	Key string
	// Advertise is the host:port on which the other nodes reach this one
	// over plain HTTP. Empty: this node forwards to the others but is not
	// reachable itself (its session ids carry no node id).
	Advertise string
	// TTL is the lifetime of this node's entry; it is refreshed every
	// TTL/3. Default: 15s.
	TTL time.Duration
	// LookupTimeout bounds a lookup of a node id in Redis. Default: 1s.
	LookupTimeout time.Duration
	// Logger receives the registry's logs. Default: zap.NewNop().
	Logger *zap.Logger
}

// Registry maps node ids to the addresses the nodes advertise.
type Registry struct {
	rdb       redis.UniversalClient
	key       string
	advertise string
	id        string
	ttl       time.Duration
	timeout   time.Duration
	log       *zap.Logger

	limiter *rate.Limiter
	group   singleflight.Group

	mu    sync.Mutex
	cache map[string]cacheEntry

	startOnce sync.Once
	started   bool // set inside startOnce
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type cacheEntry struct {
	addr  string // "" for an unknown id
	until time.Time
}

// NodeIDFor returns the node id of an advertised address.
func NodeIDFor(advertise string) string {
	sum := sha256.Sum256([]byte(advertise))
	return base64.RawURLEncoding.EncodeToString(sum[:3])
}

// CheckAdvertise reports whether addr is usable as an advertised address:
// host:port with a non-empty host and a port from 1 to 65535.
func CheckAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("advertised address %q: want host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("advertised address %q: empty host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("advertised address %q: port must be 1-65535", addr)
	}
	return nil
}

// NewRegistry returns a registry. It writes nothing to Redis until Start.
func NewRegistry(o RegistryOptions) (*Registry, error) {
	if o.Client == nil {
		return nil, errors.New("starting the cluster registry: no Redis client")
	}
	if o.Advertise != "" {
		if err := CheckAdvertise(o.Advertise); err != nil {
			return nil, fmt.Errorf("starting the cluster registry: %w", err)
		}
	}
	r := &Registry{
		rdb:       o.Client,
		key:       o.Key,
		advertise: o.Advertise,
		ttl:       o.TTL,
		timeout:   o.LookupTimeout,
		log:       o.Logger,
		limiter:   rate.NewLimiter(lookupRate, lookupBurst),
		cache:     make(map[string]cacheEntry),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if r.key == "" {
		r.key = DefaultKey
	}
	if r.ttl <= 0 {
		r.ttl = DefaultTTL
	}
	if r.timeout <= 0 {
		r.timeout = DefaultLookupTimeout
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.log = r.log.Named("cluster")
	if r.advertise != "" {
		r.id = NodeIDFor(r.advertise)
	}
	return r, nil
}

// Start registers this node, if it advertises an address, and keeps its
// entry fresh until Close. The first registration is made before Start
// returns (bounded by the lookup timeout), so that a peer that receives
// the next request of this node's first session already finds it; if
// Redis is down it is retried in the background. Start is idempotent and
// safe for concurrent use; a Start after Close does nothing.
func (r *Registry) Start() {
	r.startOnce.Do(func() {
		select {
		case <-r.stop:
			return
		default:
		}
		if r.advertise == "" {
			return
		}
		r.started = true
		err := r.register()
		go r.run(err)
	})
}

// NodeID is this node's id, "" when it advertises no address.
func (r *Registry) NodeID() string { return r.id }

// Advertise is the address this node advertises, "" for none.
func (r *Registry) Advertise() string { return r.advertise }

func (r *Registry) nodeKey(id string) string { return r.key + "-node#" + id }

// run refreshes this node's entry every TTL/3 until Close, then removes
// it. err is the result of the first registration.
func (r *Registry) run(err error) {
	defer close(r.done)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	failing := false
	for first := true; ; first = false {
		if !first {
			err = r.register()
		}
		switch {
		case err != nil && !failing:
			r.log.Warn("registering this node in Redis failed; retrying", zap.String("node", r.id), zap.Error(err))
			failing = true
		case err == nil && failing:
			r.log.Info("registered this node in Redis again", zap.String("node", r.id))
			failing = false
		}
		select {
		case <-r.stop:
			r.deregister()
			return
		case <-t.C:
		}
	}
}

// register writes this node's entry, and logs when another address held
// the same id (a hash collision: requests for that node's sessions reach
// this one while both run).
func (r *Registry) register() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	prev, err := r.rdb.SetArgs(ctx, r.nodeKey(r.id), r.advertise, redis.SetArgs{TTL: r.ttl, Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", r.nodeKey(r.id), err)
	}
	if prev != r.advertise {
		r.log.Error("another node advertised a different address under this node id; give one of them another address",
			zap.String("node", r.id), zap.String("address", r.advertise), zap.String("other", prev))
	}
	return nil
}

// deregisterScript deletes the entry only if it is still this node's.
var deregisterScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (r *Registry) deregister() {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := deregisterScript.Run(ctx, r.rdb, []string{r.nodeKey(r.id)}, r.advertise).Err(); err != nil {
		r.log.Warn("removing this node from Redis failed; it expires by itself", zap.String("node", r.id), zap.Error(err))
	}
}

// Close stops refreshing and removes this node's entry (bounded by the
// lookup timeout), if Start registered it. It does not close the Redis
// client.
func (r *Registry) Close() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.startOnce.Do(func() {}) // a Start from now on does nothing
	if r.started {
		<-r.done
	}
}

// Lookup returns the address that node id advertises, from the cache or
// Redis. It returns false for this node's own id, an id no node
// advertises, a lookup that failed or timed out, and an uncached id past
// the lookup rate.
func (r *Registry) Lookup(ctx context.Context, id string) (string, bool) {
	if id == "" || id == r.id {
		return "", false
	}
	now := time.Now()
	r.mu.Lock()
	e, ok := r.cache[id]
	r.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.addr, e.addr != ""
	}
	if !r.limiter.Allow() {
		return "", false
	}
	ch := r.group.DoChan(id, func() (any, error) { return r.fetch(id), nil })
	select {
	case res := <-ch:
		addr := res.Val.(string)
		return addr, addr != ""
	case <-ctx.Done():
		return "", false
	}
}

// fetch reads one node's entry from Redis and caches the answer; a failed
// read is cached as unknown for negativeCacheTTL like a missing entry.
func (r *Registry) fetch(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	addr, err := r.rdb.Get(ctx, r.nodeKey(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		addr = ""
	case err != nil:
		if ce := r.log.Check(zap.DebugLevel, "looking up a node failed"); ce != nil {
			ce.Write(zap.String("node", id), zap.Error(err))
		}
		addr = ""
	case CheckAdvertise(addr) != nil || addr == r.advertise:
		// Not an address we forward to (garbage in Redis), or our own
		// (a stale entry of a previous address): no loop through ourselves.
		r.log.Warn("ignoring a node entry in Redis", zap.String("node", id), zap.String("address", addr))
		addr = ""
	}
	ttl := negativeCacheTTL
	if addr != "" {
		ttl = positiveCacheTTL
	}
	r.remember(id, addr, ttl)
	return addr
}

// remember caches a lookup, bounded in entries: a full cache first drops
// its expired entries, then arbitrary ones.
func (r *Registry) remember(id, addr string, ttl time.Duration) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCacheEntries {
		for k, e := range r.cache {
			if !now.Before(e.until) {
				delete(r.cache, k)
			}
		}
		for k := range r.cache {
			if len(r.cache) < maxCacheEntries {
				break
			}
			delete(r.cache, k)
		}
	}
	r.cache[id] = cacheEntry{addr: addr, until: now.Add(ttl)}
}

// markDown takes a node as unknown for negativeCacheTTL, after it failed
// to answer: the requests for its sessions then get 400 at once instead
// of each waiting for a connection to fail.
func (r *Registry) markDown(id string) {
	r.remember(id, "", negativeCacheTTL)
}
