package realtime

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// BroadcastOperator selects sockets of a namespace and acts on them. It is an
// immutable value: each method returns a modified copy, so operators can be
// kept and reused from any goroutine.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	flags  BroadcastFlags
}

// To adds rooms to the selection (every socket in any of them).
func (b BroadcastOperator) To(rooms ...string) BroadcastOperator {
	b.rooms = append(slices.Clip(b.rooms), rooms...)
	return b
}

// In is the same as To.
func (b BroadcastOperator) In(rooms ...string) BroadcastOperator { return b.To(rooms...) }

// Except leaves the sockets in rooms out.
func (b BroadcastOperator) Except(rooms ...string) BroadcastOperator {
	b.except = append(slices.Clip(b.except), rooms...)
	return b
}

// Volatile lets busy clients miss the broadcast instead of queueing it.
func (b BroadcastOperator) Volatile() BroadcastOperator {
	b.flags.Volatile = true
	return b
}

// Local keeps the broadcast on this node.
func (b BroadcastOperator) Local() BroadcastOperator {
	b.flags.Local = true
	return b
}

// Compress is carried to cluster adapters; WebSocket compression is not
// negotiated by this server.
func (b BroadcastOperator) Compress(on bool) BroadcastOperator {
	b.flags.Compress = on
	return b
}

// Timeout bounds how long EmitWithAck waits for answers.
func (b BroadcastOperator) Timeout(d time.Duration) BroadcastOperator {
	b.flags.Timeout = d
	return b
}

func (b BroadcastOperator) options() BroadcastOptions {
	return BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

// Emit sends an event to the selected sockets, encoded once.
func (b BroadcastOperator) Emit(event string, args ...any) error {
	if parser.IsReservedEvent(event) {
		return fmt.Errorf("broadcasting %q: %w", event, ErrReservedEvent)
	}
	p, opts := eventPacket(b.nsp.name, parser.NoID, event, args), b.options()
	var err error
	if st := b.nsp.recordStore(opts.Flags); st != nil {
		err = b.nsp.broadcastRecorded(st, p, opts)
	} else {
		err = b.nsp.adapter.Broadcast(p, opts)
	}
	if err == nil {
		b.nsp.broadcasted()
	}
	return err
}

// EmitWithAck sends an event to the selected sockets and collects one answer
// per socket. It returns when every socket answered, or with ErrAckTimeout
// and the answers so far when the operator's Timeout (or ctx's deadline)
// passes first. Without a Timeout and a ctx deadline it waits for ctx.
func (b BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([][]any, error) {
	if parser.IsReservedEvent(event) {
		return nil, fmt.Errorf("broadcasting %q: %w", event, ErrReservedEvent)
	}
	if b.flags.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.flags.Timeout)
		defer cancel()
	}
	var (
		mu       sync.Mutex
		replies  [][]any
		expected = -1
		done     = make(chan struct{})
		closed   bool
	)
	check := func() {
		if !closed && expected >= 0 && len(replies) >= expected {
			closed = true
			close(done)
		}
	}
	err := b.nsp.adapter.BroadcastWithAck(eventPacket(b.nsp.name, parser.NoID, event, args), b.options(),
		func(n int) {
			mu.Lock()
			defer mu.Unlock()
			expected = n
			check()
		},
		func(a []any) {
			mu.Lock()
			defer mu.Unlock()
			if a == nil {
				a = []any{}
			}
			replies = append(replies, a)
			check()
		})
	if err != nil {
		return nil, err
	}
	b.nsp.broadcasted()
	select {
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		return replies, nil
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		closed = true
		out := slices.Clone(replies)
		if ctx.Err() == context.DeadlineExceeded {
			b.nsp.ackTimedOut()
			return out, ErrAckTimeout
		}
		return out, ctx.Err()
	}
}

// FetchSockets describes the selected sockets of every node.
func (b BroadcastOperator) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	return b.nsp.adapter.FetchSockets(ctx, b.options())
}

// SocketsJoin makes the selected sockets (of every node) join rooms. An
// error wraps ErrClusterUnavailable when other nodes were not reached.
func (b BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.AddSockets(ctx, b.options(), rooms)
}

// SocketsLeave makes the selected sockets (of every node) leave rooms.
func (b BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.nsp.adapter.DelSockets(ctx, b.options(), rooms)
}

// DisconnectSockets disconnects the selected sockets (of every node); with
// close, their whole connections.
func (b BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.nsp.adapter.DisconnectSockets(ctx, b.options(), close)
}
