package nodeclient

import (
	"fmt"
	"sync"
	"time"
)

// Client is one socket.io-client socket inside the driver. Everything it
// receives is buffered; each Wait method consumes the oldest unconsumed event
// it matches, so a test can wait for events in any order without losing any.
type Client struct {
	d  *Driver
	id string

	mu       sync.Mutex
	events   []Event
	consumed []bool
	notify   chan struct{} // closed and replaced whenever an event is added
}

// ID is the name the test gave this client.
func (c *Client) ID() string { return c.id }

func (c *Client) add(ev Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.consumed = append(c.consumed, false)
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

// Events returns a snapshot of everything received so far, consumed or not,
// in arrival order (ack replies to EmitWithAck are not included).
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// EventsNamed returns the arguments of every "event" received so far with
// that name, consumed or not.
func (c *Client) EventsNamed(name string) [][]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]any
	for _, ev := range c.events {
		if ev.Type == "event" && ev.Name == name {
			out = append(out, ev.Args)
		}
	}
	return out
}

// Wait consumes and returns the oldest unconsumed event for which match
// returns true, waiting up to timeout for one to arrive. what names the
// awaited thing in the error.
func (c *Client) Wait(timeout time.Duration, what string, match func(Event) bool) (Event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	exited := false
	for {
		c.mu.Lock()
		for i := range c.events {
			if !c.consumed[i] && match(c.events[i]) {
				c.consumed[i] = true
				ev := c.events[i]
				c.mu.Unlock()
				return ev, nil
			}
		}
		notify := c.notify
		c.mu.Unlock()
		if exited {
			return Event{}, c.d.errExited(fmt.Sprintf("client %s waiting for %s", c.id, what))
		}
		select {
		case <-notify:
		case <-c.d.proc.done:
			exited = true // look once more: the last lines may have just arrived
		case <-timer.C:
			return Event{}, fmt.Errorf("client %s waiting for %s: %w after %v", c.id, what, ErrTimeout, timeout)
		}
	}
}

// WaitConnect waits for the next "connect" and returns the socket id. If a
// connect_error comes first it returns a *ConnectError; a driver error for
// this client (bad version, ...) is returned as a *DriverError.
func (c *Client) WaitConnect(timeout time.Duration) (string, error) {
	ev, err := c.WaitConnectEvent(timeout)
	if err != nil {
		return "", err
	}
	return ev.Sid, nil
}

// WaitConnectEvent is WaitConnect returning the whole event, for the
// transport and recovered flag.
func (c *Client) WaitConnectEvent(timeout time.Duration) (Event, error) {
	ev, err := c.Wait(timeout, "connect", func(e Event) bool {
		return e.Type == "connect" || e.Type == "connect_error" || e.Type == "error"
	})
	if err != nil {
		return ev, err
	}
	switch ev.Type {
	case "connect_error":
		return ev, &ConnectError{Message: ev.Message, Data: ev.Data}
	case "error":
		return ev, &DriverError{Message: ev.Message}
	}
	return ev, nil
}

// WaitEvent waits for the next unconsumed server event with that name and
// returns its arguments (without the ack callback).
func (c *Client) WaitEvent(name string, timeout time.Duration) ([]any, error) {
	ev, err := c.Wait(timeout, fmt.Sprintf("event %q", name), func(e Event) bool {
		return e.Type == "event" && e.Name == name
	})
	return ev.Args, err
}

// WaitDisconnect waits for the next "disconnect" and returns the client's
// reason ("io server disconnect", "transport close", "ping timeout", ...).
func (c *Client) WaitDisconnect(timeout time.Duration) (string, error) {
	ev, err := c.Wait(timeout, "disconnect", func(e Event) bool { return e.Type == "disconnect" })
	return ev.Reason, err
}

// WaitUpgrade waits for the next transport upgrade (to websocket).
func (c *Client) WaitUpgrade(timeout time.Duration) error {
	_, err := c.Wait(timeout, "upgrade", func(e Event) bool { return e.Type == "upgrade" })
	return err
}

