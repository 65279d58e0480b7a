package adminui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

const (
	testUser = "admin"
	testPass = "s3cret-pass"
)

// testHash is the bcrypt hash of testPass at the lowest cost, made once.
var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// fixture is a realtime server with a UI and an application on "/" that
// joins and leaves rooms and echoes on request.
type fixture struct {
	srv *realtime.Server
	ui  *UI
	ts  *httptest.Server
}

func newFixture(t *testing.T, cfg Config, opts realtime.Options) *fixture {
	t.Helper()
	if opts.Engine.PingInterval == 0 {
		opts.Engine.PingInterval = time.Minute
	}
	srv := realtime.NewServer(opts)
	ns := srv.Of("/")
	ns.OnConnection(func(s *realtime.Socket) {
		s.On("join", func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
			if r, ok := args[0].(string); ok {
				_ = s.Join(r)
			}
		})
		s.On("leave", func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
			if r, ok := args[0].(string); ok {
				s.Leave(r)
			}
		})
		s.On("ping", func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
			_ = s.Emit("pong", args...)
		})
	})
	ui := New(srv, nil)
	if cfg.Username == "" {
		cfg.Username, cfg.PasswordHash = testUser, testHash
	}
	if err := ui.Configure(&cfg); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ui.Close(); srv.Close(); ts.Close() })
	return &fixture{srv: srv, ui: ui, ts: ts}
}

func (f *fixture) dial(t *testing.T, header http.Header) *testkit.WS {
	t.Helper()
	c := testkit.DialWS(t, f.ts.URL+"/socket.io/", nil, header)
	c.Wait = 3 * time.Second
	return c
}

// event is one Socket.IO event an admin got.
type event struct {
	name string
	args []json.RawMessage
}

func (e event) arg(t *testing.T, i int, v any) {
	t.Helper()
	if i >= len(e.args) {
		t.Fatalf("%s has %d arguments, want %d", e.name, len(e.args), i+1)
	}
	if err := json.Unmarshal(e.args[i], v); err != nil {
		t.Fatalf("%s argument %d %s: %v", e.name, i, e.args[i], err)
	}
}

func (e event) str(t *testing.T, i int) string {
	t.Helper()
	var s string
	e.arg(t, i, &s)
	return s
}

// parseEvent reads a text frame "42/admin,[...]" (nsp given).
func parseEvent(frame, nsp string) (event, bool) {
	prefix := "42" + nsp + ","
	if !strings.HasPrefix(frame, prefix) {
		return event{}, false
	}
	var all []json.RawMessage
	if json.Unmarshal([]byte(frame[len(prefix):]), &all) != nil || len(all) == 0 {
		return event{}, false
	}
	var name string
	if json.Unmarshal(all[0], &name) != nil {
		return event{}, false
	}
	return event{name: name, args: all[1:]}, true
}

// next returns the next admin event named one of names, skipping others.
func next(t *testing.T, c *testkit.WS, names ...string) event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f, err := c.Recv(time.Until(deadline))
		if err != nil {
			break
		}
		if e, ok := parseEvent(f.Data, DefaultNamespace); ok && slices.Contains(names, e.name) {
			return e
		}
	}
	t.Fatalf("no %v event", names)
	return event{}
}

// connectAdmin connects an admin over c with auth and returns the CONNECT
// answer. Events of the admin namespace may come before it (the room_joined
// of the socket's own room, as from Node), which the client buffers: they
// are skipped.
func connectAdmin(t *testing.T, c *testkit.WS, auth string) string {
	t.Helper()
	c.Send("40/admin," + auth)
	for {
		if f := c.Read(); !strings.HasPrefix(f, "42/admin,") {
			return f
		}
	}
}

func loginOK(t *testing.T, f *fixture) *testkit.WS {
	t.Helper()
	c := f.dial(t, nil)
	if got := connectAdmin(t, c, `{"username":"admin","password":"s3cret-pass"}`); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("login answer %q", got)
	}
	return c
}

// TestLoginRefused: wrong, missing or ill-typed credentials get the
// CONNECT_ERROR the UI matches, and a made-up session id is no login.
func TestLoginRefused(t *testing.T) {
	for _, auth := range []string{
		`{"username":"admin","password":"wrong"}`,
		`{"username":"root","password":"s3cret-pass"}`,
		`{"username":"admin"}`,
		`{"username":"admin","password":123}`,
		`{"sessionId":"0123456789abcdef"}`,
		`{"sessionId":null}`,
		``,
	} {
		f := newFixture(t, Config{}, realtime.Options{}) // a fresh login budget each
		c := f.dial(t, nil)
		if got := connectAdmin(t, c, auth); got != `44/admin,{"message":"invalid credentials"}` {
			t.Errorf("auth %s: got %q", auth, got)
		}
	}
}

