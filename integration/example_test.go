//go:build live

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// The acceptance tests of issue 3: a real Caddy process built from
// ./cmd/caddy, configured from Caddyfile.example, driven by the official
// socket.io-client 4.8 and 3.1.

// clientVersions are the socket.io-client versions every scenario runs with.
var clientVersions = []string{"4", "3"}

// live is one running Caddy with a client driver and the way this config
// wants its tokens minted.
type live struct {
	caddy  *caddyProc
	driver *nodeclient.Driver
	secret string
	aud    string // audience claim added to valid tokens, if any
	prefix string // makes client ids unique within the driver

	mu     sync.Mutex
	minted []string // every valid token handed out, to check the log
}

// token mints a valid token for sub under the current config.
func (l *live) token(t testing.TB, sub string) string {
	claims := jwt.MapClaims{"sub": sub}
	if l.aud != "" {
		claims["aud"] = l.aud
	}
	tok := testkit.HS256(t, l.secret, claims)
	l.mu.Lock()
	l.minted = append(l.minted, tok)
	l.mu.Unlock()
	return tok
}

// connect creates a client that joins room (query roomNumber) with token;
// an empty token sends no auth payload. Reconnection is off so that a
// refused or closed client stays quiet; transports limits the transports.
func (l *live) connect(t testing.TB, name, version, token, room string, transports ...string) *nodeclient.Client {
	t.Helper()
	opts := map[string]any{
		"reconnection": false,
		"query":        map[string]any{"roomNumber": room},
	}
	if token != "" {
		opts["auth"] = map[string]any{"token": token}
	}
	if len(transports) > 0 {
		opts["transports"] = transports
	}
	c := l.driver.Connect(fmt.Sprintf("%s/v%s/%s", l.prefix, version, name), version, l.caddy.BaseURL, opts)
	t.Cleanup(c.Disconnect)
	return c
}

