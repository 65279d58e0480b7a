package realtime

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is one WebSocket message a rawClient received.
type frame struct {
	binary bool
	data   string
}

// rawClient speaks Engine.IO v4 over WebSocket by hand, so engine tests can
// send exactly the bytes they mean (bad ones too) and see exactly what comes
// back. It answers pings by itself.
type rawClient struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{}
	wmu    sync.Mutex // gorilla allows one writer at a time
}

func (c *rawClient) write(typ int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(typ, b)
}

func dialRaw(t testing.TB, ts *httptest.Server, query string) *rawClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket" + query
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", url, err)
	}
	c := &rawClient{t: t, ws: ws, frames: make(chan frame, 256), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { c.close() })
	open := c.next(2 * time.Second)
	if !strings.HasPrefix(open.data, "0{") {
		t.Fatalf("first frame = %q, want an open packet", open.data)
	}
	return c
}

func (c *rawClient) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage && string(data) == "2" {
			_ = c.write(websocket.TextMessage, []byte("3"))
			continue
		}
		select {
		case c.frames <- frame{binary: typ == websocket.BinaryMessage, data: string(data)}:
		case <-time.After(5 * time.Second):
			return
		}
	}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if err := c.write(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("sending %q: %v", s, err)
	}
}

func (c *rawClient) sendBinary(b []byte) {
	c.t.Helper()
	if err := c.write(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("sending binary: %v", err)
	}
}

// next returns the next frame, failing the test after d.
func (c *rawClient) next(d time.Duration) frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a frame")
		}
		return f
	case <-time.After(d):
		c.t.Fatalf("no frame within %v", d)
	}
	return frame{}
}

// expect reads the next frame and checks it is the text want.
func (c *rawClient) expect(want string) {
	c.t.Helper()
	if f := c.next(2 * time.Second); f.binary || f.data != want {
		c.t.Fatalf("got frame %q (binary %v), want %q", f.data, f.binary, want)
	}
}

// expectPrefix reads the next frame and checks its start.
func (c *rawClient) expectPrefix(prefix string) string {
	c.t.Helper()
	f := c.next(2 * time.Second)
	if f.binary || !strings.HasPrefix(f.data, prefix) {
		c.t.Fatalf("got frame %q (binary %v), want prefix %q", f.data, f.binary, prefix)
	}
	return f.data
}

// quiet checks that nothing arrives for d.
func (c *rawClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame %q", f.data)
		}
	case <-time.After(d):
	}
}

// expectClosed waits until the server closes the connection, skipping
// frames before that (such as the close packet "1").
func (c *rawClient) expectClosed(d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatalf("connection still open after %v", d)
		}
	}
}

func (c *rawClient) close() {
	_ = c.ws.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}
