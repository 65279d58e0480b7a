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
type Server struct {
	engine *engineio.Server
	opts   atomic.Pointer[Options]

	mu        sync.RWMutex
	nsps      map[string]*Namespace
	dynamics  []dynamicNamespace
	conns     map[*conn]struct{}
	closed    bool
	closeDone chan struct{} // closed when Close has finished
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
		conns:     make(map[*conn]struct{}),
		closeDone: make(chan struct{}),
	}
	s.opts.Store(&opts)
	s.engine = engineio.NewServer(s.engineOptions(opts))
	s.Of("/")
	return s
}

func (s *Server) engineOptions(opts Options) engineio.Options {
	eo := opts.Engine
	eo.OnSession = s.onSession
	return eo
}

// SetOptions replaces the options for connections made from now on (a
// configuration reload); connected clients keep theirs. The adapter factory
// applies to namespaces created from now on.
func (s *Server) SetOptions(opts Options) {
	opts = opts.withDefaults()
	s.opts.Store(&opts)
	s.engine.SetOptions(s.engineOptions(opts))
}

// logger is the current configuration's logger: a reload's new logger
// applies at once.
func (s *Server) logger() *zap.Logger { return s.opts.Load().Logger }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

func (s *Server) onSession(sess *engineio.Session) {
	c := newConn(s, sess, s.opts.Load())
	sess.SetHandler(c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sess.Close("server shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// ConnCount is the number of open Engine.IO connections.
func (s *Server) ConnCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.conns)
}

// Of returns the namespace with that name, creating it if needed. Names
// start with "/"; one without is given one.
func (s *Server) Of(name string) *Namespace {
	name = normalizeNamespace(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := newNamespace(s, name, s.opts.Load().NewAdapter)
	s.nsps[name] = n
	return n
}

// OfFunc declares dynamic namespaces: a CONNECT to a namespace that does not
// exist yet creates it when match accepts its name, and setup runs once on
// the new namespace (to add middlewares and connection handlers) before the
// socket connects. Matchers are tried in the order declared.
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

// lookupNamespace finds the namespace a CONNECT names, creating a dynamic
// one when a matcher accepts it; nil when there is none.
func (s *Server) lookupNamespace(name string) *Namespace {
	s.mu.RLock()
	n := s.nsps[name]
	dyn := s.dynamics
	s.mu.RUnlock()
	if n != nil {
		return n
	}
	for _, d := range dyn {
		if !d.match(name) {
			continue
		}
		// Set the namespace up before publishing it, so no socket can reach
		// it before its middlewares are in place.
		fresh := newNamespace(s, name, s.opts.Load().NewAdapter)
		if d.setup != nil {
			d.setup(fresh)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if n = s.nsps[name]; n != nil { // another connection created it meanwhile
			_ = fresh.adapter.Close()
			return n
		}
		s.nsps[name] = fresh
		return fresh
	}
	return nil
}

// ReleasePolls answers every waiting polling request with a noop packet,
// keeping the connections: for an HTTP server that shuts down while a new
// one takes over (a configuration reload), so it need not wait for them.
func (s *Server) ReleasePolls() { s.engine.ReleasePolls() }

// Close closes every connection with an Engine.IO close packet, waits until
// the engine's goroutines have ended, and closes the adapters.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone // a concurrent Close returns when the first is done
		return
	}
	s.closed = true
	s.mu.Unlock()
	defer close(s.closeDone)
	s.engine.Close()
	for _, n := range s.Namespaces() {
		if err := n.adapter.Close(); err != nil {
			s.logger().Warn("closing adapter", zap.String("namespace", n.name), zap.Error(err))
		}
	}
}

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
