package socketio

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Tests of rules.go over a raw WebSocket: auth and its refusals, joins
// and announcements, relay, room requests, expiry; and the room rules
// without a connection.

func TestTutorialFlow(t *testing.T) {
	base, logs := serve(t, tutorialHandler("tutorial"))
	aliceTok := token(t, jwt.MapClaims{"sub": "alice"})

	a := dial(t, base, url.Values{"roomNumber": {"7"}})
	a.Send("40" + connectPayload(t, map[string]any{"token": aliceTok}))
	a.ExpectPrefix(`40{"sid":"`)
	a.Expect(`42["room-userId","You are in room number: 7"]`)
	a.Expect(`42["message_from_server","Message: welcome alice"]`)

	b := joinTutorial(t, base, "7", "bob")
	a.Expect(`42["room-userId","You are in room number: 7"]`)

	// A socket of another room hears nothing of room 7.
	other := dial(t, base, url.Values{"roomNumber": {"8"}})
	other.Send("40" + connectPayload(t, map[string]any{"token": aliceTok}))
	other.ExpectPrefix(`40{"sid":"`)
	other.Expect(`42["room-userId","You are in room number: 8"]`)
	other.Expect(`42["message_from_server","Message: welcome alice"]`)

	// Relay to the room, sender excluded.
	a.Send(`42["message_from_client","hello from a"]`)
	b.Expect(`42["message_from_client","hello from a"]`)
	b.Send(`42["message_from_client",{"n":1}]`)
	a.Expect(`42["message_from_client",{"n":1}]`) // not its own "hello from a"
	other.Send(`42["message_from_client","room 8 only"]`)
	a.Send(`421["message_from_client","with ack"]`)
	a.Expect(`431[]`)
	b.Expect(`42["message_from_client","with ack"]`) // not "room 8 only"

	// Logged through the handler's logger, without the token.
	var found bool
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, aliceTok) {
				t.Fatalf("token logged in %q", e.Message)
			}
		}
		if e.Message == "client event" && e.ContextMap()["args"] == `["hello from a"]` && e.ContextMap()["event"] == "message_from_client" {
			found = true
		}
	}
	if !found {
		t.Fatalf("message_from_client not logged; logs: %v", logs.All())
	}
}

func TestHandshakeRefusals(t *testing.T) {
	base, _ := serve(t, tutorialHandler("refusals"))
	member := joinTutorial(t, base, "5", "m")

	otherKey := testkit.Sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-xyz"), jwt.MapClaims{"sub": "x"})
	none := testkit.Unsigned(t, jwt.MapClaims{"sub": "x"})
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
			c.Send(tc.payload)
			c.Expect(tc.want)
			// Nothing reaches a refused socket, and it joined no room: the
			// member hears no announcement. Prove it with a later event.
			c.Send(`42["message_from_client","from refused"]`)
		})
	}
	late := dial(t, base, url.Values{"roomNumber": {"5"}})
	late.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "late"})}))
	late.ExpectPrefix(`40{"sid":"`)
	member.Expect(`42["room-userId","You are in room number: 5"]`)
}

func TestTokenFromHeaderAndQuery(t *testing.T) {
	h := tutorialHandler("sources")
	h.Auth.TokenFrom = []string{"header", "query:access_token"}
	base, _ := serve(t, h)
	tok := token(t, jwt.MapClaims{"sub": "q"})

	c := dial(t, base, url.Values{"access_token": {tok}})
	c.Send("40")
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`42["message_from_server","Message: welcome q"]`)

	// auth payload is not a configured source here.
	d := dial(t, base, nil)
	d.Send("40" + connectPayload(t, map[string]any{"token": tok}))
	d.Expect(`44{"message":"missing token"}`)

	e := dialHeader(t, base, nil, http.Header{"Authorization": {"Bearer " + tok}})
	e.Send("40")
	e.ExpectPrefix(`40{"sid":"`)
}

func TestOptionalAuth(t *testing.T) {
	h := tutorialHandler("optional")
	h.Auth.Mode = AuthOptional
	base, _ := serve(t, h)
	c := dial(t, base, nil)
	c.Send("40")
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`42["message_from_server","Message: welcome "]`)
	d := dial(t, base, nil)
	d.Send(`40{"token":"garbage"}`)
	d.Expect(`44{"message":"invalid token: token is malformed"}`)
}

func TestTokenExpiryDisconnects(t *testing.T) {
	testkit.WaitsOnClock(t) // exp has whole seconds: 0.5 to 1.5 s
	t.Parallel()            // waits on real timers: overlaps with the others
	base, _ := serve(t, tutorialHandler("expiry"))
	c := dial(t, base, nil)
	exp := time.Now().Add(1500 * time.Millisecond)
	c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "e", "exp": exp.Unix()})}))
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`42["message_from_server","Message: welcome e"]`)
	c.Expect(`41`)
	if time.Now().Before(exp.Truncate(time.Second)) {
		t.Fatal("disconnected before exp")
	}
}

