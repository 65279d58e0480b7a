package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultWait bounds each wait for a frame unless a client's Wait says
// otherwise.
const DefaultWait = 5 * time.Second

// Frame is one WebSocket message a WS client received.
type Frame struct {
	Binary bool
	Data   string
}

// WS speaks Engine.IO v4 over WebSocket by hand, so a test can send exactly
// the bytes it means (bad ones too) and see exactly what comes back. A
// reader goroutine answers the server's pings ("2" gets "3") and queues
// every other frame; the methods read from that queue.
type WS struct {
	T testing.TB
	// Wait bounds Expect, ExpectPrefix and Read (DefaultWait when zero).
	Wait time.Duration

	conn      *websocket.Conn
	frames    chan Frame
	done      chan struct{} // closed when the reader has ended
	closing   chan struct{} // closed by Close, so a blocked reader ends
	closeOnce sync.Once
	wmu       sync.Mutex // gorilla allows one writer at a time
}

// WSURL is the Engine.IO WebSocket URL of the endpoint at base (http://,
// https://, ws:// or wss://, the path included, e.g. ".../socket.io/")
// with query added.
func WSURL(base string, query url.Values) string {
	switch {
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	}
	q := url.Values{"EIO": {"4"}, "transport": {"websocket"}}
	for k, v := range query {
		q[k] = v
	}
	return base + "?" + q.Encode()
}

// DialWS opens an Engine.IO WebSocket to the endpoint at base with query
// and header (either may be nil) and reads the open packet. The connection
// is closed when the test ends.
func DialWS(t testing.TB, base string, query url.Values, header http.Header) *WS {
	t.Helper()
	c := DialWSURL(t, WSURL(base, query), header)
	if f := c.Next(c.wait()); f.Binary || !strings.HasPrefix(f.Data, "0{") {
		t.Fatalf("first frame %q, want an open packet", f.Data)
	}
	return c
}

// DialWSURL dials u as it is and reads nothing yet.
func DialWSURL(t testing.TB, u string, header http.Header) *WS {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.Dial(u, header)
	if err != nil {
		t.Fatalf("dialing %s: %v", u, err)
	}
	resp.Body.Close()
	c := &WS{T: t, conn: conn, frames: make(chan Frame, 256), done: make(chan struct{}), closing: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	return c
}

func (c *WS) wait() time.Duration {
	if c.Wait > 0 {
		return c.Wait
	}
	return DefaultWait
}

// read queues frames until the connection ends, or until the test has not
// taken a frame for 5 s while the queue is full (a reader that stalls on
// purpose stops reading the socket, as a stalled client does).
func (c *WS) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage && string(data) == "2" {
			_ = c.Write(websocket.TextMessage, []byte("3"))
			continue
		}
		select {
		case c.frames <- Frame{Binary: typ == websocket.BinaryMessage, Data: string(data)}:
		case <-c.closing:
			return
		case <-time.After(5 * time.Second):
			return
		}
	}
}

// Write sends one message; for use where failing the test is not allowed
// (another goroutine) or not wanted.
func (c *WS) Write(typ int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(typ, b)
}

// Send sends a text frame.
func (c *WS) Send(s string) {
	c.T.Helper()
	if err := c.Write(websocket.TextMessage, []byte(s)); err != nil {
		c.T.Fatalf("sending %q: %v", s, err)
	}
}

// SendBinary sends a binary frame.
func (c *WS) SendBinary(b []byte) {
	c.T.Helper()
	if err := c.Write(websocket.BinaryMessage, b); err != nil {
		c.T.Fatalf("sending binary: %v", err)
	}
}

// Frames is the queue of received frames (pings left out); it is closed
// when the connection ends. For goroutines that must not fail the test.
func (c *WS) Frames() <-chan Frame { return c.frames }

// ErrClosed is what Recv returns once the connection has ended.
var ErrClosed = errors.New("connection closed")

// Recv returns the next frame within d, without failing the test.
func (c *WS) Recv(d time.Duration) (Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return Frame{}, ErrClosed
		}
		return f, nil
	case <-time.After(d):
		return Frame{}, fmt.Errorf("no frame within %v", d)
	}
}

// Next returns the next frame, failing the test after d.
func (c *WS) Next(d time.Duration) Frame {
	c.T.Helper()
	f, err := c.Recv(d)
	if err != nil {
		c.T.Fatalf("waiting for a frame: %v", err)
	}
	return f
}

// Read returns the next text frame's data.
func (c *WS) Read() string {
	c.T.Helper()
	f := c.Next(c.wait())
	if f.Binary {
		c.T.Fatalf("got a binary frame %q, want text", f.Data)
	}
	return f.Data
}

// Expect reads the next frame and checks it is the text want.
func (c *WS) Expect(want string) {
	c.T.Helper()
	if f := c.Next(c.wait()); f.Binary || f.Data != want {
		c.T.Fatalf("got frame %q (binary %v), want %q", f.Data, f.Binary, want)
	}
}

// ExpectPrefix reads the next frame, checks its start and returns it.
func (c *WS) ExpectPrefix(prefix string) string {
	c.T.Helper()
	f := c.Next(c.wait())
	if f.Binary || !strings.HasPrefix(f.Data, prefix) {
		c.T.Fatalf("got frame %q (binary %v), want prefix %q", f.Data, f.Binary, prefix)
	}
	return f.Data
}

// Quiet checks that nothing arrives for d (pings are answered meanwhile).
func (c *WS) Quiet(d time.Duration) {
	c.T.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.T.Fatalf("unexpected frame %q", f.Data)
		}
	case <-time.After(d):
	}
}

// ExpectClosed waits until the server closes the connection, skipping the
// frames before that (such as the close packet "1").
func (c *WS) ExpectClosed(d time.Duration) {
	c.T.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-deadline:
			c.T.Fatalf("connection still open after %v", d)
		}
	}
}

// ConnectSocket connects the main namespace with payload (none when empty)
// and returns the socket id from the server's CONNECT.
func (c *WS) ConnectSocket(payload string) string {
	c.T.Helper()
	c.Send("40" + payload)
	got := c.ExpectPrefix(`40{"sid":"`)
	var v struct{ Sid string }
	if err := json.Unmarshal([]byte(got[2:]), &v); err != nil {
		c.T.Fatalf("CONNECT answer %q: %v", got, err)
	}
	return v.Sid
}

// Close closes the connection and waits (bounded) for the reader to end.
func (c *WS) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}