// join connects a client and waits for what a valid join brings: the
// connect, the room announcement and the welcome message, in that order.
func (l *live) join(t testing.TB, name, version, sub, room string, transports ...string) (*nodeclient.Client, nodeclient.Event) {
	t.Helper()
	c := l.connect(t, name, version, l.token(t, sub), room, transports...)
	ev, err := c.WaitConnectEvent(clientWait)
	if err != nil {
		t.Fatalf("%s: %v\ncaddy log:\n%s", name, err, l.caddy.Log)
	}
	expectAnnouncement(t, c, room)
	args, err := c.WaitEvent("message_from_server", clientWait)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	text, _ := firstArg(args).(string)
	if !strings.HasPrefix(text, "Message: ") {
		t.Fatalf("%s: message_from_server = %v, want a text starting with %q", name, args, "Message: ")
	}
	// The example's template names the user and the socket id.
	if want := fmt.Sprintf("Message: welcome %s, your socket id is %s", sub, ev.Sid); text != want {
		t.Errorf("%s: message_from_server = %q, want %q", name, text, want)
	}
	return c, ev
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// expectAnnouncement waits for the room announcement of Caddyfile.example.
func expectAnnouncement(t testing.TB, c *nodeclient.Client, room string) {
	t.Helper()
	args, err := c.WaitEvent("room-userId", clientWait)
	if err != nil {
		t.Fatal(err)
	}
	if want := "You are in room number: " + room; len(args) != 1 || args[0] != want {
		t.Fatalf("client %s: room-userId = %v, want [%q]", c.ID(), args, want)
	}
}

// relay sends text as message_from_client from one client and waits until
// the other one has it.
func relay(t testing.TB, from, to *nodeclient.Client, text string) {
	t.Helper()
	from.Emit("message_from_client", text)
	args, err := to.WaitEvent("message_from_client", clientWait)
	if err != nil {
		t.Fatalf("relay %s -> %s: %v", from.ID(), to.ID(), err)
	}
	if len(args) != 1 || args[0] != text {
		t.Fatalf("relay %s -> %s: got %v, want [%q]", from.ID(), to.ID(), args, text)
	}
}

// relayed lists the message_from_client texts a client received so far.
func relayed(c *nodeclient.Client) []string {
	var out []string
	for _, args := range c.EventsNamed("message_from_client") {
		s, _ := firstArg(args).(string)
		out = append(out, s)
	}
	return out
}

func expectRelayed(t testing.TB, c *nodeclient.Client, want ...string) {
	t.Helper()
	if got := relayed(c); !slices.Equal(got, want) {
		t.Errorf("client %s received message_from_client %q, want %q", c.ID(), got, want)
	}
}

func expectAnnouncements(t testing.TB, c *nodeclient.Client, room string, n int) {
	t.Helper()
	got := c.EventsNamed("room-userId")
	if len(got) != n {
		t.Errorf("client %s received %d room announcements %v, want %d", c.ID(), len(got), got, n)
	}
	for _, args := range got {
		if want := "You are in room number: " + room; firstArg(args) != want {
			t.Errorf("client %s: announcement %v, want %q", c.ID(), args, want)
		}
	}
}

// expectNoDisconnect checks that a client saw no disconnect so far.
func expectNoDisconnect(t testing.TB, c *nodeclient.Client) {
	t.Helper()
	for _, ev := range c.Events() {
		if ev.Type == "disconnect" {
			t.Errorf("client %s disconnected: %s", c.ID(), ev.Reason)
		}
	}
}

// TestCaddyExample runs Caddyfile.example's behaviour on a real Caddy, with
// the access log off (the example as it is) and on (with an audience check
// added, so that the wrong-audience refusal has something to refuse).
func TestCaddyExample(t *testing.T) {
	variants := []struct {
		name      string
		accessLog bool
		audience  string
	}{
		{name: "example"},
		{name: "access_log+audience", accessLog: true, audience: "caddy-socketio-itest"},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			nodeclient.Locate(t) // skip before building Caddy
			// Caddy first: cleanups run in reverse, so the clients are gone
			// before Caddy is stopped.
			c := startCaddy(t, siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t), AccessLog: v.accessLog, Audience: v.audience})
			d := nodeclient.Start(t)
			l := &live{caddy: c, driver: d, secret: testSecretEnv, aud: v.audience, prefix: v.name}
			for _, ver := range clientVersions {
				t.Run("v"+ver, func(t *testing.T) {
					t.Run("join", func(t *testing.T) { testJoin(t, l, ver) })
					t.Run("rooms", func(t *testing.T) { testRooms(t, l, ver) })
					t.Run("refusals", func(t *testing.T) { testRefusals(t, l, ver) })
					t.Run("transports", func(t *testing.T) { testTransports(t, l, ver) })
				})
			}
			checkLog(t, l, v.accessLog)
		})
	}
}

// testJoin: a valid token joins room N, gets the announcement and the
// welcome message, and the default client upgrades to WebSocket through
// Caddy (hijacking works with the access log on and off).
func testJoin(t *testing.T, l *live, ver string) {
	c, _ := l.join(t, "join", ver, "alice", "3")
	if err := c.WaitUpgrade(clientWait); err != nil {
		t.Fatalf("no upgrade to websocket: %v", err)
	}
	// The upgraded socket still hears its room: a peer's announcement.
	l.join(t, "join-peer", ver, "bob", "3", "websocket")
	expectAnnouncement(t, c, "3")
}

// testRooms: two clients in room 7 hear each other's announcement and
// relayed messages; room 8 hears nothing of room 7 and the other way round.
func testRooms(t *testing.T, l *live, ver string) {
	a, _ := l.join(t, "a7", ver, "alice", "7")
	b, _ := l.join(t, "b7", ver, "bob", "7")
	expectAnnouncement(t, a, "7") // b's join, heard by a
	c, _ := l.join(t, "c8", ver, "carol", "8")
	d, _ := l.join(t, "d8", ver, "dave", "8")
	expectAnnouncement(t, c, "8")

	// Each room's traffic is fenced by the other's: a message a socket
	// gets after the other room's last one would queue behind it, so the
	// exact lists below also prove that nothing crossed rooms.
	relay(t, c, d, "hello from c")
	relay(t, d, c, "hello from d")
	relay(t, a, b, "hello from a")
	relay(t, b, a, "hello from b")
	relay(t, c, d, "last from c")
	relay(t, d, c, "last from d")

	expectRelayed(t, a, "hello from b") // the sender never gets its own
	expectRelayed(t, b, "hello from a")
	expectRelayed(t, c, "hello from d", "last from d")
	expectRelayed(t, d, "hello from c", "last from c")
	expectAnnouncements(t, a, "7", 2)
	expectAnnouncements(t, b, "7", 1)
	expectAnnouncements(t, c, "8", 2)
	expectAnnouncements(t, d, "8", 1)
}

