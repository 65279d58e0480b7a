package adminui

import (
	"fmt"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// watcher is the UI's realtime.Watcher, set on the server while an admin
// is connected. Every socket of every namespace is shown, the admin
// namespace's too, as Node does; the events of the admin namespace are
// not (each one forwarded would be an event sent to an admin, told again).
type watcher struct{ u *UI }

func (w watcher) ConnOpened(string)    { w.u.stats.conns.Add(1) }
func (w watcher) ConnClosed(r string)  { w.u.stats.closed(r) }
func (w watcher) PacketReceived(n int) { w.u.stats.packetsIn.Add(1); w.u.stats.bytesIn.Add(int64(n)) }
func (w watcher) PacketsSent(p, n int) {
	w.u.stats.packetsOut.Add(int64(p))
	w.u.stats.bytesOut.Add(int64(n))
}

func (w watcher) SocketConnected(s *realtime.Socket) {
	if c := w.u.cfg.Load(); c != nil {
		w.u.broadcast("socket_connected", c.serialize(s), now())
	}
}

func (w watcher) SocketUpgraded(s *realtime.Socket) {
	w.u.broadcast("socket_updated", map[string]any{
		"id": s.ID(), "nsp": s.Namespace().Name(), "transport": s.Transport(),
	})
}

func (w watcher) SocketDisconnected(s *realtime.Socket, reason string) {
	w.u.broadcast("socket_disconnected", s.Namespace().Name(), s.ID(), reason, now())
}

func (w watcher) RoomJoined(n *realtime.Namespace, room, id string) {
	w.u.broadcast("room_joined", n.Name(), room, id, now())
}

func (w watcher) RoomLeft(n *realtime.Namespace, room, id string) {
	w.u.broadcast("room_left", n.Name(), room, id, now())
}

func (w watcher) EventReceived(s *realtime.Socket, data []any) {
	w.u.viewEvent("event_received", s, data)
}

func (w watcher) EventSent(s *realtime.Socket, data []any) {
	w.u.viewEvent("event_sent", s, data)
}

// viewEvent forwards one event of a socket, within the view's budget.
func (u *UI) viewEvent(kind string, s *realtime.Socket, data []any) {
	c := u.cfg.Load()
	if c == nil || len(data) == 0 || s.Namespace().Name() == c.Namespace || !u.events.take() {
		return
	}
	if size := argsSize(data[1:], MaxViewArgsBytes); size > MaxViewArgsBytes {
		data = []any{data[0], fmt.Sprintf("(arguments of more than %d bytes, not shown)", MaxViewArgsBytes)}
	}
	u.broadcast(kind, s.Namespace().Name(), s.ID(), data, now())
}

// now is the timestamp of an event, as JSON has a JavaScript Date.
func now() string { return isoTime(time.Now()) }

var _ realtime.Watcher = watcher{}
