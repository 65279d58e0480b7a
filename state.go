package socketio

import (
	"sync"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// socketState is what the module keeps about one socket. It lives in the
// socket's local slot (realtime.Socket.SetLocal), not in its data, so it is
// never listed, serialised or sent to a peer with the socket's data.
type socketState struct {
	mu       sync.Mutex
	claims   auth.Claims    // the verified token's claims; nil without a token
	authGen  uint64         // the hub generation whose policy authorized the socket
	expiry   *expiryTimer   // disconnects the socket when its token expires
	hookData any            // what the connect hook attached to the socket
	queue    *webhook.Queue // the socket's webhook FIFO, made on first use
	// cview is the placeholder view of the socket while it connects: made
	// by joinRule, used again by the connection handler, which drops it
	// (building one parses the handshake's query and headers anew).
	cview *cachedView
}

// cachedView is a socket's view under the policy it was made with.
type cachedView struct {
	p *policy
	v *socketView
}

// attach gives a connecting socket its state. It is the namespace's first
// middleware, so every other part of the module finds the state there.
func (h *hub) attach(s *realtime.Socket) error {
	st := &socketState{}
	if old, ok := s.Local().(*socketState); ok && s.Recovered() {
		// A recovered socket going through the middlewares again: it keeps
		// what the connect hook attached unless the hook's new reply
		// replaces it, and its FIFO (its notices stay in order).
		st.hookData, st.queue = old.getHookData(), old.webhookQueue()
	}
	s.SetLocal(st)
	return nil
}

// stateOf returns a socket's state. A socket that has none (it did not come
// through the module's middlewares) gets an empty one, not kept.
func stateOf(s *realtime.Socket) *socketState {
	if st, ok := s.Local().(*socketState); ok {
		return st
	}
	return &socketState{}
}

func (st *socketState) getClaims() auth.Claims {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.claims
}

// authorized records the claims and generation of an authorization.
func (st *socketState) authorized(claims auth.Claims, gen uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.authGen = gen
	if claims != nil {
		st.claims = claims
	}
}

// authorizedBefore reports whether the socket was authorized under a
// generation older than gen.
func (st *socketState) authorizedBefore(gen uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.authGen < gen
}

func (st *socketState) getHookData() any {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.hookData
}

func (st *socketState) setHookData(v any) {
	st.mu.Lock()
	st.hookData = v
	st.mu.Unlock()
}

// webhookQueue returns the socket's webhook FIFO, making it on first use.
func (st *socketState) webhookQueue() *webhook.Queue {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.queue == nil {
		st.queue = &webhook.Queue{}
	}
	return st.queue
}

// connectView returns the socket's view under p, made once while the
// socket connects (see socketState.cview); dropConnectView ends that.
// made says whether an earlier call of this connect made it (joinRule,
// which runs first).
func (h *hub) connectView(s *realtime.Socket, p *policy) (v *socketView, made bool) {
	st := stateOf(s)
	st.mu.Lock()
	if c := st.cview; c != nil && c.p == p {
		st.mu.Unlock()
		return c.v, true
	}
	st.mu.Unlock()
	v = view(s, p) // takes st.mu for the claims
	st.mu.Lock()
	st.cview = &cachedView{p: p, v: v}
	st.mu.Unlock()
	return v, false
}

// dropConnectView forgets the view connectView made.
func (st *socketState) dropConnectView() {
	st.mu.Lock()
	st.cview = nil
	st.mu.Unlock()
}
