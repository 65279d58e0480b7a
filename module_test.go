package socketio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
)

const testSecret = "test-secret-0123456789abcdef-0123456789"

func testContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func poolSize() int {
	n := 0
	hubs.Range(func(_, _ any) bool { n++; return true })
	return n
}

// provision provisions h and arranges its cleanup; the pool must be empty
// afterwards.
func provision(t *testing.T, h *Handler) {
	t.Helper()
	if err := h.Provision(testContext(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
}

func TestProvisionCleanupLeavesPoolEmpty(t *testing.T) {
	if n := poolSize(); n != 0 {
		t.Fatalf("pool has %d hubs before the test", n)
	}
	a := &Handler{}
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if a.Name != DefaultPath || poolSize() != 1 {
		t.Fatalf("name %q, pool size %d", a.Name, poolSize())
	}
	// A second handler with the same name (a reload) shares the hub.
	b := &Handler{Relay: []string{"x"}}
	if err := b.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if a.hub != b.hub || poolSize() != 1 {
		t.Fatal("same name did not share the hub")
	}
	if got := a.hub.policy.Load(); got != b.entry.pol {
		t.Fatal("newest policy is not active")
	}
	// The newest one going away (a failed reload) brings the older back.
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := a.hub.policy.Load(); got != a.entry.pol {
		t.Fatal("older policy was not restored")
	}
	hb := a.hub
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := poolSize(); n != 0 {
		t.Fatalf("pool has %d hubs after cleanup", n)
	}
	if err := hb.server.Of("/").Emit("x"); err == nil {
		t.Log("emit after close did not fail (not required)")
	}
}

func TestProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOCKETIO_TEST_EMPTY", "")
	cases := []struct {
		name string
		h    Handler
		want string
	}{
		{"auth without key", Handler{Auth: &AuthConfig{}}, "auth: a secret or a public_key is needed"},
		{"auth both keys", Handler{Auth: &AuthConfig{Secret: "x", PublicKey: "y"}}, "not both"},
		{"secret env unset", Handler{Auth: &AuthConfig{Secret: "{env.SOCKETIO_TEST_EMPTY}"}}, "secret is empty after resolving placeholders"},
		{"public key file missing", Handler{Auth: &AuthConfig{PublicKey: filepath.Join(dir, "nope.pem")}}, "reading public key"},
		{"public key garbage", Handler{Auth: &AuthConfig{PublicKey: garbage}}, "no PEM block"},
		{"alg not fitting", Handler{Auth: &AuthConfig{Secret: testSecret, Algorithms: []string{"RS256"}}}, `"RS256" does not fit`},
		{"bad mode", Handler{Auth: &AuthConfig{Mode: "sometimes", Secret: "x"}}, "unknown mode"},
		{"bad token source", Handler{Auth: &AuthConfig{Secret: testSecret, TokenFrom: []string{"body"}}}, "token_from"},
		{"bad transport", Handler{Transports: []string{"flash"}}, "unknown transport"},
		{"bad origin", Handler{Origins: []string{"example.com"}}, "is not an origin"},
		{"origin with path", Handler{Origins: []string{"https://example.com/app"}}, "is not an origin"},
		{"namespace without slash", Handler{Namespaces: []string{"chat"}}, "must start with /"},
		{"reserved relay", Handler{Relay: []string{"disconnect"}}, "reserved"},
		{"reserved emit", Handler{Emit: &Message{Event: "connect", Text: "x"}}, "reserved"},
		{"event used twice", Handler{Relay: []string{"join"}, RoomRequests: &RoomRequests{Join: "join"}}, "already used"},
		{"same join and leave", Handler{RoomRequests: &RoomRequests{Join: "a", Leave: "a"}}, "must differ"},
		{"negative payload", Handler{MaxPayload: -1}, "max_payload"},
		{"path with dot segment", Handler{Path: "/a/../socket.io/"}, "must be a clean path"},
		{"path with doubled slash", Handler{Path: "/a//b/"}, "must be a clean path"},
		{"path with wildcard", Handler{Path: "/socket.io/*"}, "plain path prefix"},
		{"path with escape", Handler{Path: "/socket%2eio/"}, "plain path prefix"},
		{"send buffer max below soft", Handler{Limits: &Limits{SendBuffer: 2 << 20, SendBufferMax: 1 << 20}}, "below its soft bound"},
		{"bad event rate", Handler{Limits: &Limits{EventRate: -3}}, "event_rate must be positive"},
		{"rate off alone", Handler{Limits: &Limits{EventRate: -1, EventBurst: 10}}, "turned off together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			err := h.Provision(testContext(t))
			if err == nil {
				_ = h.Cleanup()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if n := poolSize(); n != 0 {
				t.Fatalf("failed Provision left %d hubs in the pool", n)
			}
		})
	}
}

func TestProvisionResolvesEnvSecret(t *testing.T) {
	t.Setenv("SOCKETIO_TEST_SECRET", testSecret)
	h := &Handler{Name: "env", Auth: &AuthConfig{Secret: "{env.SOCKETIO_TEST_SECRET}"}}
	provision(t, h)
	tok, err := mintToken(tokenOptions{Secret: testSecret, Sub: "bob", TTL: time.Minute}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.entry.pol.verifier.Verify(tok); err != nil {
		t.Fatalf("token signed with the env secret refused: %v", err)
	}
}

func TestServeHTTPPassesOtherPaths(t *testing.T) {
	h := &Handler{Name: "paths", Path: "/rt"}
	provision(t, h)
	cases := []struct {
		path string
		next bool
	}{
		{"/", true},
		{"/rtx/", true},
		{"/socket.io/", true},
		{"/rt/", false},
		{"/rt", false},
		{"/rt/anything", false},
		// Cleaned and compared as Caddy's path matcher does, so that
		// `basic_auth /rt/*` in front and this handler agree.
		{"/rt/../", true},
		{"/rt/%2e%2e/", true},
		{"/rt/%2E%2E", true},
		{"/rt/x/../../", true},
		{"/rt/./../rtx/", true},
		{"/RT/", false},
		{"/rt/./", false},
		{"//rt/", false},
		{"/x/../rt/", false},
	}
	for _, tc := range cases {
		nextCalled := false
		next := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { nextCalled = true; return nil })
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, tc.path+"?EIO=4&transport=polling", nil)
		if err := h.ServeHTTP(rec, req, next); err != nil {
			t.Fatal(err)
		}
		if nextCalled != tc.next {
			t.Errorf("%s: next called = %v, want %v", tc.path, nextCalled, tc.next)
		}
		if !tc.next && (rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "0{")) {
			t.Errorf("%s: engine answered %d %q, want an open packet", tc.path, rec.Code, rec.Body.String())
		}
	}
}

