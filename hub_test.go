package socketio

import (
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Tests of hub.go: the pool of hubs, shared by name, and what a reload
// (a second handler of the same name) keeps and re-checks.

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

// TestReloadKeepsSockets provisions a second handler with the same name (what
// a config reload does), cleans up the first, and checks that the connected
// socket survives and follows the new rules.
func TestReloadKeepsSockets(t *testing.T) {
	old := tutorialHandler("reload")
	base, _ := serve(t, old)
	c := joinTutorial(t, base, "1", "r")

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
	c.Send(`421["enter","anything"]`)
	c.Expect(`431[{"ok":true,"room":"anything"}]`)
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
			c.Send("40")
		} else {
			c.Send("40" + connectPayload(t, map[string]any{"token": tok}))
		}
		c.ExpectPrefix(`40{"sid":"`)
		c.Expect(`42["room-userId","You are in room number: 1"]`)
		c.ExpectPrefix(`42["message_from_server"`)
		return c
	}
	signed := connect(token(t, jwt.MapClaims{"sub": "kept"}))
	anonymous := connect("")
	// Drain the second join's announcement.
	signed.Expect(`42["room-userId","You are in room number: 1"]`)

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
	anonymous.Expect("41")
	signed.Send(`42["message_from_client","still here"]`)
	signed.Send(`421["join","room-kept-x"]`)
	signed.Expect(`431[{"ok":true,"room":"room-kept-x"}]`)
	signed.Expect(`42["room-userId","You are in room number: 1"]`) // its join's announcement
	// The secret is rotated: the signed socket goes too.
	rotated := tutorialHandler("reverify")
	rotated.Auth.Secret = testSecret + "-rotated"
	reload(rotated)
	signed.Expect("41")
}
