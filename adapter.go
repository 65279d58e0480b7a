package socketio

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/redisadapter"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// maxServerSideCalls bounds the server-side webhook calls in flight per
// hub: another node that floods serverSideEmit makes this one hold no more
// goroutines than that; past it, events are dropped (logged).
const maxServerSideCalls = 256

// Adapter types.
const (
	AdapterMemory = "memory"
	AdapterRedis  = "redis"
)

// DefaultRedisRequestTimeout is how long a request to the other nodes waits
// for their answers (Node's requestsTimeout).
const DefaultRedisRequestTimeout = redisadapter.DefaultRequestTimeout

// AdapterConfig says where a hub's rooms live: in this process (memory,
// the default), or shared by every node of a cluster over Redis, as a peer
// of Node servers running @socket.io/redis-adapter 8.3 (classic
// createAdapter) and of every redis-emitter.
type AdapterConfig struct {
	// Type is memory or redis. Default: memory.
	Type string `json:"type,omitempty"`

	// URL of the Redis server: redis://[[user]:password@]host[:port][/db]
	// or rediss:// for TLS. Placeholders such as {env.REDIS_URL} are
	// resolved at load. Required for redis.
	URL string `json:"url,omitempty"`

	// Key prefixes the cluster's channels, as Node's key option; every node
	// of a cluster must use the same. Default: socket.io.
	Key string `json:"key,omitempty"`

	// RequestTimeout bounds how long a request to the other nodes
	// (listing sockets or rooms, acks of a broadcast, server-side emits)
	// waits for their answers. Default: 5s.
	RequestTimeout caddy.Duration `json:"request_timeout,omitempty"`

	// Advertise is the host:port at which the other nodes reach this one,
	// for forwarding requests of sessions this node owns (polling without
	// sticky sessions). Placeholders are resolved at load. Default: none.
	Advertise string `json:"advertise,omitempty"`
}

// check validates the adapter config; values holding placeholders are
// checked once resolved.
func (a *AdapterConfig) check() error {
	if a == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("adapter: "+format, args...)) }
	switch a.Type {
	case "", AdapterMemory:
		if a.URL != "" || a.Key != "" || a.RequestTimeout != 0 || a.Advertise != "" {
			bad("url, key, request_timeout and advertise are for the redis adapter")
		}
	case AdapterRedis:
		if a.URL == "" {
			bad("redis: a URL is required (redis://host:port)")
		} else if !strings.Contains(a.URL, "{") {
			if err := checkRedisURL(a.URL); err != nil {
				bad("redis: %v", err)
			}
		}
		if strings.ContainsAny(a.Key, " \t\r\n#*?[]") {
			bad("redis: key %q: must not hold spaces or # * ? [ ]", a.Key)
		}
		if a.RequestTimeout < 0 {
			bad("redis: request_timeout must not be negative")
		}
		if a.Advertise != "" && !strings.Contains(a.Advertise, "{") {
			if err := checkAdvertise(a.Advertise); err != nil {
				bad("redis: advertise: %v", err)
			}
		}
	default:
		bad("unknown type %q (want memory or redis)", a.Type)
	}
	return errors.Join(errs...)
}

// checkRedisURL accepts redis:// and rediss:// URLs with a host. Errors
// never repeat the URL: it may hold a password.
func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("the URL does not parse (redis://[[user]:password@]host[:port][/db])")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	if _, err := redis.ParseURL(raw); err != nil {
		return errors.New("the URL is not a Redis URL (redis://[[user]:password@]host[:port][/db])")
	}
	return nil
}

// checkAdvertise accepts host:port with a port in 1-65535.
func checkAdvertise(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", s)
	}
	return nil
}

// adapterSetup is an adapter config resolved at load: what a hub is made
// with, and the identity a later config must keep to share the hub.
type adapterSetup struct {
	identity       string // type, URL, key and timeout; "" for memory
	redisOptions   *redis.Options
	key            string
	requestTimeout time.Duration
	advertise      string
}