type caddyHandlerFunc func(http.ResponseWriter, *http.Request) error

func (f caddyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// --- live tests over WebSocket, speaking the wire protocol -------------------

// tutorialHandler is the Caddyfile.example configuration with test extras.
func tutorialHandler(name string) *Handler {
	return &Handler{
		Name:         name,
		Namespaces:   []string{"/", "/team-*"},
		Auth:         &AuthConfig{Secret: testSecret, Leeway: caddy.Duration(time.Millisecond)},
		Join:         []string{"room-userId-{socketio.query.roomNumber}"},
		Announce:     &Message{Event: "room-userId", Text: "You are in room number: {socketio.query.roomNumber}"},
		Emit:         &Message{Event: "message_from_server", Text: "Message: welcome {socketio.claims.sub}"},
		Relay:        []string{"message_from_client"},
		LogEvents:    []string{"message_from_client"},
		RoomRequests: &RoomRequests{Join: "join", Leave: "leave"},
		AllowRooms:   []string{"room-{socketio.claims.sub}-*"},
	}
}

// serve provisions h, swaps its logger for an observer, and serves it.
func serve(t *testing.T, h *Handler) (string, *observer.ObservedLogs) {
	t.Helper()
	provision(t, h)
	core, logs := observer.New(zapcore.DebugLevel)
	h.entry.pol.logger = zap.New(core)
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/", logs
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, base string, query url.Values) *wsClient {
	t.Helper()
	return dialHeader(t, base, query, nil)
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame that is not a ping (pings are answered).
func (c *wsClient) read() string {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for range 100 {
		_ = c.conn.SetReadDeadline(deadline)
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if string(data) == "2" {
			c.send("3")
			continue
		}
		return string(data)
	}
	c.t.Fatal("only pings")
	return ""
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("got frame %q, want %q", got, want)
	}
}

func (c *wsClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.read()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got frame %q, want prefix %q", got, prefix)
	}
	return got
}

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func connectPayload(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTutorialFlow(t *testing.T) {
	base, logs := serve(t, tutorialHandler("tutorial"))
	aliceTok := token(t, jwt.MapClaims{"sub": "alice"})

	a := dial(t, base, url.Values{"roomNumber": {"7"}})
	a.send("40" + connectPayload(t, map[string]any{"token": aliceTok}))
	a.expectPrefix(`40{"sid":"`)
	a.expect(`42["room-userId","You are in room number: 7"]`)
	a.expect(`42["message_from_server","Message: welcome alice"]`)

	b := dial(t, base, url.Values{"roomNumber": {"7"}})
	b.send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "bob"})}))
	b.expectPrefix(`40{"sid":"`)
	b.expect(`42["room-userId","You are in room number: 7"]`)
	b.expect(`42["message_from_server","Message: welcome bob"]`)
	a.expect(`42["room-userId","You are in room number: 7"]`)

	// A socket of another room hears nothing of room 7.
	other := dial(t, base, url.Values{"roomNumber": {"8"}})
	other.send("40" + connectPayload(t, map[string]any{"token": aliceTok}))
	other.expectPrefix(`40{"sid":"`)
	other.expect(`42["room-userId","You are in room number: 8"]`)
	other.expect(`42["message_from_server","Message: welcome alice"]`)

	// Relay to the room, sender excluded.
	a.send(`42["message_from_client","hello from a"]`)
	b.expect(`42["message_from_client","hello from a"]`)
	b.send(`42["message_from_client",{"n":1}]`)
	a.expect(`42["message_from_client",{"n":1}]`) // not its own "hello from a"
	other.send(`42["message_from_client","room 8 only"]`)
	a.send(`421["message_from_client","with ack"]`)
	a.expect(`431[]`)
	b.expect(`42["message_from_client","with ack"]`) // not "room 8 only"

	// Logged through the handler's logger, without the token.
	var found bool
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, aliceTok) {
				t.Fatalf("token logged in %q", e.Message)
			}
		}
		if e.Message == "socket.io event" && e.ContextMap()["args"] == `["hello from a"]` && e.ContextMap()["event"] == "message_from_client" {
			found = true
		}
	}
	if !found {
		t.Fatalf("message_from_client not logged; logs: %v", logs.All())
	}
}