// testRefusals: bad tokens get a clear connect_error and nothing else, and
// join no room.
func testRefusals(t *testing.T, l *live, ver string) {
	const room = "5"
	member, _ := l.join(t, "member", ver, "mia", room)

	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "mallory"}
		if l.aud != "" {
			c["aud"] = l.aud
		}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name  string
		token string
		want  []string // all must appear in the connect_error message
	}{
		{"bad signature", testkit.HS256(t, "some-other-secret-0123456789abcdef", claims(nil)), []string{"invalid token", "signature"}},
		{"expired", testkit.HS256(t, l.secret, claims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})), []string{"invalid token", "expired"}},
		{"alg none", testkit.Unsigned(t, claims(nil)), []string{"invalid token"}},
		{"missing token", "", []string{"missing token"}},
	}
	if l.aud != "" {
		cases = append(cases, struct {
			name  string
			token string
			want  []string
		}{"wrong audience", testkit.HS256(t, l.secret, claims(jwt.MapClaims{"aud": "someone-else"})), []string{"invalid token", "audience"}})
	}
	var refused []*nodeclient.Client
	for _, tc := range cases {
		c := l.connect(t, "refused-"+strings.ReplaceAll(tc.name, " ", "-"), ver, tc.token, room)
		refused = append(refused, c)
		_, err := c.WaitConnect(clientWait)
		var ce *nodeclient.ConnectError
		if !errors.As(err, &ce) {
			t.Errorf("%s: WaitConnect = %v, want a connect_error", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(ce.Message, w) {
				t.Errorf("%s: connect_error %q does not say %q", tc.name, ce.Message, w)
			}
		}
	}
	// A valid late joiner is the next thing the member hears: had a refused
	// socket joined the room, its announcement would have come first.
	l.join(t, "late", ver, "luke", room)
	expectAnnouncement(t, member, room)
	expectAnnouncements(t, member, room, 2)
	for _, c := range refused {
		for _, ev := range c.Events() {
			// The Engine.IO connection stays open after a refusal (as in
			// Node) and may upgrade; no socket event may come through it.
			if ev.Type == "event" || ev.Type == "connect" {
				t.Errorf("refused client %s got %s %s%v", c.ID(), ev.Type, ev.Name, ev.Args)
			}
		}
	}
}

// testTransports: a polling-only and a WebSocket-only client work and talk
// to each other.
func testTransports(t *testing.T, l *live, ver string) {
	p, pev := l.join(t, "polling", ver, "paula", "9", "polling")
	w, wev := l.join(t, "websocket", ver, "walt", "9", "websocket")
	if pev.Transport != "polling" || wev.Transport != "websocket" {
		t.Errorf("transports: polling client on %q, websocket client on %q", pev.Transport, wev.Transport)
	}
	expectAnnouncement(t, p, "9")
	relay(t, p, w, "over polling")
	relay(t, w, p, "over websocket")
	relay(t, p, w, "over polling again")
	for _, ev := range p.Events() {
		if ev.Type == "upgrade" {
			t.Errorf("polling-only client upgraded to %s", ev.Transport)
		}
	}
}

// checkLog looks at what Caddy logged during the scenarios: the events
// named by log_events, the access log when it is on, and never a token.
func checkLog(t *testing.T, l *live, accessLog bool) {
	t.Helper()
	if t.Failed() || t.Skipped() {
		return
	}
	logText := l.caddy.Log.String()
	var sawEvent, sawAccess bool
	for line := range strings.SplitSeq(logText, "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		if entry["msg"] == "client event" && entry["event"] == "message_from_client" {
			sawEvent = true
		}
		if logger, _ := entry["logger"].(string); strings.HasPrefix(logger, "http.log.access") {
			req, _ := entry["request"].(map[string]any)
			if uri, _ := req["uri"].(string); strings.HasPrefix(uri, "/socket.io/") {
				sawAccess = true
			}
		}
	}
	if !sawEvent {
		t.Errorf("caddy did not log message_from_client (log_events):\n%s", logText)
	}
	if sawAccess != accessLog {
		t.Errorf("access log lines for /socket.io/: %v, want %v", sawAccess, accessLog)
	}
	l.mu.Lock()
	minted := slices.Clone(l.minted)
	l.mu.Unlock()
	for _, tok := range minted {
		if strings.Contains(logText, tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Errorf("caddy logged (part of) a token")
		}
	}
	if testkit.HasJWT(logText) {
		t.Errorf("caddy logged something that looks like a JWT:\n%s", logText)
	}
}

