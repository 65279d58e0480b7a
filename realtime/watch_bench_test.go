package realtime

import (
	"fmt"
	"testing"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// discardSession is a fakeSession that keeps nothing it is sent.
type discardSession struct{ *fakeSession }

func (discardSession) Send(...*engineio.Message) error { return nil }

// nopWatcher is told everything and does nothing.
type nopWatcher struct{}

func (nopWatcher) ConnOpened(string)                     {}
func (nopWatcher) ConnClosed(string)                     {}
func (nopWatcher) PacketReceived(int)                    {}
func (nopWatcher) PacketsSent(int, int)                  {}
func (nopWatcher) SocketConnected(*Socket)               {}
func (nopWatcher) SocketUpgraded(*Socket)                {}
func (nopWatcher) SocketDisconnected(*Socket, string)    {}
func (nopWatcher) RoomJoined(*Namespace, string, string) {}
func (nopWatcher) RoomLeft(*Namespace, string, string)   {}
func (nopWatcher) EventReceived(*Socket, []any)          {}
func (nopWatcher) EventSent(*Socket, []any)              {}

// BenchmarkBroadcastWatched: a room broadcast to 1000 in-process sockets
// (sessions that discard what they get), without a Watcher (what every
// server pays for the hooks) and with one that does nothing (what watching
// adds before the watcher's own work).
func BenchmarkBroadcastWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run(fmt.Sprintf("watcher=%v", watched), func(b *testing.B) {
			srv := NewServer(Options{})
			defer srv.Close()
			ns := srv.Of("/")
			ns.OnConnection(func(s *Socket) { _ = s.Join("room") })
			for range 1000 {
				c := newConn(srv, discardSession{newFakeSession()}, srv.opts.Load())
				c.OnMessage([]byte("0"), false) // a CONNECT to "/"
			}
			if ns.Len() != 1000 {
				b.Fatalf("%d sockets", ns.Len())
			}
			if watched {
				srv.Watch(nopWatcher{})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = ns.To("room").Emit("tick", "hello")
			}
		})
	}
}
