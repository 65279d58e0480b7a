package engineio

import (
	"context"
	"net/http"
	"sync"
)

// Forwarder lets one node of a cluster serve the requests of a session
// that another node holds, so that a load balancer need not send every
// request of a session to the same node (no sticky sessions). The engine
// knows nothing of the cluster: it puts the forwarder's node id at the
// start of the session ids it makes, and hands it the requests whose sid
// no session of this server has. realtime/cluster implements it.
type Forwarder interface {
	// NodeID is put at the start of every new session id: at most
	// MaxNodeIDLength base64url characters, the rest of the 20 staying
	// random. An empty or invalid id leaves session ids fully random. It
	// is called for each new session, before the session exists, so a
	// forwarder can make itself known to the cluster only once this
	// server has a session to be found for (and not in a process that
	// only validates a config).
	NodeID() string
	// ServeForeign is called for a request with a sid that no session of
	// this server has (never one this server closed), after the checks
	// every request gets (transport, origin) and with the CORS headers
	// already set on w. It serves the request, typically by forwarding it
	// to the node that holds the session, and returns true; or it returns
	// false having written nothing, and the server refuses the request as
	// Node does: 400 "Session ID unknown".
	//
	// r's context ends when the request does, and also, for a polling GET,
	// when ReleasePolls or Close is called (the forwarder should then
	// answer it as the server answers its own waiting GETs: a noop packet,
	// so the client polls again, through another server if this one is
	// going), and for a websocket upgrade when Close is called. A POST's
	// context is not ended by the server: it is short, and cutting it
	// could lose packets the client sent.
	ServeForeign(w http.ResponseWriter, r *http.Request, sid string) bool
}

// MaxNodeIDLength bounds Forwarder.NodeID: session ids keep at least 14
// random characters (84 bits).
const MaxNodeIDLength = 6

// sessionIDPrefix is the forwarder's node id if it is usable in a
// session id, else "".
func sessionIDPrefix(f Forwarder) string {
	if f == nil {
		return ""
	}
	id := f.NodeID()
	if len(id) > MaxNodeIDLength {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if !isBase64URL(id[i]) {
			return ""
		}
	}
	return id
}

func isBase64URL(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// newSessionID returns a session id that starts with the forwarder's node
// id, if any: still 20 base64url characters.
func (c *config) newSessionID() string {
	id := newSessionID()
	prefix := sessionIDPrefix(c.Forwarder)
	return prefix + id[len(prefix):]
}

// forwards holds what ReleasePolls and Close end: the contexts of the
// polling GETs and websocket upgrades being served by the Forwarder. A
// forwarded GET waits as long as the other node holds it, and a forwarded
// websocket lasts as long as the session there, so neither can be waited
// for.
type forwards struct {
	mu      sync.Mutex
	cancels map[*context.CancelFunc]bool // true for a polling GET
	closed  bool
}

// forward offers a request for an unknown sid to the forwarder; false
// means it did not serve it.
func (srv *Server) forward(w http.ResponseWriter, r *http.Request, cfg *config, sid string) bool {
	if cfg.Forwarder == nil {
		return false
	}
	if r.Method == http.MethodPost {
		return cfg.Forwarder.ServeForeign(w, r, sid)
	}
	poll := r.Method == http.MethodGet && r.Header.Get("Upgrade") == ""
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f := &srv.fwd
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	if f.cancels == nil {
		f.cancels = make(map[*context.CancelFunc]bool)
	}
	f.cancels[&cancel] = poll
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.cancels, &cancel)
		f.mu.Unlock()
	}()
	return cfg.Forwarder.ServeForeign(w, r.WithContext(ctx), sid)
}

// stopForwards ends the polling GETs and websockets being forwarded and
// refuses new forwards (Close).
func (srv *Server) stopForwards() { srv.endForwards(true) }

// releaseForwards ends the polling GETs being forwarded (ReleasePolls).
func (srv *Server) releaseForwards() { srv.endForwards(false) }

func (srv *Server) endForwards(closing bool) {
	f := &srv.fwd
	f.mu.Lock()
	if closing {
		f.closed = true
	}
	list := make([]context.CancelFunc, 0, len(f.cancels))
	for c, poll := range f.cancels {
		if poll || closing {
			list = append(list, *c)
		}
	}
	f.mu.Unlock()
	for _, cancel := range list {
		cancel()
	}
}
