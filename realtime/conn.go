package realtime

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// session is what a conn uses of its *engineio.Session (an interface so
// that fuzz tests can drive a conn without a network).
type session interface {
	ID() string
	Request() *http.Request
	Transport() string
	Writable() bool
	Send(msgs ...*engineio.Message) error
	Close(reason string)
}

// conn is one Engine.IO session seen from Socket.IO: it decodes packets,
// routes them to the socket of their namespace, and holds those sockets.
// (Node calls it Client.)
type conn struct {
	srv  *Server
	sess session
	opts *Options       // the server's options when the connection opened
	v3   bool           // Engine.IO v3, Socket.IO protocol v4: socket.io-client 2.x (eio3.go)
	onWS bool           // counted in Server.wsConns; guarded by Server.mu
	dec  parser.Decoder // used by the reader goroutine only
	// connects bounds the CONNECT packets of the connection (reader
	// goroutine only); nil when the event limit is off.
	connects *eventLimiter

	mu         sync.Mutex
	sockets    []*Socket       // one per namespace (socketIn); a connection is in a few at most
	connecting map[string]bool // namespaces whose CONNECT is in a middleware
	closed     bool
	// wait is the connection's place in the server's connect timeout
	// queue (connectwait.go) until it joins a namespace or closes.
	wait waitTicket
	// releaseLimits gives back the counts of the connection limits that
	// the handshake reserved (see admission); nil when it took none.
	releaseLimits func()

	// The attachment timer closes the connection when a binary packet's
	// attachments are late. The reader arms it when the decoder starts
	// waiting and disarms it when it stops; attSeq tells the timer whether
	// the wait it was armed for is still the current one.
	attWaiting bool // the timer is armed; reader goroutine only
	attMu      sync.Mutex
	attTimer   *time.Timer
	attSeq     uint64
}

func newConn(srv *Server, sess session, opts *Options) *conn {
	c := &conn{srv: srv, sess: sess, opts: opts, v3: isV3(sess)}
	c.dec.MaxAttachmentBytes = opts.MaxAttachmentBytes
	if opts.rateLimited() {
		c.connects = newEventLimiter(connectRate, connectBurst, time.Now())
	}
	srv.connectWait.add(c, opts.ConnectTimeout)
	return c
}

func (c *conn) waitTicket() *waitTicket { return &c.wait }

// onConnectTimeout closes a connection that joined no namespace in time
// (Socket.IO v5: the server closes it when connectTimeout passes).
func (c *conn) onConnectTimeout() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && len(c.connecting) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.srv.logger().Debug("no namespace joined in time, closing", zap.String("sid", c.sess.ID()))
		c.sess.Close("forced close")
	}
}

// OnMessage implements engineio.Handler.
func (c *conn) OnMessage(data []byte, binary bool) {
	p, err := c.dec.Add(data, binary)
	if w := c.dec.Waiting(); w != c.attWaiting {
		c.attWaiting = w
		if !c.setAttachmentTimer(w) {
			// The timer fired as the wait ended: it was too late.
			c.sess.Close("parse error")
			return
		}
	}
	if err != nil {
		if ce := c.srv.logger().Check(zap.DebugLevel, "closing connection on a bad packet"); ce != nil {
			ce.Write(zap.String("sid", c.sess.ID()), zap.Error(err))
		}
		c.sess.Close("parse error")
		return
	}
	if p == nil {
		return // waiting for attachments
	}
	if c.v3 && p.Type == parser.Connect {
		v3ConnectQuery(p)
	}
	if over(len(p.Namespace), c.opts.MaxNamespaceLength) {
		// No lookup, not even in c.sockets: a client cannot have joined it.
		if p.Type == parser.Connect {
			c.refuseLongNamespace(p.Namespace)
		} else {
			c.sess.Close("parse error")
		}
		return
	}
	c.mu.Lock()
	s := c.socketIn(p.Namespace)
	busy := c.connecting[p.Namespace]
	c.mu.Unlock()
	if p.Type == parser.Connect {
		if s != nil || busy {
			// Socket.IO v5: a second CONNECT for a joined namespace is a
			// protocol error; Node closes the whole connection.
			c.sess.Close("parse error")
			return
		}
		if !c.limitConnect(p.Namespace) {
			return
		}
		c.connect(p)
		return
	}
	if s == nil {
		// Only CONNECT is allowed for a namespace the client has not joined.
		c.sess.Close("parse error")
		return
	}
	s.onPacket(p)
}