func TestNamespacesAndRoomRequests(t *testing.T) {
	base, _ := serve(t, tutorialHandler("rooms"))
	tok := token(t, jwt.MapClaims{"sub": "carol"})
	star := token(t, jwt.MapClaims{"sub": "*"})
	c := dial(t, base, nil)

	c.Send(`40/other,{"token":"` + tok + `"}`)
	c.Expect(`44/other,{"message":"Invalid namespace"}`)

	c.Send(`40/team-a,{"token":"` + tok + `"}`)
	c.ExpectPrefix(`40/team-a,{"sid":"`)
	c.Expect(`42/team-a,["message_from_server","Message: welcome carol"]`)

	c.Send(`42/team-a,1["join","room-carol-x"]`)
	c.Expect(`43/team-a,1[{"ok":true,"room":"room-carol-x"}]`)
	// The announcement goes to requested joins too; roomNumber is not in
	// this handshake, so its placeholder is empty.
	c.Expect(`42/team-a,["room-userId","You are in room number: "]`)
	c.Send(`42/team-a,2["join","room-dave-x"]`)
	c.Expect(`43/team-a,2[{"error":"room not allowed","ok":false}]`)
	c.Send(`42/team-a,3["leave","room-carol-x"]`)
	c.Expect(`43/team-a,3[{"ok":true,"room":"room-carol-x"}]`)
	c.Send(`42/team-a,4["leave","room-carol-x"]`)
	c.Expect(`43/team-a,4[{"error":"not in room","ok":false}]`)

	// A claim holding "*" is a literal star, not a wildcard.
	s := dial(t, base, nil)
	s.Send(`40{"token":"` + star + `"}`)
	s.ExpectPrefix(`40{"sid":"`)
	s.Expect(`42["message_from_server","Message: welcome *"]`)
	s.Send(`425["join","room-carol-x"]`)
	s.Expect(`435[{"error":"room not allowed","ok":false}]`)
	s.Send(`426["join","room-*-x"]`)
	s.Expect(`436[{"ok":true,"room":"room-*-x"}]`)
	s.Expect(`42["room-userId","You are in room number: "]`)
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

// roomsAtConnect is a realtime.Watcher that records the rooms of each
// socket at the moment it got its CONNECT answer, before the namespace's
// connection handlers ran.
type roomsAtConnect struct{ rooms chan []string }

func (w roomsAtConnect) SocketConnected(s *realtime.Socket) { w.rooms <- s.Rooms() }

func (roomsAtConnect) ConnOpened(string)                              {}
func (roomsAtConnect) ConnClosed(string)                              {}
func (roomsAtConnect) PacketReceived(int)                             {}
func (roomsAtConnect) PacketsSent(int, int)                           {}
func (roomsAtConnect) SocketUpgraded(*realtime.Socket)                {}
func (roomsAtConnect) SocketDisconnected(*realtime.Socket, string)    {}
func (roomsAtConnect) RoomJoined(*realtime.Namespace, string, string) {}
func (roomsAtConnect) RoomLeft(*realtime.Namespace, string, string)   {}
func (roomsAtConnect) EventReceived(*realtime.Socket, []any)          {}
func (roomsAtConnect) EventSent(*realtime.Socket, []any)              {}

// TestJoinRuleBeforeConnect: a socket is in the join rule's rooms before
// its client gets CONNECT, as with Node's connection handler, so a message
// another client sends to the room once this one is connected reaches it
// (the join used to run after the CONNECT answer, and such a message could
// miss the room). A socket recovered without the middlewares still joins.
func TestJoinRuleBeforeConnect(t *testing.T) {
	h := tutorialHandler("join-before-connect")
	base, _ := serve(t, h)
	w := roomsAtConnect{rooms: make(chan []string, 1)}
	h.hub.server.Watch(w)
	t.Cleanup(func() { h.hub.server.Watch(nil) })

	c := dial(t, base, url.Values{"roomNumber": {"3"}})
	c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "carol"})}))
	c.ExpectPrefix(`40{"sid":"`)
	select {
	case rooms := <-w.rooms:
		if !slices.Contains(rooms, "room-userId-3") {
			t.Fatalf("rooms at CONNECT = %q, want room-userId-3 among them", rooms)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no socket connected")
	}
	// The announcement still follows the CONNECT answer, once.
	c.Expect(`42["room-userId","You are in room number: 3"]`)
	c.Expect(`42["message_from_server","Message: welcome carol"]`)
}

// TestConnectViewDropped: the placeholder view a socket's connect rules
// share (socketState.cview) is gone once its connection handler ran: a
// socket holds no parsed handshake for its life (TestRecoveryThroughTheModule
// checks a recovered one).
func TestConnectViewDropped(t *testing.T) {
	h := tutorialHandler("connect-view")
	base, _ := serve(t, h)
	c := joinTutorial(t, base, "4", "dave")
	// The welcome is sent from inside the connection handler, before it
	// drops the view; the socket's reader handles this request only after
	// the handler returned (CI once checked between the two).
	c.Send(`421["join","room-dave-1"]`)
	c.Expect(`431[{"ok":true,"room":"room-dave-1"}]`)
	socks := h.hub.server.Of("/").Sockets()
	if len(socks) != 1 {
		t.Fatalf("%d sockets, want 1", len(socks))
	}
	if stateOf(socks[0]).holdsConnectView() {
		t.Fatal("the connect view is still held after the connection handler")
	}
}

// holdsConnectView reports whether the state still holds a connect view.
func (st *socketState) holdsConnectView() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cview != nil
}
