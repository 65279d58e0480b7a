package socketio

import (
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestAnnounceLeave: announce_leave tells the other members of a room when
// a socket leaves it, on request or by disconnecting, and never the
// leaving socket itself.
func TestAnnounceLeave(t *testing.T) {
	h := tutorialHandler("announce-leave")
	h.Emit = nil
	h.AnnounceLeave = &Message{Event: "left", Text: "{socketio.claims.sub} left {socketio.room}"}
	base, _ := serve(t, h)
	join := func(sub string) *wsClient {
		c := dial(t, base, url.Values{"roomNumber": {"7"}})
		c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
		c.ExpectPrefix(`40{"sid":"`)
		c.Expect(`42["room-userId","You are in room number: 7"]`)
		return c
	}
	ann := join("ann")
	bob := join("bob")
	ann.Expect(`42["room-userId","You are in room number: 7"]`)

	bob.Send(`421["leave","room-userId-7"]`)
	bob.Expect(`431[{"ok":true,"room":"room-userId-7"}]`)
	ann.Expect(`42["left","bob left room-userId-7"]`)

	cid := join("cid")
	ann.Expect(`42["room-userId","You are in room number: 7"]`)
	cid.Close()
	ann.Expect(`42["left","cid left room-userId-7"]`)
	// bob, no longer in the room, heard neither.
	bob.Send(`422["leave","room-userId-7"]`)
	bob.Expect(`432[{"error":"not in room","ok":false}]`)
}

func TestAnnounceLeaveChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *Message
		want string
	}{
		{"reserved", &Message{Event: "disconnect", Text: "x"}, "reserved"},
		{"no event", &Message{Text: "x"}, "need an event name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Name: "leave-check", AnnounceLeave: tc.m}
			err := h.Provision(testContext(t))
			if err == nil {
				_ = h.Cleanup()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
