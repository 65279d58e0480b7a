package realtime

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// Server is a Socket.IO server: an http.Handler for the Socket.IO path (it
// does not look at the path itself), and the namespaces behind it.
//
// Lock order: Server.mu, then Namespace.mu. An Adapter's lock is never
// held together with a Namespace's: adapters collect socket ids under
// their lock and call Namespace.LocalSockets or DeliverLocal after
// releasing it, and the namespace calls no Adapter method under its own
// (see Adapter). Nothing takes Server.mu while holding a Namespace's or an
// Adapter's lock, and no Adapter method is called with Server.mu held (a
// dropped namespace's adapter is closed after it is released). conn.mu and
// Socket.mu are taken alone.
//
// Dynamic namespaces (OfFunc) are published, in nsps, only when a socket
// has passed their middlewares: until then they wait in pending, where a
// second CONNECT to the same name finds and shares them. Each socket holds
// its namespace (Namespace.joining) from the lookup until it is admitted or
// refused; a dynamic namespace is dropped, under Server.mu, only when it
// has neither sockets nor holders, so a socket is always admitted to a
// namespace that stays published.
type Server struct {
	engine *engineio.Server
	opts   atomic.Pointer[Options]
	// recStore is the recovery store, made when recovery is first on
	// (recovery.go).
	recStore atomic.Pointer[recoveryStoreRef]
	watch    atomic.Pointer[watcherRef] // the Watcher, nil when none (watch.go)
	// recLive finds a connected socket by namespace and pid, for a client
	// that comes back before its old transport was seen to go.
	recLive sync.Map // livePID -> *Socket

	mu        sync.RWMutex
	nsps      map[string]*Namespace // published namespaces
	pending   map[string]*Namespace // dynamic namespaces no socket was admitted to yet
	dynamics  []dynamicNamespace
	conns     map[*conn]struct{}
	wsConns   int // the conns on WebSocket (conn.onWS), for PollingConnCount
	closed    bool
	closeDone chan struct{} // closed when Close has finished

	limits *connLimits // the connection limits' counts, kept across SetOptions

	connectWait connectWait // Options.ConnectTimeout's queue (connectwait.go)
}

type dynamicNamespace struct {
	match func(name string) bool
	setup func(*Namespace)
}

// NewServer returns a Server with the main namespace "/" created.
func NewServer(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		nsps:      make(map[string]*Namespace),
		pending:   make(map[string]*Namespace),
		conns:     make(map[*conn]struct{}),
		closeDone: make(chan struct{}),
	}
	s.limits = newConnLimits(opts.LimitTableBytes)
	s.opts.Store(&opts)
	s.setupRecovery(&opts)
	s.engine = engineio.NewServer(s.engineOptions(opts))
	s.Of("/")
	return s
}

func (s *Server) engineOptions(opts Options) engineio.Options {
	eo := opts.Engine
	eo.OnSession = s.onSession
	// allowHandshake runs the caller's own AllowRequest first, read from
	// the options current at each handshake.
	eo.AllowRequest = s.allowHandshake
	eo.Observer = s.watchEngine(eo.Observer)
	return eo
}

// SetOptions replaces the options for connections made from now on (a
// configuration reload); connected clients keep theirs. The adapter factory
// applies to namespaces created from now on.
func (s *Server) SetOptions(opts Options) {
	opts = opts.withDefaults()
	s.setupRecovery(&opts)
	s.opts.Store(&opts)
	s.engine.SetOptions(s.engineOptions(opts))
}

// logger is the current configuration's logger: a reload's new logger
// applies at once.
func (s *Server) logger() *zap.Logger { return s.opts.Load().Logger }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && engineio.SessionID(r) == "" {
		// A handshake (the engine's own test): it carries what it
		// reserves of the connection limits to its session.
		var a *admission
		r, a = withAdmission(r)
		defer a.cancel()
	}
	s.engine.ServeHTTP(w, r)
}

func (s *Server) onSession(sess *engineio.Session) {
	c := newConn(s, sess, s.opts.Load())
	// The handshake's reservation of the connection limits is taken before
	// the handler is set, so that OnClose, which gives it back, sees it.
	if a, ok := sess.Kept().(*admission); ok {
		c.releaseLimits = a.take()
	}
	sess.SetHandler(c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sess.Close(ReasonServerShutdown)
		return
	}
	s.conns[c] = struct{}{}
	if sess.Transport() == engineio.TransportWebSocket {
		c.onWS = true
		s.wsConns++
	}
	s.mu.Unlock()
	if c.v3 {
		c.connectImplicit()
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		if c.onWS {
			s.wsConns--
		}
	}
	s.mu.Unlock()
}

// ConnCount is the number of open Engine.IO connections.
func (s *Server) ConnCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// Of returns the namespace with that name, creating it if needed. Names
// start with "/"; one without is given one. A namespace got from Of stays
// for the life of the Server, even one that an OfFunc created.
func (s *Server) Of(name string) *Namespace {
	name = normalizeNamespace(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		n.dynamic.Store(false)
		return n
	}
	if n := s.pending[name]; n != nil {
		delete(s.pending, name)
		s.nsps[name] = n
		n.state = nsLive
		n.dynamic.Store(false)
		return n
	}
	n := newNamespace(s, name, s.opts.Load().NewAdapter)
	s.nsps[name] = n
	return n
}