// setAttachmentTimer arms (on) or disarms the attachment timer; false when
// disarming found that the timer had fired already (its function may be
// about to see that it is stale, so the caller closes the connection).
func (c *conn) setAttachmentTimer(on bool) bool {
	c.attMu.Lock()
	defer c.attMu.Unlock()
	c.attSeq++
	if c.attTimer != nil {
		fired := !c.attTimer.Stop()
		c.attTimer = nil
		if fired {
			return false
		}
	}
	if on {
		seq := c.attSeq
		c.attTimer = time.AfterFunc(c.opts.AttachmentTimeout, func() { c.onAttachmentTimeout(seq) })
	}
	return true
}

// onAttachmentTimeout runs on the timer's goroutine: it touches no decoder
// state, it only closes the connection if the wait it was armed for is
// still on.
func (c *conn) onAttachmentTimeout(seq uint64) {
	c.attMu.Lock()
	current := seq == c.attSeq
	c.attMu.Unlock()
	if !current {
		return
	}
	if ce := c.srv.logger().Check(zap.DebugLevel, "closing connection: binary attachments late"); ce != nil {
		ce.Write(zap.String("sid", c.sess.ID()), zap.Duration("timeout", c.opts.AttachmentTimeout))
	}
	c.sess.Close("parse error")
}

// refuseLongNamespace answers a CONNECT whose namespace name is over the
// limit. The reply names the namespace cut to the limit, so that it stays
// small: the client cannot match it to its socket, which times out on its
// side as for a server that never answers.
func (c *conn) refuseLongNamespace(name string) {
	if ce := c.srv.logger().Check(zap.DebugLevel, "connect refused: namespace name too long"); ce != nil {
		ce.Write(zap.String("namespace", utf8cut.Cut(name, 64)), zap.Int("bytes", len(name)),
			zap.Int("max", c.opts.MaxNamespaceLength), zap.String("sid", c.sess.ID()))
	}
	short := utf8cut.Prefix(name, c.opts.MaxNamespaceLength)
	c.refused(short, ErrInvalidNamespace)
	_ = c.write(mustEncode(&parser.Packet{Type: parser.ConnectError, Namespace: short, ID: parser.NoID,
		Data: connectErrorPayload{Message: "Invalid namespace"}}))
}

// OnClose implements engineio.Handler.
func (c *conn) OnClose(reason string) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.srv.connectWait.remove(c)
	c.attMu.Lock()
	c.attSeq++
	if c.attTimer != nil {
		c.attTimer.Stop()
		c.attTimer = nil
	}
	c.attMu.Unlock()
	for _, s := range c.socketList() {
		s.onClose(reason)
	}
	c.srv.removeConn(c)
	if c.releaseLimits != nil {
		c.releaseLimits()
	}
}

func (c *conn) connect(p *parser.Packet) {
	name := p.Namespace
	if !c.limitNamespaces(name) {
		return
	}
	n := c.srv.acquireNamespace(name)
	if n == nil {
		c.refused(name, ErrInvalidNamespace)
		_ = c.write(mustEncode(&parser.Packet{Type: parser.ConnectError, Namespace: name, ID: parser.NoID,
			Data: connectErrorPayload{Message: "Invalid namespace"}}))
		return
	}
	auth, _ := p.Data.(map[string]any)
	var s *Socket
	sess, offset := c.recoverSession(n, auth)
	if sess != nil {
		s = restoredSocket(n, c, auth, sess)
	} else {
		s = newSocket(n, c, auth)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.endContext()
		c.srv.releaseNamespace(n)
		return
	}
	if c.connecting == nil {
		c.connecting = make(map[string]bool, 1)
	}
	c.connecting[name] = true
	c.mu.Unlock()

	var err error
	if o, _ := c.srv.recovery(); sess == nil || o == nil || o.RunMiddlewares {
		err = n.runMiddlewares(s)
	}

	c.mu.Lock()
	delete(c.connecting, name)
	if len(c.connecting) == 0 {
		c.connecting = nil // not kept for the life of the connection
	}
	closed := c.closed
	if err == nil && !closed {
		if i := slices.IndexFunc(c.sockets, func(o *Socket) bool { return o.nsp.name == name }); i >= 0 {
			c.sockets[i].uncountLocked()
			c.sockets[i] = s // as a map by name would have it
		} else {
			c.sockets = append(c.sockets, s)
		}
		if c.sess.Transport() == engineio.TransportWebSocket {
			s.countWebSocketLocked()
		}
	}
	joined := err == nil && !closed
	c.mu.Unlock()
	if joined {
		c.srv.connectWait.remove(c) // joined in time
	}
	if closed || err != nil {
		s.refuse()
		c.srv.releaseNamespace(n)
	}
	if closed {
		return
	}
	if err != nil {
		if ce := c.srv.logger().Check(zap.DebugLevel, "connect refused"); ce != nil {
			ce.Write(zap.String("namespace", name), zap.String("sid", c.sess.ID()), zap.Error(err))
		}
		c.refused(name, err)
		if l := c.connects; l != nil {
			l.take(time.Now()) // a refusal spends one of the connection's CONNECT tokens
		}
		_ = c.write(mustEncode(&parser.Packet{Type: parser.ConnectError, Namespace: name, ID: parser.NoID,
			Data: c.connectErrorData(err)}))
		return
	}
	if sess != nil {
		c.connectRecovered(n, s, offset)
	} else {
		c.srv.admitNamespace(n, s)
		s.connect()
	}
	n.fireConnection(s)
}

