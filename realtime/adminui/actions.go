package adminui

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// The actions the UI sends (Node's registerFeatureHandlers, socket.io v4):
//
//	emit(nsp, filter, event, ...args)  emit to the namespace, or a room of it
//	join(nsp, room, filter?)           make the sockets (of filter) join room
//	leave(nsp, room, filter?)          make them leave room
//	_disconnect(nsp, close, filter?)   disconnect them (close: their connections)
//
// filter is a room name (a socket id is the room of that socket). Node
// creates a namespace an action names; here an unknown namespace is left
// alone. Read-only refuses them all. Node does not acknowledge actions; an
// action sent with an ack gets {"ok":true} or {"ok":false,"error":...}.
func (u *UI) registerActions(s *realtime.Socket) {
	s.On("emit", u.action("emit", u.emit))
	s.On("join", u.action("join", u.join))
	s.On("leave", u.action("leave", u.leave))
	s.On("_disconnect", u.action("_disconnect", u.disconnect))
}

// actionError is an action's refusal, as its ack says it.
type actionError string

func (e actionError) Error() string { return string(e) }

const (
	errReadOnly     actionError = "read-only"
	errBadArguments actionError = "bad arguments"
	errNoNamespace  actionError = "unknown namespace"
)

// action wraps an action's handler: the read-only check, the namespace
// lookup, the log line and the ack.
func (u *UI) action(name string, do func(n *realtime.Namespace, args []any) error) realtime.EventHandler {
	return func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
		err := u.run(do, args)
		lvl := zap.InfoLevel
		if err != nil {
			lvl = zap.DebugLevel
		}
		if ce := u.logger.Check(lvl, "admin UI action"); ce != nil {
			nsp, _ := stringArg(args, 0)
			fields := []zap.Field{zap.String("action", name), zap.String("namespace", utf8cut.Cut(nsp, 64)),
				zap.String("remote", s.Handshake().Address)}
			if err != nil {
				fields = append(fields, zap.Error(err))
			}
			ce.Write(fields...)
		}
		if ack == nil {
			return
		}
		if err != nil {
			_ = ack(map[string]any{"ok": false, "error": err.Error()})
			return
		}
		_ = ack(map[string]any{"ok": true})
	}
}

// run checks an action's config and namespace, then does it.
func (u *UI) run(do func(n *realtime.Namespace, args []any) error, args []any) error {
	c := u.cfg.Load()
	if c == nil || c.ReadOnly {
		return errReadOnly
	}
	nsp, ok := stringArg(args, 0)
	if !ok {
		return errBadArguments
	}
	n, found := u.srv.Namespace(nsp)
	if !found {
		return errNoNamespace
	}
	return do(n, args[1:])
}

// target is the namespace, or the sockets in the room filter when it is
// a non-empty string.
func target(n *realtime.Namespace, filter any) realtime.BroadcastOperator {
	if f, ok := filter.(string); ok && f != "" {
		return n.To(f)
	}
	return n.To()
}

func (u *UI) emit(n *realtime.Namespace, args []any) error {
	// filter, event, ...args
	if len(args) < 2 {
		return errBadArguments
	}
	event, ok := stringArg(args, 1)
	if !ok || event == "" {
		return errBadArguments
	}
	return target(n, args[0]).Emit(event, args[2:]...)
}

// actionTimeout bounds an action that a cluster adapter forwards to other
// nodes (a lone node answers at once).
const actionTimeout = 5 * time.Second

func (u *UI) join(n *realtime.Namespace, args []any) error {
	room, ok := stringArg(args, 0)
	if !ok || room == "" {
		return errBadArguments
	}
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	return target(n, optArg(args, 1)).SocketsJoin(ctx, room)
}

func (u *UI) leave(n *realtime.Namespace, args []any) error {
	room, ok := stringArg(args, 0)
	if !ok || room == "" {
		return errBadArguments
	}
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	return target(n, optArg(args, 1)).SocketsLeave(ctx, room)
}

func (u *UI) disconnect(n *realtime.Namespace, args []any) error {
	closeConn, _ := optArg(args, 0).(bool)
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	return target(n, optArg(args, 1)).DisconnectSockets(ctx, closeConn)
}

func stringArg(args []any, i int) (string, bool) {
	if i >= len(args) {
		return "", false
	}
	s, ok := args[i].(string)
	return s, ok
}

func optArg(args []any, i int) any {
	if i >= len(args) {
		return nil
	}
	return args[i]
}
