//go:build live

package nodeclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// wait bounds every wait in these tests; generous for -race on 2 cores.
const wait = 10 * time.Second

var versions = []string{"4", "3"}

func TestWireRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want any // after toWire, JSON, fromWire
	}{
		{"bytes", []byte{1, 2, 3}, []byte{1, 2, 3}},
		{"empty bytes", []byte{}, []byte{}},
		{"nested", map[string]any{"a": []any{[]byte{0xff}, "s", 1.5}}, map[string]any{"a": []any{[]byte{0xff}, "s", 1.5}}},
		{"typed slice", [][]byte{{1}, {2}}, []any{[]byte{1}, []byte{2}}},
		{"typed map", map[string][]byte{"k": {9}}, map[string]any{"k": []byte{9}}},
		{"array of bytes", [2]byte{7, 8}, []byte{7, 8}},
		{"plain", "text", "text"},
		{"number", 3, 3.0},
		{"bin lookalike with extra key", map[string]any{"$bin": "AQ==", "x": 1}, map[string]any{"$bin": "AQ==", "x": 1.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := jsonMarshal(toWire(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := jsonUnmarshalAny(b)
			if err != nil {
				t.Fatal(err)
			}
			if got = fromWire(got); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip of %#v via %s = %#v, want %#v", tc.in, b, got, tc.want)
			}
		})
	}
}

