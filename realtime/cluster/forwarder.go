package cluster

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Header marks a request one node forwards to another. A request that
// carries it is never forwarded again, whoever sent it: that is what stops
// a loop between nodes whose registries disagree (a stale entry). It
// grants nothing else, so a client that sends it only gets the answer of
// the node it reached (400 for another node's session). Its value is the
// forwarding node's id, or "-" for a node that advertises no address.
const Header = "X-Socketio-Forwarded"

// Defaults of ForwarderOptions.
const (
	// DefaultDialTimeout bounds connecting to the owner: a node that is
	// gone without having been forgotten yet costs at most this before the
	// client gets 400 "Session ID unknown".
	DefaultDialTimeout = 2 * time.Second
	// DefaultResponseTimeout bounds the wait for the owner's response
	// headers. A polling GET is answered within the ping interval (25s by
	// default) when nothing else is sent, so this is well above it.
	DefaultResponseTimeout = 2 * time.Minute
	// DefaultMaxForwards bounds the requests being forwarded at once (a
	// polling client has up to one GET and one POST in flight; a forwarded
	// websocket holds one for its lifetime). Past it a request gets 503.
	DefaultMaxForwards = 10_000
)

// closeGrace bounds how long Close waits for forwarded requests to end
// once it has cancelled them.
const closeGrace = 2 * time.Second

// ForwarderOptions configure a Forwarder.
type ForwarderOptions struct {
	// Registry finds the owner of a session. Required; the forwarder does
	// not close it.
	Registry *Registry
	// DialTimeout bounds connecting to another node. Default: 2s.
	DialTimeout time.Duration
	// ResponseTimeout bounds the wait for another node's response headers.
	// Default: 2m.
	ResponseTimeout time.Duration
	// MaxForwards bounds the requests forwarded at once. Default: 10000.
	MaxForwards int
	// Logger receives the forwarder's logs. Default: zap.NewNop().
	Logger *zap.Logger
}

// Forwarder serves a request for a session another node holds by
// forwarding it to that node: polling GETs and POSTs, and websocket
// upgrades (the connection is then relayed both ways until either side
// closes it). It implements engineio.Forwarder.
//
// What a client controls is the sid; of it the forwarder reads only the
// node id, and forwards only to an address found for that id in Redis,
// never to one taken from the request. The owner sees the request as the
// client sent it (method, path and query, headers, body) with the mark
// (Header), Host set to the advertised address, and without Origin: this node has already checked the
// origin and set the CORS headers, and the owner's would be for a request
// it cannot tell came from a browser. Hop-by-hop headers are dropped as by
// any proxy, and X-Forwarded-* are not added (they mean something only to
// a proxy the owner trusts).
type Forwarder struct {
	reg       *Registry
	log       *zap.Logger
	transport *http.Transport
	mark      string
	slots     chan struct{}

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	mu     sync.Mutex // orders wg.Add before Close's wg.Wait
	closed bool
	wg     sync.WaitGroup
	errLog *log.Logger

	forwarded atomic.Int64
	failed    atomic.Int64
	refused   atomic.Int64
	lastWarn  atomic.Int64 // unix nanoseconds of the last warning (see warn)
}

// warnEvery bounds the forwarder's warnings, which clients can cause (a
// flood of requests past MaxForwards, a flood for a node that times out):
// within it, further ones are logged at debug.
const warnEvery = time.Second

// warn logs at WARN at most once per warnEvery, at DEBUG otherwise.
func (f *Forwarder) warn(msg string, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := f.lastWarn.Load()
	level := zap.DebugLevel
	if now-last >= int64(warnEvery) && f.lastWarn.CompareAndSwap(last, now) {
		level = zap.WarnLevel
	}
	if ce := f.log.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
}