func TestHandshakeRefusals(t *testing.T) {
	base, _ := serve(t, tutorialHandler("refusals"))
	member := dial(t, base, url.Values{"roomNumber": {"5"}})
	member.send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "m"})}))
	member.expectPrefix(`40{"sid":"`)
	member.expect(`42["room-userId","You are in room number: 5"]`)
	member.expect(`42["message_from_server","Message: welcome m"]`)

	otherKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"}).SignedString([]byte("another-secret-0123456789abcdef-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		payload string
		want    string
	}{
		{"no payload", "40", `44{"message":"missing token"}`},
		{"no token", `40{"user":"x"}`, `44{"message":"missing token"}`},
		{"expired", "40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})}),
			`44{"message":"invalid token: token is expired"}`},
		{"bad signature", "40" + connectPayload(t, map[string]any{"token": otherKey}), `44{"message":"invalid token: signature is invalid"}`},
		{"alg none", "40" + connectPayload(t, map[string]any{"token": none}),
			`44{"message":"invalid token: token is unverifiable: unsigned tokens (alg none) are never accepted"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, base, url.Values{"roomNumber": {"5"}})
			c.send(tc.payload)
			c.expect(tc.want)
			// Nothing reaches a refused socket, and it joined no room: the
			// member hears no announcement. Prove it with a later event.
			c.send(`42["message_from_client","from refused"]`)
		})
	}
	late := dial(t, base, url.Values{"roomNumber": {"5"}})
	late.send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "late"})}))
	late.expectPrefix(`40{"sid":"`)
	member.expect(`42["room-userId","You are in room number: 5"]`)
}

func TestTokenFromHeaderAndQuery(t *testing.T) {
	h := tutorialHandler("sources")
	h.Auth.TokenFrom = []string{"header", "query:access_token"}
	base, _ := serve(t, h)
	tok := token(t, jwt.MapClaims{"sub": "q"})

	c := dial(t, base, url.Values{"access_token": {tok}})
	c.send("40")
	c.expectPrefix(`40{"sid":"`)
	c.expect(`42["message_from_server","Message: welcome q"]`)

	// auth payload is not a configured source here.
	d := dial(t, base, nil)
	d.send("40" + connectPayload(t, map[string]any{"token": tok}))
	d.expect(`44{"message":"missing token"}`)

	conn, resp, err := websocket.DefaultDialer.Dial(base+"?EIO=4&transport=websocket", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	e.expectPrefix("0{")
	e.send("40")
	e.expectPrefix(`40{"sid":"`)
}

func TestOptionalAuth(t *testing.T) {
	h := tutorialHandler("optional")
	h.Auth.Mode = AuthOptional
	base, _ := serve(t, h)
	c := dial(t, base, nil)
	c.send("40")
	c.expectPrefix(`40{"sid":"`)
	c.expect(`42["message_from_server","Message: welcome "]`)
	d := dial(t, base, nil)
	d.send(`40{"token":"garbage"}`)
	d.expect(`44{"message":"invalid token: token is malformed"}`)
}

func TestTokenExpiryDisconnects(t *testing.T) {
	base, _ := serve(t, tutorialHandler("expiry"))
	c := dial(t, base, nil)
	exp := time.Now().Add(1500 * time.Millisecond)
	c.send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "e", "exp": exp.Unix()})}))
	c.expectPrefix(`40{"sid":"`)
	c.expect(`42["message_from_server","Message: welcome e"]`)
	c.expect(`41`)
	if time.Now().Before(exp.Truncate(time.Second)) {
		t.Fatal("disconnected before exp")
	}
}

