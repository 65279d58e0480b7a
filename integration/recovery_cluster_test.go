//go:build live

package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// recNode is a Caddy node of the recovery cluster test.
type recNode struct {
	*caddyProc
	cfg string
}

// reload reloads the node's unchanged config (forced, so Caddy provisions
// it again).
func (n *recNode) reload(t *testing.T) {
	t.Helper()
	n.writeConfig(n.cfg)
	n.command("reload", "--config", n.cfgPath, "--adapter", "caddyfile", "--address", n.admin, "--force")
}

// startRecoveryNode runs a Caddy node with recovery on the Redis adapter,
// the webhook, a relayed "chat" and the emit API.
func startRecoveryNode(t *testing.T, backend, redisURL string) *recNode {
	t.Helper()
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := fmt.Sprintf(`{
%s	auto_https off
}

http://127.0.0.1:%d {
	socketio {
		ping_interval 500ms
		ping_timeout 500ms
		auth optional {
			secret {env.JWT_SECRET}
		}
		join room-{socketio.query.room}
		emit welcome "hello {socketio.claims.sub}"
		relay chat
		recovery {
			max_disconnection_duration %s
		}
		adapter redis %s
		webhook {
			secret %s
			connect %s/connect
			disconnect %s/disconnect
		}
	}
	socketio_api /internal/socketio/* {
		secrets %s %s
	}
}
`, adminOptions(sc.AdminPort), sc.Port, recWindow, redisURL, hookITSecret, backend, backend, apiITSecretOld, apiITSecretNew)
	return &recNode{startCaddyConfig(t, sc, cfg), cfg}
}