func TestNodeClient(t *testing.T) {
	base := StartEchoServer(t)
	d := Start(t)
	if v := d.Versions(); len(v["4"]) < 3 || v["4"][:3] != "4.8" || v["3"] != "3.1.3" {
		t.Fatalf("client versions = %v, want 4.8.x and 3.1.3", v)
	}
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			// id makes client ids unique across the shared driver.
			id := func(name string) string { return fmt.Sprintf("%s-v%s", name, v) }

			t.Run("transports", func(t *testing.T) {
				t.Parallel()
				cases := []struct {
					name          string
					opts          map[string]any
					wantTransport string
					wantUpgrade   bool
				}{
					{"polling only", map[string]any{"transports": []string{"polling"}}, "polling", false},
					{"websocket only", map[string]any{"transports": []string{"websocket"}}, "websocket", false},
					// The upgrade may finish before the CONNECT reply arrives,
					// so the transport at connect time is either.
					{"default upgrades", nil, "", true},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						t.Parallel()
						c := d.Connect(id("tr-"+tc.name), v, base, tc.opts)
						ev, err := c.WaitConnectEvent(wait)
						if err != nil {
							t.Fatal(err)
						}
						if len(ev.Sid) != 20 || (tc.wantTransport != "" && ev.Transport != tc.wantTransport) {
							t.Fatalf("connect = sid %q transport %q, want 20-char sid over %s", ev.Sid, ev.Transport, tc.wantTransport)
						}
						if tc.wantUpgrade {
							if err := c.WaitUpgrade(wait); err != nil {
								t.Fatal(err)
							}
						}
						// A round trip after the upgrade window proves the
						// connection works and gives an upgrade time to show.
						got, err := c.EmitWithAck(wait, "add", 2, 3)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(got, []any{5.0}) {
							t.Fatalf("ack of add(2,3) = %v, want [5]", got)
						}
						if !tc.wantUpgrade {
							for _, e := range c.Events() {
								if e.Type == "upgrade" {
									t.Fatalf("unexpected upgrade with %v", tc.opts)
								}
							}
						}
						c.Disconnect()
						if reason, err := c.WaitDisconnect(wait); err != nil || reason != "io client disconnect" {
							t.Fatalf("disconnect = %q, %v; want io client disconnect", reason, err)
						}
					})
				}
			})

			t.Run("auth echoed", func(t *testing.T) {
				t.Parallel()
				auth := map[string]any{"token": "abc", "n": 1.0}
				c := d.Connect(id("auth"), v, base, map[string]any{"auth": auth})
				if _, err := c.WaitConnect(wait); err != nil {
					t.Fatal(err)
				}
				got, err := c.WaitEvent("auth", wait)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, []any{auth}) {
					t.Fatalf("auth event = %v, want [%v]", got, auth)
				}
			})

			for _, nsp := range []string{"", "/admin"} {
				t.Run("refused"+nsp, func(t *testing.T) {
					t.Parallel()
					c := d.Connect(id("refused"+nsp), v, base+nsp, map[string]any{"auth": map[string]any{"token": "bad"}})
					_, err := c.WaitConnect(wait)
					var ce *ConnectError
					if !errors.As(err, &ce) {
						t.Fatalf("WaitConnect error = %v, want *ConnectError", err)
					}
					if ce.Message != "unauthorized" || !reflect.DeepEqual(ce.Data, map[string]any{"reason": "bad token"}) {
						t.Fatalf("connect error = %q %#v, want unauthorized {reason: bad token}", ce.Message, ce.Data)
					}
				})
			}

			t.Run("namespace admin", func(t *testing.T) {
				t.Parallel()
				c := d.Connect(id("admin"), v, base+"/admin", nil)
				sid, err := c.WaitConnect(wait)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.EmitWithAck(wait, "whoami")
				if err != nil {
					t.Fatal(err)
				}
				want := []any{map[string]any{"nsp": "/admin", "id": sid}}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("whoami = %v, want %v", got, want)
				}
			})

			t.Run("acks", func(t *testing.T) {
				t.Parallel()
				c := d.Connect(id("acks"), v, base, nil)
				if _, err := c.WaitConnect(wait); err != nil {
					t.Fatal(err)
				}
				// Client -> server, the server computes the reply.
				if got, err := c.EmitWithAck(wait, "add", 40, 2); err != nil || !reflect.DeepEqual(got, []any{42.0}) {
					t.Fatalf("add ack = %v, %v; want [42]", got, err)
				}
				// Server -> client, default rule: the driver echoes the args.
				c.Emit("ask", map[string]any{"event": "q1", "args": []any{1, "two"}})
				if got, err := c.WaitEvent("answer", wait); err != nil || !reflect.DeepEqual(got, []any{map[string]any{"reply": []any{1.0, "two"}}}) {
					t.Fatalf("answer to q1 = %v, %v; want reply [1 two]", got, err)
				}
				evs := c.Events()
				var q1 *Event
				for i := range evs {
					if evs[i].Name == "q1" {
						q1 = &evs[i]
					}
				}
				if q1 == nil || !q1.AckWanted || !reflect.DeepEqual(q1.Args, []any{1.0, "two"}) {
					t.Fatalf("q1 event = %+v, want args [1 two] with ack wanted", q1)
				}
				// Server -> client with a configured reply, binary included.
				c.SetAckReply("q2", []any{"yes", []byte{7, 8}})
				c.Emit("ask", map[string]any{"event": "q2", "args": []any{"ignored"}})
				if got, err := c.WaitEvent("answer", wait); err != nil || !reflect.DeepEqual(got, []any{map[string]any{"reply": []any{"yes", []byte{7, 8}}}}) {
					t.Fatalf("answer to q2 = %v, %v; want reply [yes [7 8]]", got, err)
				}
				// Server -> client never answered: the server's timeout fires.
				c.SetAckIgnore("q3")
				c.Emit("ask", map[string]any{"event": "q3", "args": []any{}, "timeout": 300})
				if got, err := c.WaitEvent("answer", wait); err != nil || !reflect.DeepEqual(got, []any{map[string]any{"error": "operation has timed out"}}) {
					t.Fatalf("answer to q3 = %v, %v; want a timeout error", got, err)
				}
			})

			t.Run("ack timeout", func(t *testing.T) {
				t.Parallel()
				c := d.Connect(id("acktimeout"), v, base, nil)
				if _, err := c.WaitConnect(wait); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err := c.EmitWithAck(300*time.Millisecond, "no-ack", 1)
				var ae *AckError
				if !errors.As(err, &ae) || ae.Message != "operation has timed out" {
					t.Fatalf("EmitWithAck error = %v, want AckError operation has timed out", err)
				}
				if el := time.Since(start); el < 250*time.Millisecond || el > 300*time.Millisecond+AckSlack {
					t.Fatalf("ack timeout after %v, want about 300ms", el)
				}
			})

			t.Run("binary", func(t *testing.T) {
				t.Parallel()
				big := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 20000) // 100 kB
				args := []any{
					[]byte{1, 2, 3},
					map[string]any{"nested": []any{[]byte{4, 5}, "s", map[string]any{"deep": []byte{}}}},
					big,
				}
				for _, tr := range []string{"polling", "websocket"} {
					c := d.Connect(id("bin-"+tr), v, base, map[string]any{"transports": []string{tr}})
					if _, err := c.WaitConnect(wait); err != nil {
						t.Fatal(err)
					}
					c.Emit("echo", args...)
					got, err := c.WaitEvent("echo", wait)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, args) {
						t.Fatalf("%s: echo event differs: got %d args %.200v", tr, len(got), got)
					}
					acked, err := c.EmitWithAck(wait, "echo", args...)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(acked, args) {
						t.Fatalf("%s: echo ack differs: got %.200v", tr, acked)
					}
				}
			})

			t.Run("rooms", func(t *testing.T) {
				t.Parallel()
				room := id("room")
				var in, out []*Client
				for i := 0; i < 3; i++ {
					c := d.Connect(id(fmt.Sprintf("room%d", i)), v, base, nil)
					if _, err := c.WaitConnect(wait); err != nil {
						t.Fatal(err)
					}
					if i < 2 {
						if _, err := c.EmitWithAck(wait, "join", room); err != nil {
							t.Fatal(err)
						}
						in = append(in, c)
					} else {
						out = append(out, c)
					}
				}
				in[0].Emit("to-room", map[string]any{"room": room, "event": "news", "args": []any{"hi", []byte{9}}})
				for _, c := range in {
					if got, err := c.WaitEvent("news", wait); err != nil || !reflect.DeepEqual(got, []any{"hi", []byte{9}}) {
						t.Fatalf("%s news = %v, %v", c.ID(), got, err)
					}
				}
				// The outsider's own echo arrives after any room broadcast
				// sent before it on the same server, so its absence counts.
				if _, err := out[0].EmitWithAck(wait, "echo"); err != nil {
					t.Fatal(err)
				}
				if n := out[0].EventsNamed("news"); len(n) != 0 {
					t.Fatalf("outsider received news: %v", n)
				}
			})

			t.Run("kick then reconnect", func(t *testing.T) {
				t.Parallel()
				c := d.Connect(id("kick"), v, base, map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 200})
				// connected waits for the connect and the server's auth event
				// that follows it on every connection.
				connected := func() string {
					t.Helper()
					sid, err := c.WaitConnect(wait)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := c.WaitEvent("auth", wait); err != nil {
						t.Fatal(err)
					}
					return sid
				}
				sid1 := connected()
				// Namespace disconnect: the client does not come back by itself.
				c.Emit("kick")
				if reason, err := c.WaitDisconnect(wait); err != nil || reason != "io server disconnect" {
					t.Fatalf("disconnect = %q, %v; want io server disconnect", reason, err)
				}
				c.Reconnect()
				sid2 := connected()
				// Transport closed: the manager reconnects on its own.
				c.Emit("kick", "transport")
				// Over websocket the client sees the socket close; over
				// polling (before the upgrade finished) it reads the close
				// packet, which engine.io-client 4 names "forced close".
				// Either way the manager reconnects.
				if reason, err := c.WaitDisconnect(wait); err != nil || (reason != "transport close" && reason != "forced close") {
					t.Fatalf("disconnect = %q, %v; want transport close or forced close", reason, err)
				}
				if err := c.WaitReconnect(wait); err != nil {
					t.Fatal(err)
				}
				sid3 := connected()
				if sid1 == sid2 || sid2 == sid3 || sid1 == sid3 {
					t.Fatalf("socket ids not renewed: %s %s %s", sid1, sid2, sid3)
				}
			})

			t.Run("drop transport reconnects", func(t *testing.T) {
				t.Parallel()
				c := d.Connect(id("drop"), v, base, map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 200})
				if _, err := c.WaitConnect(wait); err != nil {
					t.Fatal(err)
				}
				c.DropTransport()
				if reason, err := c.WaitDisconnect(wait); err != nil || reason != "forced close" {
					t.Fatalf("disconnect = %q, %v; want forced close", reason, err)
				}
				if err := c.WaitReconnect(wait); err != nil {
					t.Fatal(err)
				}
				if _, err := c.WaitConnect(wait); err != nil {
					t.Fatal(err)
				}
			})
		})
	}

	t.Run("driver error", func(t *testing.T) {
		c := d.Connect("bad-version", "9", base, nil)
		_, err := c.WaitConnect(wait)
		var de *DriverError
		if !errors.As(err, &de) {
			t.Fatalf("WaitConnect error = %v, want *DriverError", err)
		}
	})

	t.Run("emit from unknown client", func(t *testing.T) {
		ghost := &Client{d: d, id: "ghost", notify: make(chan struct{})}
		start := time.Now()
		_, err := ghost.EmitWithAck(wait, "echo")
		var de *DriverError
		if !errors.As(err, &de) || !strings.Contains(de.Message, "unknown client") {
			t.Fatalf("EmitWithAck error = %v, want DriverError about the unknown client", err)
		}
		if el := time.Since(start); el > wait/2 {
			t.Fatalf("driver error took %v, want it at once", el)
		}
	})

	t.Run("wait times out", func(t *testing.T) {
		c := d.Connect("quiet", "4", base, nil)
		if _, err := c.WaitConnect(wait); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := c.WaitEvent("never-sent", 200*time.Millisecond)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("WaitEvent error = %v, want ErrTimeout", err)
		}
		if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
			t.Fatalf("WaitEvent returned after %v, want about 200ms", el)
		}
		// The auth event is still there, unconsumed by the failed wait.
		if _, err := c.WaitEvent("auth", wait); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDriverExit checks that waits end promptly when the Node process dies,
