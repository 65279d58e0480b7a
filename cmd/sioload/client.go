package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// writeTimeout bounds every frame write: a server that stops reading must not
// hang the tool.
const writeTimeout = 10 * time.Second

// target is where clients connect: a loopback host:port and the Socket.IO path.
type target struct {
	Addr string // host:port, loopback only
	Path string // e.g. /socket.io/
	TLS  bool   // wss://, certificate not verified (see tlsDialer)
}

// wsURL builds the Engine.IO v4 websocket URL with extra query parameters.
func (t target) wsURL(extra url.Values) string {
	q := url.Values{}
	q.Set("EIO", "4")
	q.Set("transport", "websocket")
	for k, vs := range extra {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	scheme := "ws"
	if t.TLS {
		scheme = "wss"
	}
	u := url.URL{Scheme: scheme, Host: t.Addr, Path: t.Path, RawQuery: q.Encode()}
	return u.String()
}

// checkLoopback refuses any target that is not on the loopback interface: the
// tool generates heavy traffic and is meant for this machine only.
func checkLoopback(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("checking target: %w", err)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("resolving target: %w", err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("resolving target: no address for %q", host)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("checking target: %s is not a loopback address", ip.IP)
		}
	}
	return nil
}

// handler receives every Socket.IO packet a client reads, except the CONNECT
// reply. It runs on the client's read goroutine; f.Data is only valid during
// the call.
type handler func(c *client, f frame, at time.Time)

// client is one Engine.IO v4 websocket session with the "/" namespace joined.
// One goroutine reads (run); writes may come from any goroutine (send).
type client struct {
	conn    *websocket.Conn
	sid     string
	wmu     sync.Mutex
	closing atomic.Bool
}

// handshake is the JSON of the Engine.IO open packet.
type handshake struct {
	SID          string `json:"sid"`
	PingInterval int    `json:"pingInterval"`
	PingTimeout  int    `json:"pingTimeout"`
}

// dialer is shared by all clients; small buffers keep 5000 clients cheap, and
// larger frames still work (gorilla reads them in pieces).
var dialer = &websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   2048,
	WriteBufferSize:  1024,
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		return d.DialContext(ctx, network, addr)
	},
}

// tlsDialer is dialer over TLS. The bench servers use a throw-away
// self-signed certificate and the target is checked to be loopback, so the
// certificate is not verified.
var tlsDialer = func() *websocket.Dialer {
	d := *dialer
	d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // loopback bench only
	return &d
}()

// dial opens the websocket, reads the Engine.IO open packet, sends the
// Socket.IO CONNECT for "/" and waits for the CONNECT reply 40{"sid":..}.
// Pings that arrive meanwhile are answered. The whole exchange is bounded by
// ctx and timeout.
func dial(ctx context.Context, t target, query url.Values, timeout time.Duration) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := dialer
	if t.TLS {
		d = tlsDialer
	}
	conn, resp, err := d.DialContext(ctx, t.wsURL(query), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dialing websocket: %w", err)
	}
	c := &client{conn: conn}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	if err := c.awaitConnect(); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return c, nil
}

func (c *client) awaitConnect() error {
	opened := false
	// A well-behaved server needs 2 frames; allow a few pings or noops in between.
	for range 16 {
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return fmt.Errorf("reading handshake: %w", err)
		}
		f, err := parseFrame(b)
		if err != nil {
			return fmt.Errorf("reading handshake: %w", err)
		}
		switch {
		case f.EIO == eioOpen && !opened:
			var h handshake
			if err := json.Unmarshal(f.Data, &h); err != nil || h.SID == "" {
				return fmt.Errorf("reading handshake: bad open packet %q", b)
			}
			opened = true
			if err := c.send([]byte{eioMessage, sioConnect}); err != nil {
				return fmt.Errorf("sending connect: %w", err)
			}
		case f.EIO == eioPing:
			if err := c.send([]byte{eioPong}); err != nil {
				return fmt.Errorf("sending pong: %w", err)
			}
		case f.EIO == eioMessage && f.SIO == sioConnect && f.NSP == "/":
			var r struct {
				SID string `json:"sid"`
			}
			if err := json.Unmarshal(f.Data, &r); err != nil || r.SID == "" {
				return fmt.Errorf("reading connect reply: bad packet %q", b)
			}
			c.sid = r.SID
			return nil
		case f.EIO == eioMessage && f.SIO == sioConnectError:
			return fmt.Errorf("connect refused: %s", f.Data)
		case f.EIO == eioClose:
			return errors.New("reading handshake: server closed the session")
		}
	}
	return errors.New("reading handshake: no connect reply")
}

// send writes one text frame; safe for concurrent use.
func (c *client) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, b)
}

// run reads frames until the connection fails or is closed, answers pings
// and hands Socket.IO packets to h. It reuses one buffer per client so that
// reading a delivery does not allocate.
func (c *client) run(h handler) error {
	var buf bytes.Buffer
	for {
		typ, r, err := c.conn.NextReader()
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		at := time.Now()
		if typ != websocket.TextMessage {
			continue // binary attachments are not used by the scenarios
		}
		f, err := parseFrame(buf.Bytes())
		if err != nil {
			return err
		}
		switch f.EIO {
		case eioPing:
			if err := c.send([]byte{eioPong}); err != nil {
				return err
			}
		case eioClose:
			return errors.New("server closed the session")
		case eioMessage:
			if h != nil {
				h(c, f, at)
			}
		}
	}
}

// close ends the connection at once. With abort it resets the TCP connection
// (SO_LINGER 0) instead of a close handshake, so that tearing down thousands
// of clients leaves no TIME_WAIT entries to exhaust loopback ports.
func (c *client) close(abort bool) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	if abort {
		nc := c.conn.NetConn()
		if tc, ok := nc.(*tls.Conn); ok {
			nc = tc.NetConn()
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	c.conn.Close()
}