func TestNamespacesAndRoomRequests(t *testing.T) {
	base, _ := serve(t, tutorialHandler("rooms"))
	tok := token(t, jwt.MapClaims{"sub": "carol"})
	star := token(t, jwt.MapClaims{"sub": "*"})
	c := dial(t, base, nil)

	c.send(`40/other,{"token":"` + tok + `"}`)
	c.expect(`44/other,{"message":"Invalid namespace"}`)

	c.send(`40/team-a,{"token":"` + tok + `"}`)
	c.expectPrefix(`40/team-a,{"sid":"`)
	c.expect(`42/team-a,["message_from_server","Message: welcome carol"]`)

	c.send(`42/team-a,1["join","room-carol-x"]`)
	c.expect(`43/team-a,1[{"ok":true,"room":"room-carol-x"}]`)
	// The announcement goes to requested joins too; roomNumber is not in
	// this handshake, so its placeholder is empty.
	c.expect(`42/team-a,["room-userId","You are in room number: "]`)
	c.send(`42/team-a,2["join","room-dave-x"]`)
	c.expect(`43/team-a,2[{"error":"room not allowed","ok":false}]`)
	c.send(`42/team-a,3["leave","room-carol-x"]`)
	c.expect(`43/team-a,3[{"ok":true,"room":"room-carol-x"}]`)
	c.send(`42/team-a,4["leave","room-carol-x"]`)
	c.expect(`43/team-a,4[{"error":"not in room","ok":false}]`)

	// A claim holding "*" is a literal star, not a wildcard.
	s := dial(t, base, nil)
	s.send(`40{"token":"` + star + `"}`)
	s.expectPrefix(`40{"sid":"`)
	s.expect(`42["message_from_server","Message: welcome *"]`)
	s.send(`425["join","room-carol-x"]`)
	s.expect(`435[{"error":"room not allowed","ok":false}]`)
	s.send(`426["join","room-*-x"]`)
	s.expect(`436[{"ok":true,"room":"room-*-x"}]`)
	s.expect(`42["room-userId","You are in room number: "]`)
}

// --- rules without a connection ---------------------------------------------