// refused reports a refused CONNECT to Observer.OnRefused.
func (c *conn) refused(namespace string, err error) {
	if fn := c.opts.Observer.OnRefused; fn != nil {
		fn(namespace, err)
	}
}

// disconnectAll disconnects every socket of the connection, each with its
// DISCONNECT packet, then closes the connection once they are written.
func (c *conn) disconnectAll() {
	c.disconnectAllWith("server namespace disconnect", "forced server close")
}

// disconnectAllWith is disconnectAll with the reasons the sockets'
// disconnect handlers and the session get. Every socket is claimed before
// any packet is written, so a client that closes the transport on the
// first DISCONNECT cannot change the others' reason.
func (c *conn) disconnectAllWith(socketReason, sessionReason string) {
	var claimed []*Socket
	for _, s := range c.socketList() {
		if s.claimClose() {
			claimed = append(claimed, s)
		}
	}
	for _, s := range claimed {
		s.writeDisconnect()
	}
	for _, s := range claimed {
		s.finishClose(socketReason)
	}
	c.sess.Close(sessionReason)
}

// socketList snapshots the connection's sockets, to act on them without
// holding c.mu (they remove themselves from it).
func (c *conn) socketList() []*Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sockets)
}

// socketIn is the connection's socket in namespace name, or nil; c.mu is
// held. A slice scanned in order: a connection is in one namespace or a
// few (MaxNamespacesPerConn bounds them), and a map of one entry costs
// an idle connection about 250 bytes.
func (c *conn) socketIn(name string) *Socket {
	for _, s := range c.sockets {
		if s.nsp.name == name {
			return s
		}
	}
	return nil
}

func (c *conn) remove(s *Socket) {
	c.mu.Lock()
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
	s.uncountLocked()
	c.mu.Unlock()
}

// countWebSocketLocked counts s among its namespace's WebSocket sockets,
// once; c.mu is held. A socket is counted when it is admitted on a
// connection that is already on WebSocket, or when its connection
// upgrades (OnUpgrade), whichever comes first, and uncounted when it
// leaves the connection: so the gauges cost no walk over the sockets.
func (s *Socket) countWebSocketLocked() {
	if !s.onWS {
		s.onWS = true
		s.nsp.webSockets.Add(1)
	}
}

// uncountLocked undoes countWebSocketLocked; c.mu is held.
func (s *Socket) uncountLocked() {
	if s.onWS {
		s.onWS = false
		s.nsp.webSockets.Add(-1)
	}
}

// write queues messages on the session. A full queue closes the session
// (the engine does it and logs the slow client); the error is returned.
func (c *conn) write(msgs []*engineio.Message) error {
	if msgs == nil {
		return errors.New("writing packet: nothing encoded")
	}
	return c.sess.Send(msgs...)
}

// mustEncode encodes packets built by the server itself, which always
// encode; a failure is a bug, reported as a nil slice that write refuses.
func mustEncode(p *parser.Packet) []*engineio.Message {
	msgs, err := encodePacket(p, false)
	if err != nil {
		return nil
	}
	return msgs
}