// resolve resolves placeholders and parses the URL.
func (a *AdapterConfig) resolve(repl *caddy.Replacer) (*adapterSetup, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if a == nil || a.Type != AdapterRedis {
		return &adapterSetup{}, nil
	}
	raw := repl.ReplaceKnown(a.URL, "")
	if raw == "" {
		return nil, errors.New("adapter: redis: the URL is empty after resolving placeholders (is the environment variable set?)")
	}
	if err := checkRedisURL(raw); err != nil {
		return nil, fmt.Errorf("adapter: redis: %w", err)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, errors.New("adapter: redis: the URL is not a Redis URL")
	}
	// Fail fast when Redis is away: a cross-node call then errors in about
	// a second instead of retrying for several. go-redis also retries a
	// failed dial 5 times, 100 ms apart, by default (DialerRetries): one
	// dial, so a call's own timeout is what bounds it.
	opts.MaxRetries = 1
	opts.DialTimeout = time.Second
	opts.DialerRetries = 1
	s := &adapterSetup{
		redisOptions:   opts,
		key:            cmpOrString(a.Key, redisadapter.DefaultKey),
		requestTimeout: durationOr(a.RequestTimeout, DefaultRedisRequestTimeout),
		advertise:      repl.ReplaceKnown(a.Advertise, ""),
	}
	if s.advertise != "" {
		if err := checkAdvertise(s.advertise); err != nil {
			return nil, fmt.Errorf("adapter: redis: advertise: %w", err)
		}
	}
	s.identity = strings.Join([]string{AdapterRedis, raw, s.key, s.requestTimeout.String()}, "\x00")
	return s, nil
}

func cmpOrString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// startCluster joins the Redis cluster of a new hub; nil for memory.
func (s *adapterSetup) startCluster(hubName string, logger *zap.Logger) (*redisadapter.Cluster, error) {
	if s.redisOptions == nil {
		return nil, nil
	}
	routeRedisLogs()
	cl, err := redisadapter.New(redisadapter.Options{
		Client:         redis.NewClient(s.redisOptions),
		Key:            s.key,
		RequestTimeout: s.requestTimeout,
		Logger:         logger,
		Observer:       redisObserver(hubName),
	})
	if err != nil {
		return nil, fmt.Errorf("starting the redis adapter: %w", err)
	}
	return cl, nil
}

// errAdapterChanged refuses a reload that changes a running hub's adapter:
// its namespaces hold their adapters for their lives.
var errAdapterChanged = errors.New("the adapter settings (type, url, key, request_timeout) of a running hub cannot change on reload; " +
	"restart Caddy, or give the handler a new name")

// serverSideEvents forwards what other nodes send with serverSideEmit to
// the webhook's server_side URL; its reply's ack (its first argument) is
// the answer a serverSideEmitWithAck gets. Without the URL, nothing
// answers, as a Node peer without a listener.
func (h *hub) serverSideEvents(ns *realtime.Namespace) {
	ns.OnServerSideEmit(func(args []any, ack func(any)) {
		w := h.policy.Load().webhook
		if w == nil || w.serverSide == "" {
			return
		}
		event, _ := args[0].(string)
		b := &webhook.Body{Type: "server_side", Namespace: ns.Name(), Event: event, Args: args[1:], Ack: ack != nil, Rooms: []string{}}
		if b.Args == nil {
			b.Args = []any{}
		}
		if h.serverSide.Add(1) > maxServerSideCalls {
			h.serverSide.Add(-1)
			w.logger.Warn("server-side event dropped: too many webhook calls in flight",
				zap.String("namespace", ns.Name()), zap.Int("max", maxServerSideCalls))
			return
		}
		// Never on the adapter's receiving goroutine: the call may take
		// the webhook's timeout.
		started := w.client.Go(func() {
			defer h.serverSide.Add(-1)
			reply, err := w.client.Call(w.serverSide, b)
			if err != nil {
				if ce := w.logger.Check(zap.WarnLevel, "webhook failed"); ce != nil {
					ce.Write(zap.String("namespace", ns.Name()), zap.String("type", "server_side"), zap.String("result", err.Error()))
				}
				return
			}
			if ack == nil {
				return
			}
			v, err := decodeRaw(reply.Ack)
			if err != nil {
				return
			}
			if list, ok := v.([]any); ok && len(list) > 0 {
				ack(list[0])
			} else {
				ack(v)
			}
		})
		if !started {
			h.serverSide.Add(-1)
		}
	})
}

// broadcastFailed logs a broadcast that failed. One that reached the
// local sockets but not the other nodes (Redis down) is a debug entry: the
// adapter logs the outage itself, once, and counts every message it could
// not send (caddy_socketio_redis_dropped_total), so an outage does not
// write a warning per relay.
func broadcastFailed(logger *zap.Logger, msg string, err error, fields ...zap.Field) {
	level := zap.WarnLevel
	if errors.Is(err, realtime.ErrClusterUnavailable) {
		level = zap.DebugLevel
	}
	if ce := logger.Check(level, msg); ce != nil {
		ce.Write(append(fields, zap.Error(err))...)
	}
}