// TestCaddyReload: connected sockets survive `caddy reload` with the same
// config; a rotated secret disconnects the sockets it no longer verifies,
// and new handshakes need the new secret.
func TestCaddyReload(t *testing.T) {
	t.Parallel()
	nodeclient.Locate(t) // skip before building Caddy
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c := startCaddy(t, sc)
	d := nodeclient.Start(t)
	l := &live{caddy: c, driver: d, secret: testSecretEnv, prefix: "reload"}

	type pair struct{ ws, poll *nodeclient.Client }
	old := map[string]pair{}
	for _, ver := range clientVersions {
		ws, _ := l.join(t, "ws", ver, "wanda", "7", "websocket")
		poll, _ := l.join(t, "poll", ver, "pete", "7", "polling")
		old[ver] = pair{ws, poll}
	}
	everyone := func() []*nodeclient.Client {
		var out []*nodeclient.Client
		for _, ver := range clientVersions {
			out = append(out, old[ver].ws, old[ver].poll)
		}
		return out
	}
	// Drain the announcements of the later joins, so that the checks below
	// count only what comes after the reloads.
	all := everyone()
	for i, cl := range all {
		for range len(all) - 1 - i {
			expectAnnouncement(t, cl, "7")
		}
	}
	// roundTrip sends one message from each old socket and checks every
	// other old socket gets it.
	roundTrip := func(t *testing.T, label string) {
		t.Helper()
		all := everyone()
		for _, from := range all {
			text := fmt.Sprintf("%s from %s", label, from.ID())
			from.Emit("message_from_client", text)
			for _, to := range all {
				if to != from {
					waitText(t, to, text)
				}
			}
		}
		for _, cl := range all {
			expectNoDisconnect(t, cl)
		}
	}
	roundTrip(t, "before reload")

	t.Run("same config", func(t *testing.T) {
		c.Reload(sc, true)
		roundTrip(t, "after same-config reload")
	})

	t.Run("rotated secret", func(t *testing.T) {
		rotated := sc
		rotated.Secret = "rotated-secret-0123456789abcdef-0123456789"
		c.Reload(rotated, false)
		oldSecret := l.secret
		l.secret = rotated.Secret
		// Rotating a leaked key revokes it: every socket whose token the
		// old secret signed (none of them expires) is disconnected by the
		// server, over either transport, and told so the Socket.IO way.
		for _, cl := range everyone() {
			reason, err := cl.WaitDisconnect(clientWait)
			if err != nil || reason != "io server disconnect" {
				t.Fatalf("client %s after the rotation: disconnect %q, %v; want io server disconnect\ncaddy log:\n%s", cl.ID(), reason, err, c.Log)
			}
		}
		if n := strings.Count(c.Log.String(), "no longer authorized by the new config"); n != len(everyone()) {
			t.Errorf("caddy logged %d revocations, want %d:\n%s", n, len(everyone()), c.Log)
		}
		for _, ver := range clientVersions {
			t.Run("v"+ver, func(t *testing.T) {
				stale := l.connect(t, "stale", ver, testkit.HS256(t, oldSecret, jwt.MapClaims{"sub": "sam"}), "7")
				var ce *nodeclient.ConnectError
				if _, err := stale.WaitConnect(clientWait); !errors.As(err, &ce) || !strings.Contains(ce.Message, "invalid token") {
					t.Fatalf("token signed with the old secret: WaitConnect = %v, want connect_error invalid token", err)
				}
				// New sockets under the new secret share the room, both ways.
				fresh, _ := l.join(t, "fresh", ver, "fiona", "7", "websocket")
				other, _ := l.join(t, "other", ver, "oscar", "7", "polling")
				expectAnnouncement(t, fresh, "7")
				text := "from fresh v" + ver
				fresh.Emit("message_from_client", text)
				waitText(t, other, text)
				back := "to fresh v" + ver
				other.Emit("message_from_client", back)
				waitText(t, fresh, back)
				expectNoDisconnect(t, fresh)
				expectNoDisconnect(t, other)
				fresh.Disconnect()
				other.Disconnect()
			})
		}
		if testkit.HasJWT(c.Log.String()) {
			t.Errorf("caddy logged something that looks like a JWT:\n%s", c.Log)
		}
	})
}

