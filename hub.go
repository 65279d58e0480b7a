package socketio

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/adminui"
	"github.com/caddy-socketio/caddy-socketio/realtime/redisadapter"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// hubs holds the Socket.IO servers by hub name. They persist through config
// reloads: a new config's Provision finds the running server, and the old
// config's Cleanup only drops a reference.
var hubs = caddy.NewUsagePool()

// hub is one Socket.IO server and the policies of the handlers that use it.
// Handlers and middlewares are registered on the server once; they read the
// active policy on every call.
type hub struct {
	server  *realtime.Server
	admin   *adminui.UI // the admin UI's namespace, disabled without admin_ui
	policy  atomic.Pointer[policy]
	backoff *webhook.Backoff // refusals of the connect hook, across reloads
	// subjects counts the sockets of each token subject, across reloads
	// (Limits.MaxSocketsPerSubject); subjectLog gates its WARN lines.
	subjects   *realtime.KeyTable
	subjectLog realtime.LogGate
	// generation counts the policies activated; a socket records the one
	// that authorized it, so reverify knows whom to check again.
	generation atomic.Uint64

	mu       sync.Mutex
	stack    []*hubEntry   // live handlers' settings, most recent last
	draining chan struct{} // closed when a background drain (Destruct) is done

	// The adapter is the hub's for its life (see errAdapterChanged):
	// cluster is nil for the memory adapter, adapterIdentity "" then.
	cluster         *redisadapter.Cluster
	adapterIdentity string
	newAdapter      func(*realtime.Namespace) realtime.Adapter
	// advertise is the address the latest config advertises to peers.
	advertise atomic.Pointer[string]
	// serverSide counts server-side webhook calls in flight (bounded by
	// maxServerSideCalls).
	serverSide atomic.Int32

	presence *presence // made by the first policy with presence (presence.go)
	// redisOptions and redisKey are the redis adapter's (nil and "" for
	// memory), for presence across the nodes.
	redisOptions *redis.Options
	redisKey     string
}

// hubEntry is one handler's settings on the hub.
type hubEntry struct {
	pol  *policy
	opts realtime.Options

	config   any    // the config load that provisioned the handler (configIdentity)
	settings string // the handler's JSON config, to compare handlers of one load
}

// newHubWith makes a hub whose namespaces use the adapter of setup: for
// redis, the hub joins the cluster now (without waiting for Redis) and
// leaves it in Destruct.
func newHubWith(opts realtime.Options, setup *adapterSetup, name string, logger *zap.Logger) (*hub, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	cl, err := setup.startCluster(name, logger)
	if err != nil {
		return nil, err
	}
	h := newHubOn(opts, cl, setup.identity)
	h.redisOptions, h.redisKey = setup.redisOptions, setup.key
	return h, nil
}

func newHubOn(opts realtime.Options, cl *redisadapter.Cluster, identity string) *hub {
	h := &hub{backoff: webhook.NewBackoff(), cluster: cl, adapterIdentity: identity, subjects: realtime.NewKeyTable(0)}
	if cl != nil {
		h.newAdapter = cl.NewAdapter
		opts.NewAdapter = cl.NewAdapter
	}
	h.policy.Store(&policy{logger: zap.NewNop(), namespaces: []string{"/"}, mode: AuthOff})
	h.server = realtime.NewServer(h.onCluster(opts))
	h.setupNamespace(h.server.Of("/"))
	h.server.OfFunc(func(name string) bool { return h.policy.Load().allowsNamespace(name) }, h.setupNamespace)
	h.admin = adminui.New(h.server, opts.Logger) // after the application's namespaces
	return h
}

// leaveCluster closes the hub's Redis adapter, once its server has closed
// (its namespaces' adapters first).
func (h *hub) leaveCluster() {
	if h.cluster == nil {
		return
	}
	if err := h.cluster.Close(); err != nil {
		h.policy.Load().logger.Warn("leaving the redis cluster", zap.Error(err))
	}
}

// errHubConflict refuses a config where two handlers with different
// settings share a hub.
var errHubConflict = errors.New("two socketio handlers with different settings share this hub; " +
	"give each its own name (the name subdirective)")