// TestLoginAndSession: a login gets its session id right after the
// CONNECT answer, then config, all_sockets and server_stats; the session
// id logs in again without the password.
func TestLoginAndSession(t *testing.T) {
	f := newFixture(t, Config{ServerID: "test-server"}, realtime.Options{})
	c := loginOK(t, f)
	e, ok := parseEvent(c.Read(), "/admin")
	if !ok || e.name != "session" {
		t.Fatalf("first event %+v, want session", e)
	}
	sid := e.str(t, 0)
	if len(sid) != 32 {
		t.Errorf("session id %q, want 32 hex characters", sid)
	}
	var cfg struct{ SupportedFeatures []string }
	next(t, c, "config").arg(t, 0, &cfg)
	want := []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}
	if !slices.Equal(cfg.SupportedFeatures, want) {
		t.Errorf("features %q, want %q", cfg.SupportedFeatures, want)
	}
	var all []map[string]any
	next(t, c, "all_sockets").arg(t, 0, &all)
	if len(all) != 1 || all[0]["nsp"] != "/admin" {
		t.Errorf("all_sockets %v, want the admin itself", all)
	}
	var stats struct {
		ServerID         string  `json:"serverId"`
		PID              int     `json:"pid"`
		Uptime           float64 `json:"uptime"`
		ClientsCount     int     `json:"clientsCount"`
		AggregatedEvents []any   `json:"aggregatedEvents"`
		Namespaces       []namespaceJSON
	}
	next(t, c, "server_stats").arg(t, 0, &stats)
	if stats.ServerID != "test-server" || stats.PID == 0 || stats.ClientsCount != 1 || stats.AggregatedEvents == nil {
		t.Errorf("server_stats %+v", stats)
	}
	if !slices.Contains(stats.Namespaces, namespaceJSON{Name: "/admin", SocketsCount: 1}) {
		t.Errorf("namespaces %+v, want /admin with 1", stats.Namespaces)
	}

	c2 := f.dial(t, nil)
	if got := connectAdmin(t, c2, `{"sessionId":"`+sid+`"}`); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("session login %q", got)
	}
	if e := next(t, c2, "session", "config"); e.name != "config" {
		t.Errorf("after a session login got %q first, want config (no new session)", e.name)
	}
}