func TestPlaceholders(t *testing.T) {
	v := &socketView{
		ID:        "abc",
		Namespace: "/",
		Query:     url.Values{"roomNumber": {"7"}, "empty": {""}},
		Headers:   http.Header{"X-Foo": {"bar"}},
		Auth:      map[string]any{"token": "secret-token", "color": "blue", "n": json.Number("3")},
		Claims: map[string]any{"sub": "alice", "org": map[string]any{"id": json.Number("42")},
			"roles": []any{"a", "b"}, "big": json.Number("12345678901234567890"), "f": 1.5},
		Hidden: []string{"token"},
	}
	repl := newReplacer(v, nil)
	cases := []struct{ in, want string }{
		{"{socketio.id}", "abc"},
		{"{socketio.namespace}", "/"},
		{"{socketio.query.roomNumber}", "7"},
		{"{socketio.header.X-Foo}", "bar"},
		{"{socketio.header.x-foo}", "bar"},
		{"{socketio.auth.color}", "blue"},
		{"{socketio.auth.n}", "3"},
		{"{socketio.auth.token}", ""},
		{"{socketio.claims.sub}", "alice"},
		{"{socketio.claims.org.id}", "42"},
		{"{socketio.claims.roles}", "a,b"},
		{"{socketio.claims.big}", "12345678901234567890"},
		{"{socketio.claims.f}", "1.5"},
		{"{socketio.claims.missing}", ""},
		{"{socketio.query.nope}", ""},
	}
	for _, tc := range cases {
		if got := expandText(repl, tc.in); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.in, got, tc.want)
		}
	}

	p := &policy{join: []string{
		"room-userId-{socketio.query.roomNumber}",
		"room-{socketio.query.missing}",
		"room-{socketio.query.empty}",
		"{socketio.query.empty}",
		"user-{socketio.claims.sub}",
		"static",
		"token-{socketio.auth.token}",
		"{socketio.header.X-Room}",
		"room-userId-{socketio.query.roomNumber}",
	}}
	got := p.joinRooms(v)
	want := []string{"room-userId-7", "user-alice", "static"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("joinRooms = %q, want %q", got, want)
	}
	// A template that yields a socket-id-shaped name is skipped.
	v.Query.Set("room", "AAAAAAAAAAAAAAAAAAAA")
	p.join = []string{"{socketio.query.room}"}
	if got := p.joinRooms(v); len(got) != 0 {
		t.Fatalf("socket-id-shaped room joined: %q", got)
	}
}

func TestRoomAllowed(t *testing.T) {
	v := &socketView{Claims: map[string]any{"sub": "a*"}}
	p := &policy{allowRooms: []string{"room-{socketio.claims.sub}-*", "lobby", "x-{socketio.claims.missing}"}, maxRoom: 256}
	cases := []struct {
		room string
		want bool
	}{
		{"room-a*-1", true},
		{"room-ab-1", false},
		{"lobby", true},
		{"lobby2", false},
		{"x-", false},
		{"", false},
		{strings.Repeat("l", 257), false},
	}
	for _, tc := range cases {
		if got := p.roomAllowed(v, tc.room); got != tc.want {
			t.Errorf("roomAllowed(%q) = %v, want %v", tc.room, got, tc.want)
		}
	}
}

func TestArgsForLog(t *testing.T) {
	if got := argsForLog([]any{"hi", json.Number("2"), []byte{1, 2, 3}, map[string]any{"b": []byte{1}}}); got != `["hi",2,"<3 bytes>",{"b":"<1 bytes>"}]` {
		t.Fatalf("argsForLog = %s", got)
	}
	long := argsForLog([]any{strings.Repeat("é", 1000)})
	if len(long) > maxLoggedArgs+len("…") || !strings.HasSuffix(long, "…") {
		t.Fatalf("not truncated: %d bytes", len(long))
	}
}

func TestLooksLikeSocketID(t *testing.T) {
	for id, want := range map[string]bool{
		"8znUs1omMPCWy2GoAAAB":  true,
		"8znUs1omMPCWy2GoAA-_":  true,
		"room-userId-12345678":  true, // shape only; such names are refused too
		"room-userId-1234567":   false,
		"room userId 12345678":  false,
		"8znUs1omMPCWy2GoAAAB1": false,
	} {
		if got := looksLikeSocketID(id); got != want {
			t.Errorf("looksLikeSocketID(%q) = %v", id, got)
		}
	}
}