// push activates a handler's settings and remembers them. A hub has one
// policy: two handlers of the same config load that share a hub (two sites
// on the default name, say) must have the same settings, or one site's
// auth would silently apply to the other; that config is refused.
func (h *hub) push(pol *policy, opts realtime.Options, config any, settings string) (*hubEntry, error) {
	e := &hubEntry{pol: pol, opts: opts, config: config, settings: settings}
	h.mu.Lock()
	if config != nil {
		for _, other := range h.stack {
			if other.config == config && other.settings != settings {
				h.mu.Unlock()
				return nil, errHubConflict
			}
		}
	}
	h.stack = append(h.stack, e)
	changed := h.activate(e)
	h.mu.Unlock()
	if changed {
		h.reverify()
	}
	return e, nil
}

// onServerShutdown runs when an HTTP server that carries this hub's
// requests begins to shut down. When Caddy exits, the connections are
// closed now with an Engine.IO close packet, spread over the drain period
// (the HTTP server waits for the polling requests it holds: each is
// answered with its close packet, within the drain), instead of after the
// server waited for the long-polling requests; on a reload, waiting polls
// are answered so the old server can go and the clients poll the new one.
func (h *hub) onServerShutdown() {
	if caddy.Exiting() {
		h.server.Drain(h.policy.Load().drain)
		return
	}
	h.server.ReleasePolls()
}

// remove forgets a handler's settings. When they were the active ones (a
// config that failed to load after this handler was provisioned, or the
// newest of two handlers sharing the hub), the most recent remaining
// settings come back.
func (h *hub) remove(e *hubEntry) {
	h.mu.Lock()
	i := slices.Index(h.stack, e)
	if i < 0 {
		h.mu.Unlock()
		return
	}
	wasTop := i == len(h.stack)-1
	h.stack = slices.Delete(h.stack, i, i+1)
	changed := wasTop && len(h.stack) > 0 && h.activate(h.stack[len(h.stack)-1])
	h.mu.Unlock()
	if changed {
		h.reverify()
	}
}

// activate makes a handler's settings current. It reports whether their
// auth differs from the previous settings' (then push and remove check the
// connected sockets again, with reverify, once the hub's lock is released).
func (h *hub) activate(e *hubEntry) bool {
	prev := h.policy.Swap(e.pol)
	h.server.SetOptions(h.onCluster(e.opts))
	h.applyPresence(e.pol)
	h.configureAdminUI(e.pol)
	if prev != nil && prev.authKey == e.pol.authKey {
		return false
	}
	h.generation.Add(1)
	return true
}

// Destruct closes every connection with an Engine.IO close packet, spread
// over the drain period; the pool calls it when the last handler using the
// hub is cleaned up. When Caddy exits it returns once the hub is closed, so
// the process does not end before; when a reload dropped the hub (the new
// config already serves), the drain goes on in the background.
func (h *hub) Destruct() error {
	h.admin.Close()
	d := h.policy.Load().drain
	if d <= 0 || caddy.Exiting() {
		h.server.Drain(d)
		h.leaveCluster()
		h.subjects.Close()
		h.closePresence()
		return nil
	}
	done := make(chan struct{})
	h.mu.Lock()
	h.draining = done
	h.mu.Unlock()
	go func() {
		defer close(done)
		h.server.Drain(d)
		h.leaveCluster()
		h.subjects.Close()
		h.closePresence()
	}()
	return nil
}

// afterDrain runs f now, or once the hub has drained if Destruct left it
// draining in the background (f then runs on a goroutine of its own).
func (h *hub) afterDrain(f func()) {
	h.mu.Lock()
	done := h.draining
	h.mu.Unlock()
	if done == nil {
		f()
		return
	}
	go func() {
		<-done
		f()
	}()
}

func (h *hub) setupNamespace(ns *realtime.Namespace) {
	ns.Use(h.attach)
	ns.Use(h.authorize)
	ns.Use(h.webhookConnect)
	ns.Use(h.joinRule)
	ns.OnConnection(h.connected)
	h.serverSideEvents(ns)
}

// Interface guards
var _ caddy.Destructor = (*hub)(nil)
