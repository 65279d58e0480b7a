//go:build live

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// eio3Config is a site with allow_eio3: rooms from the query, a relayed
// event, room requests with acks, a welcome naming the socket id, and a
// second namespace.
func eio3Config(sc siteConfig, extra string) string {
	return fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	socketio {
		allow_eio3
		namespaces / /chat
		join room-{socketio.query.room}
		relay chat
		room_requests join_room leave_room
		allow_rooms extra-*
		emit welcome "id {socketio.id}"
		%s
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, extra)
}

// TestEIO3Live: the real socket.io-client 2.5 (npm) against a real Caddy
// with allow_eio3, over polling (binary polling and forceBase64),
// WebSocket only and the upgrade: connect (the id is the engine's, the
// welcome names it), rooms with a 4.8 client in the same room both ways,
// acks, binary, a second namespace; and without allow_eio3 the same
// client is refused by the server while 4.8 connects.
func TestEIO3Live(t *testing.T) {
	t.Parallel()
	testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	// Default heartbeats: the direction is TestEIO3HeartbeatLive's; here a
	// 300 KB binary under -race on a busy machine must not race a 600 ms
	// heartbeat window.
	c := startCaddyConfig(t, sc, eio3Config(sc, ""))
	drv := nodeclient.Start(t)
	if v := drv.Versions()["2"]; v != "2.5.0" {
		testkit.SkipOrFail(t, "socket.io-client 2.5.0 not installed (got %q): cd testdata && npm ci", v)
	}

	modes := []struct {
		name string
		opts map[string]any
	}{
		{"polling", map[string]any{"transports": []string{"polling"}}},
		{"polling-b64", map[string]any{"transports": []string{"polling"}, "forceBase64": true}},
		{"websocket", map[string]any{"transports": []string{"websocket"}}},
		{"websocket-b64", map[string]any{"transports": []string{"websocket"}, "forceBase64": true}},
		{"upgrade", map[string]any{}},
	}
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			room := fmt.Sprintf("%d", 100+i)
			opts := func(extra map[string]any) map[string]any {
				o := map[string]any{"reconnection": false, "query": map[string]any{"room": room}}
				for k, v := range m.opts {
					o[k] = v
				}
				for k, v := range extra {
					o[k] = v
				}
				return o
			}
			v2 := drv.Connect("v2-"+m.name, "2", c.BaseURL, opts(nil))
			t.Cleanup(v2.Disconnect)
			ev, err := v2.WaitConnectEvent(clientWait)
			if err != nil {
				t.Fatalf("v2 connect: %v\n%s", err, c.Log)
			}
			args, err := v2.WaitEvent("welcome", clientWait)
			if err != nil || len(args) != 1 || args[0] != "id "+ev.Sid {
				t.Fatalf("welcome %v (%v), want the id %q", args, err, ev.Sid)
			}
			if m.name == "upgrade" {
				if err := v2.WaitUpgrade(clientWait); err != nil {
					t.Fatalf("no upgrade: %v", err)
				}
			}
			v4 := drv.Connect("v4-"+m.name, "4", c.BaseURL, opts(map[string]any{"transports": []string{"websocket"}, "forceBase64": false}))
			t.Cleanup(v4.Disconnect)
			if _, err := v4.WaitConnect(clientWait); err != nil {
				t.Fatal(err)
			}
			v4.WaitEvent("welcome", clientWait)

			// Rooms and relay, text and binary, both ways.
			v2.Emit("chat", "from v2", []byte{1, 2, 3})
			args, err = v4.WaitEvent("chat", clientWait)
			if err != nil || len(args) != 2 || args[0] != "from v2" || !bytes.Equal(asBytes(args[1]), []byte{1, 2, 3}) {
				t.Fatalf("v4 got %v (%v)", args, err)
			}
			v4.Emit("chat", "from v4", []byte{4, 5})
			args, err = v2.WaitEvent("chat", clientWait)
			if err != nil || len(args) != 2 || args[0] != "from v4" || !bytes.Equal(asBytes(args[1]), []byte{4, 5}) {
				t.Fatalf("v2 got %v (%v)", args, err)
			}
			// Acks: a room request answered, then a relayed message in it.
			reply, err := v2.EmitWithAck(clientWait, "join_room", "extra-"+room)
			if err != nil || len(reply) != 1 {
				t.Fatalf("join ack %v (%v)", reply, err)
			}
			if r, _ := reply[0].(map[string]any); r["ok"] != true || r["room"] != "extra-"+room {
				t.Fatalf("join ack %v", reply)
			}
			if _, err := v2.EmitWithAck(clientWait, "chat", "acked"); err != nil {
				t.Fatalf("relay ack: %v", err)
			}
			if args, err := v4.WaitEvent("chat", clientWait); err != nil || args[0] != "acked" {
				t.Fatalf("v4 got %v (%v)", args, err)
			}
			// A large binary, over any threshold and across polling
			// responses.
			big := bytes.Repeat([]byte{0xfe, 0x00, 0x41}, 100_000)
			v4.Emit("chat", "big", big)
			args, err = v2.WaitEvent("chat", clientWait)
			if err != nil || len(args) != 2 || !bytes.Equal(asBytes(args[1]), big) {
				t.Fatalf("v2 big binary: %d args (%v)", len(args), err)
			}

			// A second namespace: the 2.x id is "/chat#<engine id>".
			chat := drv.Connect("v2-chat-"+m.name, "2", c.BaseURL+"/chat", opts(nil))
			t.Cleanup(chat.Disconnect)
			ev, err = chat.WaitConnectEvent(clientWait)
			if err != nil {
				t.Fatalf("/chat: %v", err)
			}
			if !strings.HasPrefix(ev.Sid, "/chat#") || len(ev.Sid) != len("/chat#")+20 {
				t.Errorf("/chat id %q", ev.Sid)
			}
			if args, err := chat.WaitEvent("welcome", clientWait); err != nil || args[0] != "id "+ev.Sid {
				t.Errorf("/chat welcome %v (%v), want the id %q", args, err, ev.Sid)
			}
			// Namespaces do not mix: v4 on / does not hear /chat.
			chat.Emit("chat", "only /chat")
			v2.Emit("chat", "on /")
			if args, err := v4.WaitEvent("chat", clientWait); err != nil || args[0] != "on /" {
				t.Errorf("v4 got %v (%v), want the / message first", args, err)
			}
			v2.Disconnect()
			if reason, err := v2.WaitDisconnect(clientWait); err != nil || reason != "io client disconnect" {
				t.Errorf("v2 disconnect: %q (%v)", reason, err)
			}
		})
	}
}

