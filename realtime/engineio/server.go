// Package engineio is an Engine.IO v4 server (the transport layer under
// Socket.IO v5): long-polling and websocket transports, upgrades between
// them, heartbeats and bounded per-session queues. It is a plain
// net/http handler and does not depend on Caddy.
package engineio

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Shutdown bounds: Close waits this long for sessions to flush and their
// goroutines to end, then closes their network connections and waits
// forceCloseGrace more. Variables so tests can shorten them.
var (
	shutdownGrace   = 5 * time.Second
	forceCloseGrace = 2 * time.Second
)

// Server serves Engine.IO requests. Mount it on a path prefix; it ignores
// the path itself.
type Server struct {
	cfg atomic.Pointer[config]

	mu       sync.Mutex
	sessions map[string]*Session
	closing  bool
	active   int           // running ServeHTTP calls and writer goroutines
	idle     chan struct{} // closed when active drops to zero while closing

	releases atomic.Uint64 // ReleasePolls calls: a waiting GET ends when it changes
	park     parkState     // the poller of parked websocket readers (park.go)
	cpu      cpuGauge      // whether direct writes step aside (cpugauge.go)

	fwd forwards // requests the Forwarder is serving (forward.go)
}

// NewServer returns a Server configured by opts.
func NewServer(opts Options) *Server {
	srv := &Server{sessions: make(map[string]*Session)}
	srv.cfg.Store(newConfig(opts))
	return srv
}

// SetOptions replaces the options for new sessions (a config reload);
// existing sessions keep theirs.
func (srv *Server) SetOptions(opts Options) {
	srv.cfg.Store(newConfig(opts))
}

// SessionCount returns the number of sessions not yet fully closed.
func (srv *Server) SessionCount() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// enter registers a running request; it fails once Close has started.
func (srv *Server) enter() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closing {
		return false
	}
	srv.active++
	return true
}

// track registers a goroutine that Close must wait for: one started on
// behalf of a running request (so active is not zero and Close cannot
// have returned yet), or one running an OnClose off a request, counted
// under the session's lock before the session is seen closed (see
// closeWith).
func (srv *Server) track() {
	srv.mu.Lock()
	srv.active++
	srv.mu.Unlock()
}

func (srv *Server) leave() {
	srv.mu.Lock()
	srv.active--
	if srv.active == 0 && srv.idle != nil {
		close(srv.idle)
		srv.idle = nil
	}
	srv.mu.Unlock()
}

// register adds a new session and starts its heartbeat.
func (srv *Server) register(s *Session) bool {
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		return false
	}
	srv.sessions[s.id] = s
	srv.mu.Unlock()
	s.startHeartbeat()
	return true
}

func (srv *Server) remove(s *Session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

func (srv *Server) lookup(sid string) *Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[sid]
}

// sessionsLocked snapshots the sessions, to act on them without srv.mu.
// srv.mu must be held.
func (srv *Server) sessionsLocked() []*Session {
	return slices.Collect(maps.Values(srv.sessions))
}

// ReleasePolls answers every polling GET that is waiting with a noop
// packet now, instead of at the next packet or ping. An HTTP server that
// shuts down (a configuration reload) waits for its running requests; with
// this it need not wait a ping interval, and the clients, which poll again
// at once, reach the server that replaces it. Sessions stay open. The
// polling GETs this server forwards to other nodes (Options.Forwarder)
// are released too.
func (srv *Server) ReleasePolls() {
	srv.releases.Add(1)
	srv.mu.Lock()
	list := srv.sessionsLocked()
	srv.mu.Unlock()
	for _, s := range list {
		signal(s.pollNotify)
	}
	srv.releaseForwards()
}