// OfFunc declares dynamic namespaces: a CONNECT to a namespace that does not
// exist yet creates it when match accepts its name, and setup runs on the
// new namespace (to add middlewares and connection handlers) before the
// socket goes through them. Matchers are tried in the order declared.
//
// A dynamic namespace becomes visible (Namespace, Namespaces) once its
// first socket has passed its middlewares: CONNECTs that are refused leave
// nothing behind. It is dropped again when its last socket leaves (Node's
// cleanupEmptyChildNamespaces), unless Of was called for it; the next
// CONNECT to the name creates and sets up a new one. Two CONNECTs to a new
// name at once share one namespace, but setup may run for a namespace that
// is then discarded unused.
func (s *Server) OfFunc(match func(name string) bool, setup func(*Namespace)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynamics = append(s.dynamics, dynamicNamespace{match: match, setup: setup})
}

// Namespace returns an existing namespace.
func (s *Server) Namespace(name string) (*Namespace, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.nsps[normalizeNamespace(name)]
	return n, ok
}

// Namespaces lists the existing namespaces.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	return out
}

// acquireNamespace finds the namespace a CONNECT names, setting up a
// pending dynamic one when a matcher accepts it; nil when there is none.
// The caller holds the namespace until admitNamespace or
// releaseNamespace.
func (s *Server) acquireNamespace(name string) *Namespace {
	s.mu.RLock()
	n := s.nsps[name]
	if n == nil {
		n = s.pending[name]
	}
	if n != nil {
		// Under the read lock: a drop, which holds the write lock, sees it.
		n.joining.Add(1)
	}
	dyn := s.dynamics
	s.mu.RUnlock()
	if n != nil {
		return n
	}
	for _, d := range dyn {
		if !d.match(name) {
			continue
		}
		// Set the namespace up before anyone can find it, so no socket
		// reaches it before its middlewares are in place.
		fresh := newNamespace(s, name, s.opts.Load().NewAdapter)
		fresh.dynamic.Store(true)
		fresh.state = nsPending
		if d.setup != nil {
			d.setup(fresh)
		}
		s.mu.Lock()
		n = s.nsps[name]
		if n == nil {
			n = s.pending[name]
		}
		if n == nil { // still the first: ours waits for its first socket
			n = fresh
			s.pending[name] = n
		}
		n.joining.Add(1)
		s.mu.Unlock()
		if n != fresh { // another connection set one up meanwhile
			s.closeAdapter(fresh)
		}
		return n
	}
	return nil
}

// admitNamespace adds a socket that passed the middlewares of n, which it
// holds, publishing n if it was pending.
func (s *Server) admitNamespace(n *Namespace, sock *Socket) {
	s.mu.Lock()
	if n.state == nsPending {
		delete(s.pending, n.name)
		s.nsps[n.name] = n
		n.state = nsLive
	}
	n.mu.Lock()
	n.sockets[sock.id] = sock
	n.mu.Unlock()
	n.joining.Add(-1)
	s.mu.Unlock()
}

// releaseNamespace lets go of n for a socket that was refused.
func (s *Server) releaseNamespace(n *Namespace) {
	s.mu.Lock()
	n.joining.Add(-1)
	drop := s.dropIfEmptyLocked(n)
	s.mu.Unlock()
	if drop {
		s.closeAdapter(n)
	}
}

// leaveNamespace takes a disconnected socket out of n, and drops n if it
// is dynamic and now empty.
func (s *Server) leaveNamespace(n *Namespace, sock *Socket) {
	if !n.dynamic.Load() {
		n.remove(sock)
		return
	}
	s.mu.Lock()
	n.remove(sock)
	drop := s.dropIfEmptyLocked(n)
	s.mu.Unlock()
	if drop {
		s.closeAdapter(n)
	}
}

// dropIfEmptyLocked forgets n if it is dynamic and nobody is in it or on
// the way in; true when the caller must close its adapter. s.mu is held.
func (s *Server) dropIfEmptyLocked(n *Namespace) bool {
	if !n.dynamic.Load() || n.joining.Load() > 0 || n.state == nsDropped || n.Len() > 0 {
		return false
	}
	switch n.state {
	case nsPending:
		delete(s.pending, n.name)
	case nsLive:
		delete(s.nsps, n.name)
	}
	n.state = nsDropped
	return true
}

func (s *Server) closeAdapter(n *Namespace) {
	if err := n.adapter.Close(); err != nil {
		s.logger().Warn("closing adapter", zap.String("namespace", n.name), zap.Error(err))
	}
}

// ReleasePolls answers every waiting polling request with a noop packet,
// keeping the connections: for an HTTP server that shuts down while a new
// one takes over (a configuration reload), so it need not wait for them.
func (s *Server) ReleasePolls() { s.engine.ReleasePolls() }

// Close closes every connection with an Engine.IO close packet, waits until
// the engine's goroutines have ended, and closes the adapters: a Drain
// over no time.
func (s *Server) Close() { s.Drain(0) }

func normalizeNamespace(name string) string {
	if name == "" || name[0] != '/' {
		return "/" + name
	}
	return name
}

// newID returns a 20-character base64url id, like Node's socket ids.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