// TestLiveView: a socket that connects, joins, sends, leaves and
// disconnects is shown to the admin as the UI expects it, in Node's order.
func TestLiveView(t *testing.T) {
	testkit.WaitsOnClock(t)
	t.Parallel()
	f := newFixture(t, Config{}, realtime.Options{})
	admin := loginOK(t, f)
	next(t, admin, "server_stats")

	user := f.dial(t, http.Header{"Authorization": {"Bearer secret-token"}, "X-Hello": {"a", "b"}})
	id := user.ConnectSocket("")
	names := []string{"socket_connected", "room_joined", "room_left", "socket_disconnected", "event_received", "event_sent"}
	e := next(t, admin, names...)
	if e.name != "room_joined" || e.str(t, 1) != id || e.str(t, 2) != id {
		t.Fatalf("first %s %s, want room_joined of its own room", e.name, e.args)
	}
	e = next(t, admin, names...)
	if e.name != "socket_connected" {
		t.Fatalf("got %s, want socket_connected", e.name)
	}
	var sock socketJSON
	e.arg(t, 0, &sock)
	if sock.ID != id || sock.Nsp != "/" || sock.Transport != "websocket" || len(sock.ClientID) != 12 ||
		!slices.Equal(sock.Rooms, []string{id}) || sock.Handshake.Issued == 0 {
		t.Errorf("socket %+v", sock)
	}
	if sock.Handshake.Headers["authorization"] != redacted || sock.Handshake.Headers["x-hello"] != "a, b" {
		t.Errorf("headers %v: authorization must be redacted, x-hello joined", sock.Handshake.Headers)
	}
	if sock.Handshake.Query["transport"] != "websocket" || sock.Handshake.Address != "127.0.0.1" {
		t.Errorf("query %v, address %q", sock.Handshake.Query, sock.Handshake.Address)
	}
	if ts := e.str(t, 1); !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q, want an ISO date", ts)
	}

	user.Send(`42["join","room-1"]`)
	e = next(t, admin, names...)
	if e.name != "event_received" {
		t.Fatalf("got %s, want event_received", e.name)
	}
	var data []any
	e.arg(t, 2, &data)
	if e.str(t, 0) != "/" || e.str(t, 1) != id || !slices.Equal(data, []any{"join", "room-1"}) {
		t.Errorf("event_received %s", e.args)
	}
	if e = next(t, admin, names...); e.name != "room_joined" || e.str(t, 1) != "room-1" || e.str(t, 2) != id {
		t.Errorf("got %s %s, want room_joined room-1", e.name, e.args)
	}
	user.Send(`42["ping",1]`)
	user.Expect(`42["pong",1]`)
	next(t, admin, "event_received")
	if e = next(t, admin, names...); e.name != "event_sent" {
		t.Errorf("got %s, want event_sent", e.name)
	} else if e.arg(t, 2, &data); !slices.Equal(data, []any{"pong", float64(1)}) {
		t.Errorf("event_sent %s", e.args)
	}
	user.Send(`42["leave","room-1"]`)
	next(t, admin, "event_received")
	if e = next(t, admin, names...); e.name != "room_left" || e.str(t, 1) != "room-1" {
		t.Errorf("got %s %s, want room_left room-1", e.name, e.args)
	}
	user.Send(`41`)
	if e = next(t, admin, names...); e.name != "socket_disconnected" || e.str(t, 1) != id || e.str(t, 2) != "client namespace disconnect" {
		t.Errorf("got %s %s, want socket_disconnected", e.name, e.args)
	}
	if e = next(t, admin, names...); e.name != "room_left" || e.str(t, 1) != id {
		t.Errorf("got %s %s, want room_left of its own room", e.name, e.args)
	}

	// The admin's own events are not shown to it.
	admin.Send(`42/admin,["hello"]`)
	user.Send(`40`)
	if e = next(t, admin, names...); e.name != "room_joined" {
		t.Errorf("after its own event got %s %s, want the next socket's room_joined", e.name, e.args)
	}

	// The stats count the connections and traffic since the admin came.
	var stats struct {
		AggregatedEvents []eventCount `json:"aggregatedEvents"`
	}
	next(t, admin, "server_stats").arg(t, 0, &stats)
	counts := map[string]int64{}
	for _, ev := range stats.AggregatedEvents {
		counts[ev.Type] += ev.Count
		if ev.Timestamp%1000 != 0 {
			t.Errorf("timestamp %d not floored to the second", ev.Timestamp)
		}
	}
	if counts["rawConnection"] != 1 || counts["packetsIn"] < 5 || counts["bytesOut"] == 0 {
		t.Errorf("aggregated %v", counts)
	}
}

// TestActions: join, leave, emit and _disconnect act on the sockets a
// filter selects; read-only refuses them and nothing changes.
func TestActions(t *testing.T) {
	t.Parallel()
	for _, readonly := range []bool{false, true} {
		t.Run(map[bool]string{false: "actions", true: "readonly"}[readonly], func(t *testing.T) {
			f := newFixture(t, Config{ReadOnly: readonly}, realtime.Options{})
			admin := loginOK(t, f)
			var cfg struct{ SupportedFeatures []string }
			next(t, admin, "config").arg(t, 0, &cfg)
			if got := slices.Contains(cfg.SupportedFeatures, "DISCONNECT"); got == readonly {
				t.Errorf("features %q (readonly %v)", cfg.SupportedFeatures, readonly)
			}
			user := f.dial(t, nil)
			id := user.ConnectSocket("")
			ns, _ := f.srv.Namespace("/")
			want := `[{"ok":true}]`
			if readonly {
				want = `[{"error":"read-only","ok":false}]`
			}
			ack := func(n int, payload string) {
				t.Helper()
				admin.Send("42/admin," + payload)
				wantFrame := "43/admin," + strconv.Itoa(n) + want
				for {
					if f := admin.Read(); strings.HasPrefix(f, "43/admin,") {
						if f != wantFrame {
							t.Fatalf("ack %q, want %q", f, wantFrame)
						}
						return
					}
				}
			}
			ack(1, `1["join","/","vip","`+id+`"]`)
			if in := slices.Contains(ns.Adapter().SocketRooms(id), "vip"); in == readonly {
				t.Errorf("after join: in vip %v (readonly %v)", in, readonly)
			}
			ack(2, `2["emit","/","vip","news","x"]`)
			if !readonly {
				user.Expect(`42["news","x"]`)
			}
			ack(3, `3["leave","/","vip"]`)
			if in := slices.Contains(ns.Adapter().SocketRooms(id), "vip"); in {
				t.Errorf("after leave: still in vip")
			}
			ack(4, `4["_disconnect","/",false,"`+id+`"]`)
			if readonly {
				user.Quiet(200 * time.Millisecond)
				if ns.Len() != 1 {
					t.Errorf("readonly disconnected the socket")
				}
				return
			}
			user.Expect("41")
		})
	}
}