func TestMintToken(t *testing.T) {
	now := time.Now()
	tok, err := mintToken(tokenOptions{
		Secret: testSecret, Sub: "alice", TTL: 2 * time.Hour, Aud: "chat", Iss: "dev",
		Claims: []string{"role=admin", "level=3", "flags={\"a\":true}", "note=has=equals"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret), Issuer: "dev", Audience: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	for k, want := range map[string]string{"sub": "alice", "role": "admin", "level": "3", "note": "has=equals", "aud": "chat", "iss": "dev"} {
		if got, _ := format(claims[k]); got != want {
			t.Errorf("claim %s = %q, want %q", k, got, want)
		}
	}
	if _, isNum := claims["level"].(json.Number); !isNum {
		t.Errorf("level is %T, want a number", claims["level"])
	}
	if flags, _ := claims["flags"].(map[string]any); flags["a"] != true {
		t.Errorf("flags = %v", claims["flags"])
	}
	exp, ok := claims.Expiry()
	if !ok || exp.Unix() != now.Add(2*time.Hour).Unix() {
		t.Errorf("exp = %v", exp)
	}
	for _, bad := range []tokenOptions{
		{TTL: time.Hour},
		{Secret: "x", TTL: 0},
		{Secret: "x", TTL: time.Hour, Claims: []string{"novalue"}},
		{Secret: "x", TTL: time.Hour, Claims: []string{"=v"}},
	} {
		if _, err := mintToken(bad, now); err == nil {
			t.Errorf("mintToken(%+v) accepted", bad)
		}
	}
}

// TestReloadKeepsSockets provisions a second handler with the same name (what
// a config reload does), cleans up the first, and checks that the connected
// socket survives and follows the new rules.
func TestReloadKeepsSockets(t *testing.T) {
	old := tutorialHandler("reload")
	base, _ := serve(t, old)
	c := dial(t, base, url.Values{"roomNumber": {"1"}})
	c.send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "r"})}))
	c.expectPrefix(`40{"sid":"`)
	c.expect(`42["room-userId","You are in room number: 1"]`)
	c.expect(`42["message_from_server","Message: welcome r"]`)

	next := tutorialHandler("reload")
	next.Relay = nil
	next.RoomRequests = &RoomRequests{Join: "enter"}
	next.AllowRooms = []string{"*"}
	provision(t, next)
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if next.hub.server.ConnCount() != 1 {
		t.Fatalf("connections after reload: %d", next.hub.server.ConnCount())
	}
	c.send(`421["enter","anything"]`)
	c.expect(`431[{"ok":true,"room":"anything"}]`)
}

// TestReloadReverifiesSockets: a reload whose auth differs checks every
// connected socket again; those it no longer admits get a DISCONNECT, the
// others stay, and a reload that changes nothing in auth checks nobody.
func TestReloadReverifiesSockets(t *testing.T) {
	old := tutorialHandler("reverify")
	old.Auth.Mode = AuthOptional
	base, _ := serve(t, old)
	connect := func(tok string) *wsClient {
		c := dial(t, base, url.Values{"roomNumber": {"1"}})
		if tok == "" {
			c.send("40")
		} else {
			c.send("40" + connectPayload(t, map[string]any{"token": tok}))
		}
		c.expectPrefix(`40{"sid":"`)
		c.expect(`42["room-userId","You are in room number: 1"]`)
		c.expectPrefix(`42["message_from_server"`)
		return c
	}
	signed := connect(token(t, jwt.MapClaims{"sub": "kept"}))
	anonymous := connect("")
	// Drain the second join's announcement.
	signed.expect(`42["room-userId","You are in room number: 1"]`)

	reload := func(h *Handler) {
		t.Helper()
		provision(t, h)
	}
	// Only rules change: nobody is checked or dropped.
	same := tutorialHandler("reverify")
	same.Auth.Mode = AuthOptional
	same.Emit = nil
	reload(same)
	if n := same.hub.server.ConnCount(); n != 2 {
		t.Fatalf("connections after a rules-only reload: %d, want 2", n)
	}
	// Auth becomes required: the anonymous socket is disconnected, the
	// signed one stays.
	required := tutorialHandler("reverify")
	reload(required)
	anonymous.expect("41")
	signed.send(`42["message_from_client","still here"]`)
	signed.send(`421["join","room-kept-x"]`)
	signed.expect(`431[{"ok":true,"room":"room-kept-x"}]`)
	signed.expect(`42["room-userId","You are in room number: 1"]`) // its join's announcement
	// The secret is rotated: the signed socket goes too.
	rotated := tutorialHandler("reverify")
	rotated.Auth.Secret = testSecret + "-rotated"
	reload(rotated)
	signed.expect("41")
}