// Close closes every session with the close packet "1" (reason "server
// shutting down"), refuses new requests with 503 and waits until every
// request it is serving and goroutine it started has ended, OnCloses that
// the engine runs off a request included (a slow client's, a ping
// timeout's). After
// shutdownGrace it closes the sessions' network connections and waits a
// little more, so Close is bounded even with stuck clients.
func (srv *Server) Close() {
	defer srv.stopPoller()
	srv.mu.Lock()
	srv.closing = true
	list := srv.sessionsLocked()
	log := srv.cfg.Load().Logger
	srv.mu.Unlock()

	srv.stopForwards()
	for _, s := range list {
		s.closeWith(ReasonServerShutdown, kindShutdown, onCloseHere)
		s.endLinger() // no later GET can reach a closed server
	}
	// Looked at after closing: the count then includes the writers the
	// closes woke, and an OnClose of a session that another goroutine
	// closed first (counted before that session's lock was released, so
	// before closeWith above returned for it).
	srv.mu.Lock()
	var idle chan struct{}
	if srv.active > 0 {
		if srv.idle == nil {
			srv.idle = make(chan struct{})
		}
		idle = srv.idle
	}
	srv.mu.Unlock()
	if idle == nil {
		return
	}
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case <-idle:
		return
	case <-t.C:
	}
	log.Warn("shutdown: closing connections that did not finish in time")
	srv.mu.Lock()
	list = srv.sessionsLocked()
	srv.mu.Unlock()
	for _, s := range list {
		s.forceClose()
	}
	t.Reset(forceCloseGrace)
	select {
	case <-idle:
	case <-t.C:
		log.Error("shutdown: requests still running after force close")
	}
}