// waitText waits for the message_from_client carrying text, leaving other
// messages for later waits.
func waitText(t testing.TB, c *nodeclient.Client, text string) {
	t.Helper()
	_, err := c.Wait(clientWait, fmt.Sprintf("message_from_client %q", text), func(e nodeclient.Event) bool {
		return e.Type == "event" && e.Name == "message_from_client" && len(e.Args) == 1 && e.Args[0] == text
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stopBound is how long `caddy stop` may take with sockets open: closing
// them is immediate, so anything near the ping interval (25 s) means they
// were left to time out.
const stopBound = 5 * time.Second

// TestCaddyStop: stopping Caddy closes every socket with an Engine.IO close
// packet and exits promptly, with WebSocket clients and with polling
// clients (whose long-poll GET is pending when the stop comes). Each case
// has its own Caddy.
func TestCaddyStop(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			nodeclient.Locate(t) // skip before building Caddy
			sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
			c := startCaddy(t, sc)
			d := nodeclient.Start(t)
			l := &live{caddy: c, driver: d, secret: testSecretEnv, prefix: "stop-" + transport}
			testStop(t, l, transport)
		})
	}
}

func testStop(t *testing.T, l *live, transport string) {
	var clients []*nodeclient.Client
	for _, ver := range clientVersions {
		cl, _ := l.join(t, transport, ver, "stella", "4", transport)
		clients = append(clients, cl)
	}
	// A raw Engine.IO peer, to see the close packet itself.
	var closePacket func(t *testing.T)
	if transport == "websocket" {
		raw := dialRawWS(t, l, "4")
		closePacket = func(t *testing.T) {
			var frames []string
			deadline := time.Now().Add(clientWait)
			for {
				f, err := raw.Recv(time.Until(deadline))
				if err != nil {
					t.Fatalf("websocket ended (%v) without the Engine.IO close packet; frames after stop: %q", err, frames)
				}
				frames = append(frames, f.Data)
				if f.Data == "1" {
					return
				}
			}
		}
	} else {
		raw := openRawPolling(t, l, "4")
		// The stop must find the long-poll GET pending: it is on the wire
		// once sent is closed (Caddy, another process, tells nothing more).
		sent, pending := raw.Pending()
		select {
		case <-sent:
		case <-time.After(clientWait):
			t.Fatal("long-poll GET not sent")
		}
		closePacket = func(t *testing.T) {
			var res testkit.PollResult
			select {
			case res = <-pending:
			case <-time.After(clientWait):
				t.Fatal("pending long-poll GET not answered after stop")
			}
			if res.Err != nil {
				t.Fatalf("pending long-poll GET got no close packet: %v", res.Err)
			}
			if res.Status != http.StatusOK || !slices.Contains(strings.Split(res.Body, "\x1e"), "1") {
				t.Fatalf("pending long-poll GET: %d %q, want 200 with the close packet 1", res.Status, res.Body)
			}
		}
	}

	exit := l.caddy.Stop()
	t.Logf("caddy exited %v after `caddy stop` started", exit.Round(time.Millisecond))
	if exit > stopBound {
		t.Errorf("caddy took %v to exit after `caddy stop`, want under %v (sockets must be closed at once, not when their next ping is due)",
			exit.Round(time.Millisecond), stopBound)
	}
	for _, cl := range clients {
		reason, err := cl.WaitDisconnect(clientWait)
		if err != nil {
			t.Errorf("%s: %v", cl.ID(), err)
			continue
		}
		if reason != "transport close" && reason != "io server disconnect" {
			t.Errorf("%s: disconnect reason %q, want transport close or io server disconnect", cl.ID(), reason)
		}
	}
	t.Run("close packet", closePacket)
}