// WaitReconnect waits for the manager's next successful "reconnect".
func (c *Client) WaitReconnect(timeout time.Duration) error {
	_, err := c.Wait(timeout, "reconnect", func(e Event) bool { return e.Type == "reconnect" })
	return err
}

// Emit sends an event without an ack. []byte arguments become Buffers.
func (c *Client) Emit(event string, args ...any) {
	c.d.send(map[string]any{"cmd": "emit", "id": c.id, "event": event, "args": toWire(argList(args))})
}

// EmitWithAck sends an event with an ack callback and waits for the reply.
// The client applies timeout itself (socket.timeout(ms) on v4, a timer on
// v3) and its failure comes back as an *AckError; a command the driver
// rejects (unknown client) as a *DriverError; the Go side gives up after
// timeout+AckSlack with ErrTimeout.
func (c *Client) EmitWithAck(timeout time.Duration, event string, args ...any) ([]any, error) {
	if timeout <= 0 {
		timeout = DefaultAckTimeout
	}
	seq, ch := c.d.register()
	defer c.d.unregister(seq)
	if !c.d.send(map[string]any{
		"cmd": "emit", "id": c.id, "event": event, "args": toWire(argList(args)),
		"ack": true, "timeout": timeout.Milliseconds(), "seq": seq,
	}) {
		return nil, fmt.Errorf("client %s emitting %q: sending command failed", c.id, event)
	}
	timer := time.NewTimer(timeout + AckSlack)
	defer timer.Stop()
	select {
	case w := <-ch:
		if w.Type == "ack_error" && w.Driver {
			return nil, fmt.Errorf("client %s emitting %q: %w", c.id, event, &DriverError{Message: w.Error})
		}
		if w.Type == "ack_error" {
			return nil, fmt.Errorf("client %s emitting %q: %w", c.id, event, &AckError{Message: w.Error})
		}
		return argsFromWire(w.Args), nil
	case <-timer.C:
		return nil, fmt.Errorf("client %s waiting for ack of %q: %w after %v", c.id, event, ErrTimeout, timeout+AckSlack)
	case <-c.d.proc.done:
		select {
		case w := <-ch:
			if w.Type == "ack" {
				return argsFromWire(w.Args), nil
			}
		default:
		}
		return nil, c.d.errExited(fmt.Sprintf("client %s waiting for ack of %q", c.id, event))
	}
}

// SetAckReply makes the driver answer server acks for event with reply
// instead of echoing the received arguments (the default). event "*" sets
// the default for all events.
func (c *Client) SetAckReply(event string, reply []any) {
	c.d.send(map[string]any{"cmd": "ack_rule", "id": c.id, "event": event, "mode": "reply", "reply": toWire(argList(reply))})
}

// SetAckEcho restores the default for event: ack with the received args.
func (c *Client) SetAckEcho(event string) {
	c.d.send(map[string]any{"cmd": "ack_rule", "id": c.id, "event": event, "mode": "echo"})
}

// SetAckIgnore makes the driver never answer server acks for event, so the
// server's ack timeout can be tested.
func (c *Client) SetAckIgnore(event string) {
	c.d.send(map[string]any{"cmd": "ack_rule", "id": c.id, "event": event, "mode": "ignore"})
}

// Disconnect calls socket.disconnect(); the client stays known to the driver
// and can Reconnect.
func (c *Client) Disconnect() {
	c.d.send(map[string]any{"cmd": "disconnect", "id": c.id})
}

// Reconnect calls socket.connect() again, e.g. after "io server disconnect",
// after which the client does not reconnect by itself.
func (c *Client) Reconnect() {
	c.d.send(map[string]any{"cmd": "reconnect", "id": c.id})
}

// DropTransport closes the client's Engine.IO connection without a
// Socket.IO disconnect, like a network failure seen from the client; with
// reconnection enabled the manager reconnects.
func (c *Client) DropTransport() {
	c.d.send(map[string]any{"cmd": "drop", "id": c.id})
}

// argList keeps an empty argument list a JSON array rather than null.
func argList(args []any) []any {
	if args == nil {
		return []any{}
	}
	return args
}