// ServeHTTP serves one Engine.IO request: CORS preflight and the checks
// common to every request here, then serveSession for a request with a
// sid and serveHandshake for one without. Checks run in Node's order so
// that a bad request gets the same error code as from Node.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !srv.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer srv.leave()
	cfg := srv.cfg.Load()
	q := queryOf(r)
	upgrade := websocket.IsWebSocketUpgrade(r)
	origin := r.Header.Get("Origin")
	allowed := cfg.originAllowed(r, origin)
	if allowed {
		setCORS(w.Header(), cfg, origin)
	}

	if r.Method == http.MethodOptions && !upgrade {
		if !allowed {
			errForbidden.write(w, false)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	transport := q.Get("transport")
	if !cfg.transportEnabled(transport) {
		srv.refuse(w, r, cfg, errTransportUnknown, upgrade)
		return
	}
	if !validOriginChars(origin) {
		srv.refuse(w, r, cfg, errBadRequest, upgrade)
		return
	}
	if !allowed {
		srv.refuse(w, r, cfg, errForbidden, upgrade)
		return
	}
	// Websocket needs an HTTP/1.1 upgrade (hijacking); HTTP/2 clients use
	// polling.
	wsMismatch := transport == TransportWebSocket && (!upgrade || r.ProtoMajor != 1) ||
		upgrade && transport != TransportWebSocket

	if sid := q.Get("sid"); sid != "" {
		srv.serveSession(w, r, cfg, sid, q, upgrade, wsMismatch)
		return
	}
	srv.serveHandshake(w, r, cfg, q, upgrade, wsMismatch)
}

// serveSession serves a request for the existing session sid: a polling
// GET or POST, or a websocket upgrading it. wsMismatch is a transport
// that does not match the request (see ServeHTTP).
func (srv *Server) serveSession(w http.ResponseWriter, r *http.Request, cfg *config, sid string, q query, upgrade, wsMismatch bool) {
	s := srv.lookup(sid)
	if s == nil && srv.forward(w, r, cfg, sid) {
		return
	}
	if s == nil || s.gone() {
		srv.refuse(w, r, cfg, errSessionUnknown, upgrade)
		return
	}
	// A request speaks the protocol of its session (Node does not check;
	// a v4 client reaching a v3 session could not parse it anyway).
	if isV4(q) != (s.v3 == nil) || wsMismatch {
		srv.refuse(w, r, cfg, errBadRequest, upgrade)
		return
	}
	if upgrade {
		srv.serveUpgrade(w, r, s)
		return
	}
	if s.Transport() != TransportPolling {
		srv.refuse(w, r, cfg, errBadRequest, upgrade)
		return
	}
	switch r.Method {
	case http.MethodGet:
		srv.servePoll(w, r, s)
	case http.MethodPost:
		srv.serveData(w, r, s)
	default:
		srv.refuse(w, r, cfg, errBadRequest, upgrade)
	}
}

// serveHandshake serves a request without a sid: it opens a session over
// polling or websocket, once AllowRequest accepts it.
func (srv *Server) serveHandshake(w http.ResponseWriter, r *http.Request, cfg *config, q query, upgrade, wsMismatch bool) {
	if r.Method != http.MethodGet {
		srv.refuse(w, r, cfg, errBadHandshakeMethod, upgrade)
		return
	}
	if wsMismatch {
		srv.refuse(w, r, cfg, errBadRequest, upgrade)
		return
	}
	if cfg.AllowRequest != nil {
		if err := cfg.AllowRequest(r); err != nil {
			e := errForbidden
			if msg := err.Error(); msg != "" {
				e.message = msg
			}
			srv.refuse(w, r, cfg, e, upgrade)
			return
		}
	}
	if !isV4(q) {
		// Node: with allowEIO3 a missing or unknown EIO opens a v3
		// session; without it, code 5.
		if !cfg.AllowEIO3 {
			srv.refuse(w, r, cfg, errUnsupportedProtocol, upgrade)
			return
		}
		if j, ok := jsonpIndex(q); ok && !upgrade {
			if !validJSONPIndex(j) {
				srv.refuse(w, r, cfg, errBadRequest, upgrade)
				return
			}
			if !cfg.jsonpAllowed(r) {
				srv.refuse(w, r, cfg, errForbidden, upgrade)
				return
			}
		}
	}
	if upgrade {
		srv.handshakeWebSocket(w, r, cfg)
		return
	}
	srv.handshakePolling(w, r, cfg)
}

func (srv *Server) refuse(w http.ResponseWriter, r *http.Request, cfg *config, e requestError, upgrade bool) {
	if ce := cfg.Logger.Check(zap.DebugLevel, "request refused"); ce != nil {
		ce.Write(zap.Int("code", e.code), zap.String("message", e.message),
			zap.String("method", r.Method), zap.String("remote", r.RemoteAddr))
	}
	if fn := cfg.Observer.OnRefused; fn != nil && SessionID(r) == "" {
		fn(e.code)
	}
	e.write(w, upgrade)
}

// setCORS adds the CORS headers for an allowed origin, on every response
// including errors, so browsers can read the error.
//
// A page that connects with credentials (socket.io-client's
// withCredentials, as @socket.io/admin-ui does) needs its own origin
// echoed with Access-Control-Allow-Credentials: true; browsers refuse a
// "*" answer to a credentialed request. So a listed origin is echoed with
// credentials even when "*" is listed too; any other origin under "*"
// gets "*", without credentials, so that "*" never lets every site's
// pages make credentialed requests. (A same-origin page needs no CORS.)
func setCORS(h http.Header, cfg *config, origin string) {
	if origin == "" {
		if cfg.anyOrigin {
			h.Set("Access-Control-Allow-Origin", "*")
		}
		return
	}
	if cfg.anyOrigin {
		if len(cfg.origins) == 0 {
			h.Set("Access-Control-Allow-Origin", "*")
			return
		}
		if _, listed := cfg.origins[normalizeOrigin(origin)]; !listed {
			h.Set("Access-Control-Allow-Origin", "*")
			h.Add("Vary", "Origin")
			return
		}
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// newRegisteredSession creates a session, registers it and lets the
// application attach its handler. ws is the websocket of a session opened
// directly over websocket, nil for polling (see newSession). It returns
// nil once the server closes; ws is then still the caller's to close.
func (srv *Server) newRegisteredSession(r *http.Request, cfg *config, ws *websocket.Conn) *Session {
	s := newSession(srv, cfg, r, ws)
	if !srv.register(s) {
		return nil
	}
	if ce := s.log().Check(zap.DebugLevel, "session opened"); ce != nil {
		ce.Write(zap.String("transport", s.transportLocked()), zap.String("remote", r.RemoteAddr))
	}
	if fn := cfg.Observer.OnOpen; fn != nil {
		fn(s.transportLocked())
	}
	if cfg.OnSession != nil {
		cfg.OnSession(s)
	}
	return s
}

func (srv *Server) handshakePolling(w http.ResponseWriter, r *http.Request, cfg *config) {
	s := srv.newRegisteredSession(r, cfg, nil)
	if s == nil {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	open := &Message{frame: cfg.openPacket(s.id, false)} // its frame starts with the type, as a text message's
	s.writePoll(w, r, []outPacket{{typ: typeOpen, msg: open}}, len(open.frame))
}

// writePollBody writes a polling GET response, compressed when the
// client accepts it and it is over the threshold (see Compression).
func writePollBody(w http.ResponseWriter, r *http.Request, cfg *config, body []byte, contentType string) {
	h := w.Header()
	if enc := cfg.pollEncoding(r, len(body)); enc != "" {
		if z, err := compressBody(enc, body); err == nil {
			body = z
			h.Set("Content-Encoding", enc)
		}
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	// text/plain, as Node; no nosniff, which would stop browsers from
	// running a JSONP response. JSONP's only request-derived part, j, is
	// digits (validJSONPIndex), and its payload a JSON string (jsonpBody).
	_, _ = w.Write(body) //nolint:gosec // see above
}
