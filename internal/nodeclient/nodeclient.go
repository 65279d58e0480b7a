// Package nodeclient runs the official socket.io-client (npm 4.8.x and 3.1.3)
// from Go tests, so that our server is checked against the clients people
// actually use rather than against our own idea of the protocol.
//
// A Driver is one Node process (testdata/client/driver.cjs) that holds any
// number of clients. Each Client buffers everything it receives; the Wait*
// methods consume matching events in order and are all bounded by a timeout.
//
// Values cross the process boundary as JSON: numbers arrive as float64,
// objects as map[string]any, and []byte (at any depth in slices and maps) is
// sent as a Node Buffer and received back as []byte.
package nodeclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Errors returned by the Wait methods and EmitWithAck.
var (
	// ErrTimeout means the awaited event did not arrive in time.
	ErrTimeout = errors.New("timed out")
	// ErrDriverExited means the Node process is gone; nothing more will arrive.
	ErrDriverExited = errors.New("driver exited")
)

// AckSlack is added to an ack timeout on the Go side, so that the client's
// own timeout (reported as an AckError) normally fires first.
const AckSlack = 2 * time.Second

// DefaultAckTimeout is used by EmitWithAck when the timeout is not positive.
const DefaultAckTimeout = 5 * time.Second

// ConnectError is what WaitConnect returns when the client reported
// connect_error: the server refused the namespace (CONNECT_ERROR packet,
// Message and Data from the server) or the transport failed (Data nil).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return "connect_error: " + e.Message }

// AckError is the client's own ack failure, e.g. "operation has timed out"
// (v4 timeout() and the driver's v3 timer) or "socket has been disconnected".
type AckError struct {
	Message string
}

func (e *AckError) Error() string { return "ack error: " + e.Message }

// DriverError is a command the driver could not carry out (bad version,
// duplicate id, ...), reported for the client it concerns.
type DriverError struct {
	Message string
}

func (e *DriverError) Error() string { return "driver: " + e.Message }

// Event is one thing a client reported. Type is one of "connect",
// "connect_error", "event", "disconnect", "upgrade", "reconnect_attempt",
// "reconnect", "reconnect_error", "reconnect_failed" or "error" (driver error).
type Event struct {
	Type      string
	Name      string // event name, for Type "event"
	Args      []any  // event arguments, for Type "event"
	AckWanted bool   // the server asked for an ack (the driver answered per the ack rules)
	Sid       string // socket id, for "connect"
	Transport string // "polling" or "websocket", for "connect" and "upgrade"
	Recovered bool   // connection-state recovery (v4 only), for "connect"
	Reason    string // for "disconnect"
	Message   string // for "connect_error", "reconnect_error" and "error"
	Data      any    // err.data, for "connect_error"
	Attempt   int    // for "reconnect_attempt" and "reconnect"
	Received  time.Time
}

// wireEvent is one stdout line of the driver.
type wireEvent struct {
	Type      string            `json:"type"`
	ID        string            `json:"id"`
	Event     string            `json:"event"`
	Args      []any             `json:"args"`
	Ack       bool              `json:"ack"`
	Sid       string            `json:"sid"`
	Transport string            `json:"transport"`
	Recovered bool              `json:"recovered"`
	Reason    string            `json:"reason"`
	Message   string            `json:"message"`
	Data      any               `json:"data"`
	Attempt   int               `json:"attempt"`
	Seq       int64             `json:"seq"`
	Error     string            `json:"error"`
	Driver    bool              `json:"driver"`
	Versions  map[string]string `json:"versions"`
}

// Driver is a running driver.cjs process. Its methods are safe for
// concurrent use.
type Driver struct {
	t     testing.TB
	proc  *nodeProc
	trace bool

	writeMu sync.Mutex

	mu       sync.Mutex
	clients  map[string]*Client
	pending  map[int64]chan wireEvent
	versions map[string]string

	ready     chan struct{}
	readyOnce sync.Once
	seq       atomic.Int64
}

// Start starts the driver and waits until both client libraries are loaded.
// It skips the test when node or testdata/node_modules is missing (fails
// instead when CI=true). t.Cleanup stops the process and waits for it,
// bounded.
func Start(t testing.TB) *Driver {
	t.Helper()
	env := Locate(t)
	d := &Driver{
		t:       t,
		trace:   os.Getenv(EnvTrace) == "1",
		clients: make(map[string]*Client),
		pending: make(map[int64]chan wireEvent),
		ready:   make(chan struct{}),
	}
	proc, err := startNode(t, env, "driver", d.dispatch, "driver.cjs")
	if err != nil {
		t.Fatalf("nodeclient: %v", err)
	}
	d.proc = proc
	t.Cleanup(d.stop)
	select {
	case <-d.ready:
	case <-proc.done:
		t.Fatalf("nodeclient: driver exited before ready: %v", proc.err)
	case <-time.After(readyTimeout):
		t.Fatalf("nodeclient: driver not ready after %v", readyTimeout)
	}
	return d
}