// dialRawWS opens a bare Engine.IO WebSocket, connects to "/" with a valid
// token and reads up to the welcome message.
func dialRawWS(t *testing.T, l *live, room string) *testkit.WS {
	t.Helper()
	c := testkit.DialWS(t, l.caddy.BaseURL+"/socket.io/", url.Values{"roomNumber": {room}}, nil)
	c.Wait = clientWait
	payload, _ := json.Marshal(map[string]string{"token": l.token(t, "rawws")})
	c.ConnectSocket(string(payload))
	c.ExpectPrefix(`42["room-userId"`)
	c.ExpectPrefix(`42["message_from_server"`)
	return c
}

// openRawPolling opens a bare polling session, connects to "/" with a
// valid token and reads until the welcome message has arrived.
func openRawPolling(t *testing.T, l *live, room string) *testkit.Polling {
	t.Helper()
	p := testkit.OpenPolling(t, l.caddy.BaseURL+"/socket.io/", url.Values{"roomNumber": {room}}, nil)
	payload, _ := json.Marshal(map[string]string{"token": l.token(t, "rawpoll")})
	p.MustPost("40" + string(payload))
	p.ReadUntil(`42["message_from_server"`, clientWait)
	return p
}

// TestCaddyTwoSitesKeepTheirAuth: two sites with socketio blocks of their
// own. On the default hub name they would share one hub and so one policy,
// and one site's auth would apply to the other: that config is refused at
// load. Named apart, each site keeps its own auth and rules.
func TestCaddyTwoSitesKeepTheirAuth(t *testing.T) {
	t.Parallel()
	nodeclient.Locate(t) // skip before building Caddy
	strict, open := testkit.FreePort(t), testkit.FreePort(t)
	sc := siteConfig{Port: strict, AdminPort: testkit.FreePort(t)}
	config := func(strictName, openName string) string {
		return fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	socketio {
		%s
		auth {
			secret {env.JWT_SECRET}
		}
		emit hello "strict site"
	}
	file_server
}

:%d {
	socketio {
		%s
		auth off
		emit hello "open site"
	}
}
`, adminOptions(sc.AdminPort), strict, strictName, open, openName)
	}

	// Same hub, different settings: refused before anything runs.
	bad := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(bad, []byte(config("", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), caddyCmdTimeout)
	defer cancel()
	validate := exec.CommandContext(ctx, testkit.CaddyBinary(t), "validate", "--config", bad, "--adapter", "caddyfile")
	validate.Env = append(os.Environ(), "JWT_SECRET="+testSecretEnv, "HOME="+t.TempDir())
	out, err := validate.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "give each its own name") {
		t.Fatalf("caddy validate of two sites sharing a hub: err %v, want a refusal naming the fix:\n%s", err, out)
	}

	c := startCaddyConfig(t, sc, config("name strict", "name open"))
	d := nodeclient.Start(t)
	openURL := fmt.Sprintf("http://127.0.0.1:%d", open)
	for _, ver := range clientVersions {
		t.Run("v"+ver, func(t *testing.T) {
			connect := func(name, base string, auth map[string]any) *nodeclient.Client {
				opts := map[string]any{"reconnection": false, "transports": []string{"websocket"}}
				if auth != nil {
					opts["auth"] = auth
				}
				cl := d.Connect("two-sites/v"+ver+"/"+name, ver, base, opts)
				t.Cleanup(cl.Disconnect)
				return cl
			}
			expectHello := func(cl *nodeclient.Client, want string) {
				t.Helper()
				if _, err := cl.WaitConnect(clientWait); err != nil {
					t.Errorf("%s: %v", cl.ID(), err)
					return
				}
				args, err := cl.WaitEvent("hello", clientWait)
				if err != nil || firstArg(args) != want {
					t.Errorf("%s: hello = %v, %v; want %q", cl.ID(), args, err, want)
				}
			}
			tok := testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": "alice"})
			expectHello(connect("strict-token", c.BaseURL, map[string]any{"token": tok}), "strict site")
			expectHello(connect("open-anonymous", openURL, nil), "open site")

			anon := connect("strict-anonymous", c.BaseURL, nil)
			var ce *nodeclient.ConnectError
			if _, err := anon.WaitConnect(clientWait); !errors.As(err, &ce) || !strings.Contains(ce.Message, "missing token") {
				t.Errorf("anonymous client on the strict site: WaitConnect = %v, want connect_error missing token", err)
			}
		})
	}
}