// TestRecoveryClusterLive: socket.io-client 4.8 on node A has its
// transport cut (WebSocket and polling); while it is gone, events come
// from the emit API of node A and of node B and from a client of node B;
// it comes back through the balancer, which now sends it to node B: it is
// recovered, with the same id, in its room, and every event of the gap
// once, in order. Volatile and ack'd emits are not replayed; a deliberate
// disconnect(), a return after the window and a bogus pid/offset get new
// sessions.
func TestRecoveryClusterLive(t *testing.T) {
	drv := nodeclient.Start(t)
	r := testkit.StartRedis(t)
	b := newRecBackend(t)
	procA := startRecoveryNode(t, b.srv.URL, r.URL())
	procB := startRecoveryNode(t, b.srv.URL, r.URL())
	nodeA, nodeB := procA.BaseURL, procB.BaseURL
	hostB := strings.TrimPrefix(nodeB, "http://")
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			t.Run("cut on A, back on B", func(t *testing.T) {
				testRecoveredOnOtherNode(t, drv, b, nodeA, nodeB, transport, true, nil)
			})
			t.Run("cut on A, B reloaded, back on B", func(t *testing.T) {
				testRecoveredOnOtherNode(t, drv, b, nodeA, nodeB, transport, true, procB.reload)
			})
			t.Run("back on B before A noticed", func(t *testing.T) {
				testRecoveredOnOtherNode(t, drv, b, nodeA, nodeB, transport, false, nil)
			})
			t.Run("deliberate disconnect", func(t *testing.T) {
				room := "leave-x-" + transport
				c, p, first := recClient(t, drv, nodeA, room, transport, "erin", room)
				c.Disconnect()
				if _, err := c.WaitDisconnect(clientWait); err != nil {
					t.Fatal(err)
				}
				// Node A has the DISCONNECT (a client that connects
				// elsewhere before that is taken over: see docs/cluster.md).
				b.waitFor("disconnect of "+first.Sid, func(c map[string]any) bool {
					return c["type"] == "disconnect" && c["socket"] == first.Sid
				})
				p.retarget(hostB)
				c.Reconnect()
				ev, err := c.WaitConnectEvent(clientWait)
				if err != nil {
					t.Fatal(err)
				}
				if ev.Recovered || ev.Sid == first.Sid {
					t.Fatalf("after disconnect(): %+v, want a new session (was %s)", ev, first.Sid)
				}
				c.Disconnect()
			})
			t.Run("after the window", func(t *testing.T) {
				room := "late-x-" + transport
				c, p, first := recClient(t, drv, nodeA, room, transport, "fred", room)
				drop(t, b, p, first.Sid, transport)
				time.Sleep(recWindow + 500*time.Millisecond) // the window passing is what is tested
				p.retarget(hostB)
				p.pause(false)
				ev := waitBack(t, c, clientWait)
				if ev.Recovered || ev.Sid == first.Sid {
					t.Fatalf("back after the window: %+v, want a new session (was %s)", ev, first.Sid)
				}
				c.Disconnect()
			})
		})
	}
	t.Run("a Node peer beside recovering nodes", func(t *testing.T) {
		// @socket.io/redis-adapter 8.3 on the same Redis: it gets the
		// recorded events (a fourth element in the broadcast array) and
		// the takeover request (type 100), and neither harms it.
		peer := nodeclient.StartClusterPeer(t, r.URL(), "")
		nc := drv.Connect("node-peer-client", "4", peer.URL, map[string]any{
			"transports": []string{"websocket"}, "auth": map[string]any{"rooms": []string{"room-np-room"}}, "reconnection": false,
		})
		if _, err := nc.WaitConnect(clientWait); err != nil {
			t.Fatal(err)
		}
		c, p, first := recClient(t, drv, nodeA, "np-room", "websocket", "nina", "np-room")
		drop(t, b, p, first.Sid, "websocket")
		apiITPost(t, nodeA, "emit", `{"to":["room-np-room"],"event":"np","args":["a"]}`)
		apiITPost(t, nodeB, "emit", `{"to":["room-np-room"],"event":"np","args":["b"]}`)
		for _, want := range []string{"a", "b"} {
			args, err := nc.WaitEvent("np", clientWait)
			if err != nil {
				t.Fatalf("the Node peer's client: %v", err)
			}
			if len(args) != 2 || args[0] != want {
				t.Fatalf("the Node peer's client got %v, want %q and an offset", args, want)
			}
		}
		// A bogus pid with a real offset: the takeover request reaches
		// the Node peer too.
		offset := c.EventsNamed("welcome")[0][1]
		bogus := drv.Connect("np-bogus", "4", nodeB, map[string]any{"transports": []string{"websocket"},
			"auth": map[string]any{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": offset, "token": userToken(t, "mallory")}})
		if ev, err := bogus.WaitConnectEvent(clientWait); err != nil || ev.Recovered {
			t.Fatalf("bogus pid beside a Node peer: %+v, %v", ev, err)
		}
		bogus.Disconnect()
		p.retarget(hostB)
		p.pause(false)
		if ev := waitBack(t, c, clientWait); !ev.Recovered || ev.Sid != first.Sid {
			t.Fatalf("back on B as %+v, want recovered as %s", ev, first.Sid)
		}
		var got []any
		for _, args := range c.EventsNamed("np") {
			got = append(got, args[0])
		}
		if !slices.Equal(got, []any{"a", "b"}) {
			t.Fatalf("recovered with %v, want [a b]", got)
		}
		// The Node peer is still up and serving.
		var socks []any
		if err := peer.Call(&socks, "fetch_sockets", map[string]any{"rooms": []string{"room-np-room"}}); err != nil {
			t.Fatalf("the Node peer after recovery traffic: %v", err)
		}
		c.Disconnect()
		nc.Disconnect()
	})
	t.Run("bogus pid and offset", func(t *testing.T) {
		for i, auth := range []map[string]any{
			{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": "000001700000000000-000000"},
			{"pid": strings.Repeat("A", 5000), "offset": strings.Repeat("9", 5000)},
			{"pid": "AAAAAAAAAAAAAAAAAAAA", "offset": "zzzz"},
		} {
			auth["token"] = userToken(t, "mallory")
			c := drv.Connect(fmt.Sprintf("bogus-%d", i), "4", nodeB, map[string]any{"transports": []string{"websocket"}, "auth": auth})
			ev, err := c.WaitConnectEvent(clientWait)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Recovered || len(ev.Sid) != 20 {
				t.Fatalf("bogus pid: %+v, want a new session", ev)
			}
			c.Disconnect()
		}
	})
}

// testRecoveredOnOtherNode is the acceptance case of recovery on Redis.
// With noticed, the gap starts once node A has seen the transport go;
// without, the client is back on B before that (a polling client within
// the heartbeat): B asks A to close the old socket. With reload, node B's
// config is reloaded during the gap.
func testRecoveredOnOtherNode(t *testing.T, drv *nodeclient.Driver, b *recBackend, nodeA, nodeB, transport string, noticed bool, reload func(*testing.T)) {
	// (Not 20 characters with its "room-": such a name looks like a socket
	// id and the join rule skips it.)
	room := fmt.Sprintf("x-%s-%v-%v", transport, noticed, reload != nil)
	c, p, first := recClient(t, drv, nodeA, room, transport, "dana-"+room, room)
	// A client of node B in the same room, whose "chat" is relayed to it.
	peer, _, _ := recClient(t, drv, nodeB, "peer-"+room, "websocket", "pete-"+room, room)
	if noticed {
		drop(t, b, p, first.Sid, transport)
	} else {
		p.pause(true)
		p.cut()
	}

	to := `"to":["room-` + room + `"]`
	apiITPost(t, nodeA, "emit", `{`+to+`,"event":"gap","args":["a1"]}`)
	apiITPost(t, nodeB, "emit", `{`+to+`,"event":"gap","args":["b1"]}`)
	peer.Emit("chat", "from-peer")
	if _, err := peer.WaitEvent("chat", 300*time.Millisecond); err == nil {
		t.Fatal("the relay came back to its sender")
	}
	apiITPost(t, nodeA, "emit", `{`+to+`,"event":"gap","args":["a2"]}`)
	apiITPost(t, nodeA, "emit", `{`+to+`,"event":"gap","args":["volatile"],"volatile":true}`)
	apiITPost(t, nodeB, "emit", `{`+to+`,"event":"gap","args":["with ack"],"ack":true,"timeout":"100ms"}`)
	apiITPost(t, nodeB, "emit", `{`+to+`,"event":"gap","args":["b2"]}`)
	apiITPost(t, nodeA, "emit", `{"event":"gap","args":["all"]}`)
	if reload != nil {
		reload(t)
	}

	p.retarget(strings.TrimPrefix(nodeB, "http://"))
	p.pause(false)
	ev := waitBack(t, c, clientWait)
	if !ev.Recovered || ev.Sid != first.Sid {
		t.Fatalf("back on B as %+v, want recovered as %s", ev, first.Sid)
	}
	marker(t, nodeA, c, "after-"+room)
	var got []string
	for _, e := range c.Events() {
		if e.Type != "event" || (e.Name != "gap" && e.Name != "chat") {
			continue
		}
		if len(e.Args) != 2 {
			t.Fatalf("%s event %v: want its argument and an offset", e.Name, e.Args)
		}
		got = append(got, fmt.Sprint(e.Args[0]))
	}
	if want := []string{"a1", "b1", "from-peer", "a2", "b2", "all"}; !slices.Equal(got, want) {
		var all []string
		for _, e := range c.Events() {
			all = append(all, fmt.Sprintf("%s %s %v %s %v", e.Type, e.Name, e.Args, e.Sid, e.Recovered))
		}
		t.Fatalf("gap events %v, want %v exactly once, in order; the client saw:\n%s", got, want, strings.Join(all, "\n"))
	}
	// Its claims are back on B (the token verified again there: they are
	// not kept in Redis): the emit rule, run again, names its subject. It
	// runs after the CONNECT reply, and B's recorded emit goes through
	// Redis like the marker from A, so it may arrive after the marker:
	// waited for, bounded.
	w := c.EventsNamed("welcome")
	for deadline := time.Now().Add(clientWait); len(w) < 2 && time.Now().Before(deadline); w = c.EventsNamed("welcome") {
		time.Sleep(20 * time.Millisecond) // polling the driver's event list
	}
	if len(w) < 2 || w[len(w)-1][0] != "hello dana-"+room {
		t.Fatalf("welcome events %v, want a last one to dana-%s", w, room)
	}
	// In its room on B: an event from A to the room reaches it live.
	apiITPost(t, nodeA, "emit", `{`+to+`,"event":"live","args":[1]}`)
	if _, err := c.WaitEvent("live", clientWait); err != nil {
		t.Fatalf("the recovered socket is not in its room: %v", err)
	}
	b.waitFor("recovered connect", func(call map[string]any) bool {
		return call["type"] == "connect" && call["socket"] == first.Sid && call["recovered"] == true
	})
	c.Disconnect()
	peer.Disconnect()
}