// Versions reports the loaded client versions, keyed "4" and "3".
func (d *Driver) Versions() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.versions))
	for k, v := range d.versions {
		out[k] = v
	}
	return out
}

// Done is closed once the Node process has exited and its output is read.
func (d *Driver) Done() <-chan struct{} { return d.proc.done }

// Connect creates client id with socket.io-client version "4" or "3" and
// connects it to url (namespace in the path, e.g. http://127.0.0.1:8080/admin).
// opts are io() options (path, transports, upgrade, auth, query,
// reconnection, reconnectionDelay, timeout, extraHeaders, ...); forceNew is
// true unless opts say otherwise. ids must be unique within the driver.
// Connect returns at once; use WaitConnect.
func (d *Driver) Connect(id, version, url string, opts map[string]any) *Client {
	c := &Client{d: d, id: id, notify: make(chan struct{})}
	d.mu.Lock()
	if _, dup := d.clients[id]; dup {
		d.mu.Unlock()
		d.t.Errorf("nodeclient: client id %q used twice", id)
		return c
	}
	d.clients[id] = c
	d.mu.Unlock()
	if opts == nil {
		opts = map[string]any{}
	}
	d.send(map[string]any{"cmd": "connect", "id": id, "version": version, "url": url, "opts": toWire(opts)})
	return c
}

// CloseAll disconnects and forgets every client in the driver. The Client
// values keep their buffered events.
func (d *Driver) CloseAll() {
	d.send(map[string]any{"cmd": "close_all"})
	d.mu.Lock()
	d.clients = make(map[string]*Client)
	d.mu.Unlock()
}

// send writes one command line. A failure is reported with t.Errorf (safe
// from any goroutine) since the caller cannot do anything useful with it.
func (d *Driver) send(cmd map[string]any) bool {
	b, err := json.Marshal(cmd)
	if err != nil {
		d.t.Errorf("nodeclient: encoding %v command: %v", cmd["cmd"], err)
		return false
	}
	if d.trace {
		d.t.Logf("nodeclient -> %s", b)
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if _, err := d.proc.stdin.Write(append(b, '\n')); err != nil {
		select {
		case <-d.proc.done:
		default:
			d.t.Errorf("nodeclient: sending %v command: %v", cmd["cmd"], err)
		}
		return false
	}
	return true
}

// stop asks the driver to exit, then closes stdin and waits (bounded).
func (d *Driver) stop() {
	select {
	case <-d.proc.done:
	default:
		d.writeMu.Lock()
		_, _ = d.proc.stdin.Write([]byte(`{"cmd":"exit"}` + "\n"))
		d.writeMu.Unlock()
	}
	d.proc.stop(d.t, "driver")
}

// dispatch runs on the reader goroutine for every stdout line.
func (d *Driver) dispatch(line []byte) {
	if d.trace {
		d.t.Logf("nodeclient <- %s", line)
	}
	var w wireEvent
	if err := json.Unmarshal(line, &w); err != nil {
		d.t.Logf("nodeclient: driver printed a non-JSON line: %s", line)
		return
	}
	switch w.Type {
	case "ready":
		d.mu.Lock()
		d.versions = w.Versions
		d.mu.Unlock()
		d.readyOnce.Do(func() { close(d.ready) })
		return
	case "ack", "ack_error":
		d.mu.Lock()
		ch := d.pending[w.Seq]
		delete(d.pending, w.Seq)
		d.mu.Unlock()
		if ch != nil {
			ch <- w
		}
		return
	case "error":
		d.t.Logf("nodeclient: driver error (client %q): %s", w.ID, w.Message)
	}
	d.mu.Lock()
	c := d.clients[w.ID]
	d.mu.Unlock()
	if c == nil {
		if w.Type != "error" {
			d.t.Logf("nodeclient: event for unknown client %q: %s", w.ID, line)
		}
		return
	}
	c.add(Event{
		Type:      w.Type,
		Name:      w.Event,
		Args:      argsFromWire(w.Args),
		AckWanted: w.Ack,
		Sid:       w.Sid,
		Transport: w.Transport,
		Recovered: w.Recovered,
		Reason:    w.Reason,
		Message:   w.Message,
		Data:      fromWire(w.Data),
		Attempt:   w.Attempt,
		Received:  time.Now(),
	})
}

// register reserves a sequence number for an ack and its reply channel.
func (d *Driver) register() (int64, chan wireEvent) {
	seq := d.seq.Add(1)
	ch := make(chan wireEvent, 1)
	d.mu.Lock()
	d.pending[seq] = ch
	d.mu.Unlock()
	return seq, ch
}

func (d *Driver) unregister(seq int64) {
	d.mu.Lock()
	delete(d.pending, seq)
	d.mu.Unlock()
}

// errExited wraps ErrDriverExited with the process's exit status.
func (d *Driver) errExited(doing string) error {
	if d.proc.err != nil {
		return fmt.Errorf("%s: %w (%v)", doing, ErrDriverExited, d.proc.err)
	}
	return fmt.Errorf("%s: %w", doing, ErrDriverExited)
}