// NewForwarder returns a forwarder over o.Registry.
func NewForwarder(o ForwarderOptions) *Forwarder {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = DefaultResponseTimeout
	}
	if o.MaxForwards <= 0 {
		o.MaxForwards = DefaultMaxForwards
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	f := &Forwarder{
		reg:   o.Registry,
		log:   o.Logger.Named("cluster"),
		slots: make(chan struct{}, o.MaxForwards),
		mark:  o.Registry.NodeID(),
		transport: &http.Transport{
			Proxy:                 nil, // peers are reached directly, never through HTTP_PROXY
			DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: o.ResponseTimeout,
			DisableCompression:    true, // the client's Accept-Encoding goes through as it is
		},
	}
	if f.mark == "" {
		f.mark = "-"
	}
	if l, err := zap.NewStdLogAt(f.log, zap.DebugLevel); err == nil {
		f.errLog = l
	} else {
		f.errLog = log.New(io.Discard, "", 0)
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

// NodeID is the registry's node id (engineio.Forwarder). The engine asks
// for it when it opens a session: the registry is then started, so a
// node registers once it has a session for its peers to find.
func (f *Forwarder) NodeID() string {
	f.reg.Start()
	return f.reg.NodeID()
}

// Stats counts what the forwarder did.
type Stats struct {
	Forwarded int64 // requests another node answered
	Failed    int64 // requests whose owner could not be reached (then 400)
	Refused   int64 // requests refused with 503 past MaxForwards
}

// Stats returns the counts so far.
func (f *Forwarder) Stats() Stats {
	return Stats{Forwarded: f.forwarded.Load(), Failed: f.failed.Load(), Refused: f.refused.Load()}
}

// validSid reports whether sid has the shape of our session ids: 20
// base64url characters.
func validSid(sid string) bool {
	if len(sid) != 20 {
		return false
	}
	for i := 0; i < len(sid); i++ {
		if !isBase64URL(sid[i]) {
			return false
		}
	}
	return true
}

func isBase64URL(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// ServeForeign forwards a request for a session of another node
// (engineio.Forwarder). It declines, writing nothing, a request already
// forwarded once, one that is not a polling GET or POST or a websocket
// upgrade, a sid not shaped like ours, this node's own id, an id that no
// node advertises, and an owner that cannot be reached: the engine then
// answers 400 "Session ID unknown", as Node does for a sid it does not
// know.
func (f *Forwarder) ServeForeign(w http.ResponseWriter, r *http.Request, sid string) bool {
	if r.Header.Get(Header) != "" || (r.Method != http.MethodGet && r.Method != http.MethodPost) || !validSid(sid) {
		return false
	}
	id := sid[:NodeIDLength]
	addr, ok := f.reg.Lookup(r.Context(), id)
	if !ok {
		return false
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.mu.Unlock()
		f.refused.Add(1)
		f.warn("too many forwarded requests at once; refusing", zap.Int("max", cap(f.slots)))
		http.Error(w, "too many forwarded requests", http.StatusServiceUnavailable)
		return true
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer func() {
		<-f.slots
		f.wg.Done()
	}()

	poll := r.Method == http.MethodGet && r.Header.Get("Upgrade") == ""
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(f.ctx, cancel)
	defer stop()

	target := &url.URL{Scheme: "http", Host: addr}
	var answered bool // the owner's response reached us; something was or will be written
	var proxyErr error
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // Host is the advertised address: the owner's site for its peers
			pr.Out.Header.Set(Header, f.mark)
			pr.Out.Header.Del("Origin")
		},
		Transport: f.transport,
		ModifyResponse: func(resp *http.Response) error {
			answered = true
			// The owner's headers replace those this node set (CORS,
			// Server): one value each, as from a local session.
			h := w.Header()
			for k := range resp.Header {
				h.Del(k)
			}
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { proxyErr = err },
		ErrorLog:     f.errLog,
	}
	p.ServeHTTP(relayWriter{w, http.NewResponseController(w)}, r.WithContext(ctx))
	if proxyErr == nil || answered {
		if proxyErr != nil {
			if ce := f.log.Check(zap.DebugLevel, "forwarded request ended with an error"); ce != nil {
				ce.Write(zap.String("node", id), zap.Error(proxyErr))
			}
		}
		f.forwarded.Add(1)
		return true
	}
	// Nothing was written: the owner was not reached, or the request ended
	// first.
	stopped := r.Context().Err() != nil || f.ctx.Err() != nil
	if poll && stopped {
		// A waiting GET released by the engine (a reload or shutdown of
		// this node's HTTP server), or by Close: answered as the engine
		// answers its own, with a noop, so the client polls again (through
		// another node if this one is going). If the client is gone
		// instead, nobody reads it.
		writeNoop(w)
		return true
	}
	if !stopped {
		f.failed.Add(1)
		var op *net.OpError
		if errors.As(proxyErr, &op) && op.Op == "dial" {
			f.reg.markDown(id)
		}
		f.warn("forwarding to the node that holds the session failed", zap.String("node", id),
			zap.String("address", addr), zap.Error(proxyErr))
	}
	return false
}

// writeNoop answers a polling GET with the Engine.IO noop packet, with the
// headers of the engine's own polling responses.
func writeNoop(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", "1")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte{'6'})
}

// Close cancels the requests being forwarded (websockets included) and
// waits, bounded, for them to end; later requests are declined.
func (f *Forwarder) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		f.log.Warn("forwarded requests still running after close")
	}
	f.transport.CloseIdleConnections()
}

// relayWriter hands ReverseProxy the client's connection without its
// CloseWrite. When the owner's side of a relayed websocket ends (the
// session closed, or Close cancelled the request), ReverseProxy then
// closes the client's connection instead of only half-closing it, so a
// client that keeps its half open holds nothing here.
type relayWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w relayWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return fullCloseConn{c}, brw, nil
}

// Unwrap lets http.ResponseController reach the writer's other methods
// (Flush).
func (w relayWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fullCloseConn is a net.Conn and nothing more.
type fullCloseConn struct{ net.Conn }