// Heartbeat direction, live: 2.x clients on each transport stay connected
// over many intervals of 300 ms + 1 s (a server that waited for pongs
// instead of answering the 2.x client's pings would drop them within
// 1.3 s), and still relay afterwards. The 1 s leaves room for a busy CI
// machine, where a 300 ms pong window was tight.
func TestEIO3HeartbeatLive(t *testing.T) {
	t.Parallel()
	testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c := startCaddyConfig(t, sc, eio3Config(sc, "ping_interval 300ms\n\t\tping_timeout 1s"))
	drv := nodeclient.Start(t)
	if v := drv.Versions()["2"]; v != "2.5.0" {
		testkit.SkipOrFail(t, "socket.io-client 2.5.0 not installed (got %q): cd testdata && npm ci", v)
	}
	var clients []*nodeclient.Client
	for _, tr := range []string{"polling", "websocket"} {
		cl := drv.Connect("hb-"+tr, "2", c.BaseURL, map[string]any{"reconnection": false,
			"transports": []string{tr}, "query": map[string]any{"room": "hb"}})
		t.Cleanup(cl.Disconnect)
		if _, err := cl.WaitConnect(clientWait); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	time.Sleep(3 * time.Second) // waits out two heartbeat timeouts on purpose
	for _, cl := range clients {
		for _, e := range cl.Events() {
			if e.Type == "disconnect" {
				t.Fatalf("%s disconnected: %v\n%s", cl.ID(), e, c.Log)
			}
		}
	}
	clients[0].Emit("chat", "still here")
	if args, err := clients[1].WaitEvent("chat", clientWait); err != nil || args[0] != "still here" {
		t.Errorf("relay after the heartbeats: %v (%v)", args, err)
	}
}

// TestEIO3OffLive: without allow_eio3 (the default) the 2.5 client gets
// Node's 400 with code 5 and never connects; 4.8 is unaffected. The
// Caddyfile.example site serves as the config without the option.
func TestEIO3OffLive(t *testing.T) {
	t.Parallel()
	testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c := startCaddy(t, sc)
	for _, q := range []string{"EIO=3&transport=polling", "transport=polling", "EIO=3&transport=polling&j=0"} {
		code, body := rawGet(t, c.BaseURL, "/socket.io/?"+q, nil)
		if code != http.StatusBadRequest || body != `{"code":5,"message":"Unsupported protocol version"}` {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
	drv := nodeclient.Start(t)
	v2 := drv.Connect("v2-off", "2", c.BaseURL, map[string]any{"reconnection": false, "transports": []string{"polling"}})
	t.Cleanup(v2.Disconnect)
	if _, err := v2.Wait(3*time.Second, "connect_error", func(e nodeclient.Event) bool { return e.Type == "connect_error" }); err != nil {
		t.Errorf("v2 against allow_eio3 off: %v (events %v)", err, v2.Events())
	}
	if evs := v2.EventsNamed("welcome"); len(evs) != 0 {
		t.Errorf("v2 got a welcome with allow_eio3 off")
	}
}

// TestEIO3JSONPBrowser: socket.io-client 2.x with forceJSONP in a real
// headless Chromium (script tags and hidden forms: only a browser does
// JSONP) against a real Caddy with allow_eio3. From a page of the site's
// origin two clients connect, get their welcome, relay a message with
// quotes, U+2028 and </script> in it, and get a room request's ack; from a
// page of another origin (the same server under "localhost") the JSONP
// handshake is refused, so that page reads nothing.
func TestEIO3JSONPBrowser(t *testing.T) {
	t.Parallel()
	root, node := needBrowser(t, "playwright-core/package.json", "socket.io-client-v2/dist/socket.io.js")
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	cfg := eio3Config(sc, "")
	cfg = strings.Replace(cfg, "\troot * testdata/www\n", "\troot * testdata/www\n\thandle_path /v2/* {\n\t\troot * testdata/node_modules/socket.io-client-v2/dist\n\t\tfile_server\n\t}\n", 1)
	c := startCaddyConfig(t, sc, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	other := fmt.Sprintf("http://localhost:%d", sc.Port)
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "eio3-jsonp.cjs"), c.BaseURL, other)
	cmd.Dir = filepath.Join(root, "testdata")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "CHROMIUM_PATH="+chromiumPath)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("eio3-jsonp.cjs stderr:\n%s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		Same  struct {
			Transports []string       `json:"transports"`
			Welcome    []string       `json:"welcome"`
			Relayed    []string       `json:"relayed"`
			Ack        map[string]any `json:"ack"`
			Errors     []string       `json:"errors"`
			Timeout    bool           `json:"timeout"`
		} `json:"same"`
		Other struct {
			Transports []string `json:"transports"`
			Welcome    []string `json:"welcome"`
			Errors     []string `json:"errors"`
			Timeout    bool     `json:"timeout"`
		} `json:"other"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK || runErr != nil {
		t.Fatalf("eio3-jsonp.cjs: %v %v %s\n%s\ncaddy log:\n%s", runErr, err, res.Error, stdout.String(), c.Log)
	}
	s := res.Same
	if s.Timeout || len(s.Transports) == 0 || s.Transports[0] != "jsonp" || len(s.Welcome) != 2 ||
		!strings.HasPrefix(s.Welcome[0], "id ") {
		t.Errorf("same origin: %+v", s)
	}
	if want := "hi \"\u2028</script> from a"; len(s.Relayed) != 1 || s.Relayed[0] != want {
		t.Errorf("relayed %q, want %q", s.Relayed, want)
	}
	if s.Ack["ok"] != true || s.Ack["room"] != "extra-j" {
		t.Errorf("room request ack %v", s.Ack)
	}
	o := res.Other
	if len(o.Transports) != 0 || len(o.Welcome) != 0 || len(o.Errors) == 0 {
		t.Errorf("other origin connected over JSONP: %+v", o)
	}
}