// and that the reader goroutine finishes.
func TestDriverExit(t *testing.T) {
	d := Start(t)
	c := d.Connect("orphan", "4", "http://127.0.0.1:1", map[string]any{"reconnection": false})
	d.send(map[string]any{"cmd": "exit"})
	select {
	case <-d.Done():
	case <-time.After(wait):
		t.Fatal("driver did not exit")
	}
	start := time.Now()
	_, err := c.WaitEvent("anything", wait)
	if !errors.Is(err, ErrDriverExited) {
		t.Fatalf("WaitEvent error = %v, want ErrDriverExited", err)
	}
	if _, err := c.EmitWithAck(wait, "x"); err == nil {
		t.Fatal("EmitWithAck after exit succeeded")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("waits after exit took %v", el)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshalAny(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

// TestCleanupStopsEverything checks that after a test's cleanups ran, no
// reader goroutine of this package is left (the Node processes are reaped by
// then, since the readers end only after cmd.Wait).
func TestCleanupStopsEverything(t *testing.T) {
	readers := testkit.TrackGoroutines("nodeclient.startNode")
	t.Run("inner", func(t *testing.T) {
		base := StartEchoServer(t)
		d := Start(t)
		c := d.Connect("leak", "4", base, map[string]any{"reconnectionDelay": 100})
		if _, err := c.WaitConnect(wait); err != nil {
			t.Fatal(err)
		}
	})
	if t.Skipped() {
		return
	}
	readers.Check(t, wait)
}
