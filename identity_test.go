package socketio

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// serveBehindAuth serves h the way a Caddy site with basic_auth in front
// does: the request carries Caddy's replacer, and a request with Basic
// credentials gets {http.auth.user.id} set, as caddyauth does once the
// password checks. {http.vars.tenant} is set too, like a vars directive.
func serveBehindAuth(t *testing.T, h *Handler) string {
	t.Helper()
	provision(t, h)
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddy.NewReplacer()
		if user, _, ok := r.BasicAuth(); ok {
			repl.Set("http.auth.user.id", user)
		}
		repl.Set("http.vars.tenant", "acme")
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/"
}

func basicAuth(user string) http.Header {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, "secret")
	return r.Header
}

func TestIdentityKeys(t *testing.T) {
	got := identityKeys("user-{http.auth.user.id}", "{http.vars.tenant}-{socketio.id}-{http.auth.user.id}",
		`\{http.escaped}`, "{env.HOME}", "{http.}", "{http.request.remote.host", "")
	want := []string{"http.auth.user.id", "http.vars.tenant"}
	if !slices.Equal(got, want) {
		t.Fatalf("identityKeys = %q, want %q", got, want)
	}
	h := &Handler{
		AllowRooms: []string{"private-{http.auth.user.id}-*"},
		Emit:       &Message{Event: "hello", Text: "from {http.request.remote.host}"},
	}
	if got := h.identityKeys(); !slices.Equal(got, []string{"http.auth.user.id", "http.request.remote.host"}) {
		t.Fatalf("handler keys = %q", got)
	}
	if got := (&Handler{Join: []string{"room-{socketio.query.n}"}}).identityKeys(); got != nil {
		t.Fatalf("a config without {http.*} captures %q", got)
	}
	if got := (&Handler{Webhook: &Webhook{}}).identityKeys(); !slices.Equal(got, []string{userIDKey}) {
		t.Fatalf("a webhook captures %q, want the user id", got)
	}
}

// TestIdentityJoinsPerUserRooms: each socket joins user-<its basic_auth
// user>, and an emit to one user's room reaches that user's sockets only.
func TestIdentityJoinsPerUserRooms(t *testing.T) {
	t.Parallel()
	h := &Handler{
		Name:         "identity-rooms",
		Join:         []string{"user-{http.auth.user.id}"},
		Announce:     &Message{Event: "welcome", Text: "{http.auth.user.id} of {http.vars.tenant} in {socketio.room}"},
		RoomRequests: &RoomRequests{Join: "join"},
		AllowRooms:   []string{"private-{http.auth.user.id}-*"},
	}
	base := serveBehindAuth(t, h)
	connect := func(user string) *wsClient {
		var header http.Header
		if user != "" {
			header = basicAuth(user)
		}
		c := dialHeader(t, base, nil, header)
		c.ConnectSocket("")
		return c
	}
	alice1 := connect("alice")
	alice1.Expect(`42["welcome","alice of acme in user-alice"]`)
	alice2 := connect("alice")
	alice2.Expect(`42["welcome","alice of acme in user-alice"]`)
	alice1.Expect(`42["welcome","alice of acme in user-alice"]`) // the room's announcement
	bob := connect("bob")
	bob.Expect(`42["welcome","bob of acme in user-bob"]`)
	anon := connect("") // no user: the template is skipped, no "user-" room
	anon.Quiet(100 * time.Millisecond)

	if err := h.hub.server.Of("/").To("user-alice").Emit("note", "for alice"); err != nil {
		t.Fatal(err)
	}
	alice1.Expect(`42["note","for alice"]`)
	alice2.Expect(`42["note","for alice"]`)
	bob.Quiet(200 * time.Millisecond)
	anon.Quiet(10 * time.Millisecond)

	// allow_rooms reads the identity too, a user's value literally.
	bob.Send(`421["join","private-bob-x"]`)
	bob.Expect(`431[{"ok":true,"room":"private-bob-x"}]`)
	bob.Expect(`42["welcome","bob of acme in private-bob-x"]`)
	bob.Send(`422["join","private-alice-x"]`)
	bob.Expect(`432[{"error":"room not allowed","ok":false}]`)
}

// TestIdentityIsTheHandshakes: the values are those of the Engine.IO
// handshake; a later request of the session with other credentials (here
// the POST that carries the CONNECT) changes nothing.
func TestIdentityIsTheHandshakes(t *testing.T) {
	h := &Handler{Name: "identity-handshake", Join: []string{"user-{http.auth.user.id}"}}
	base := "http" + strings.TrimPrefix(serveBehindAuth(t, h), "ws")
	p := testkit.OpenPolling(t, base, nil, basicAuth("carol"))
	p.Header = basicAuth("mallory")
	p.MustPost("40")
	if _, body := p.Get(); !strings.HasPrefix(body, `40{"sid":"`) {
		t.Fatalf("connect answer %q", body)
	}
	socks := h.hub.server.Of("/").Sockets()
	if len(socks) != 1 || !slices.Contains(socks[0].Rooms(), "user-carol") || slices.Contains(socks[0].Rooms(), "user-mallory") {
		t.Fatalf("sockets %d, rooms %q", len(socks), socks[0].Rooms())
	}
}

// TestIdentityNotCapturedWithoutUse: a policy that uses no {http.*}
// placeholder leaves the request alone.
func TestIdentityNotCapturedWithoutUse(t *testing.T) {
	r := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil)
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", "dave")
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	if got := withIdentity(r, nil); got != r {
		t.Fatal("captured with no keys")
	}
	polled := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling&sid=abc", nil).WithContext(r.Context())
	if got := withIdentity(polled, []string{userIDKey}); got != polled {
		t.Fatal("captured on a request of an existing session")
	}
	got := identityOf(withIdentity(r, []string{userIDKey, "http.vars.none"}))
	if len(got) != 1 || got[userIDKey] != "dave" {
		t.Fatalf("identity = %v", got)
	}
}

// TestIdentityInWebhookBody: the connect, event and disconnect calls carry
// the identity; the user id without any template naming it.
func TestIdentityInWebhookBody(t *testing.T) {
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) { return 200, map[string]any{} })
	h := &Handler{
		Name: "identity-webhook",
		Join: []string{"tenant-{http.vars.tenant}"},
		Webhook: &Webhook{
			Secret:     testWebhookSecret,
			Connect:    b.url("/connect"),
			Disconnect: b.url("/disconnect"),
		},
	}
	base := serveBehindAuth(t, h)
	c := dialHeader(t, base, nil, basicAuth("erin"))
	c.ConnectSocket("")
	c.Close()
	calls := b.waitCalls(2)
	for _, call := range calls {
		id, _ := call.Body["identity"].(map[string]any)
		if len(id) != 2 || id["http.auth.user.id"] != "erin" || id["http.vars.tenant"] != "acme" {
			t.Fatalf("%s: identity %v", call.Path, call.Body["identity"])
		}
	}
}

// TestIdentityInAllowRoomsIsLiteral: a user id holding a glob character
// matches only itself in an allow_rooms pattern.
func TestIdentityInAllowRoomsIsLiteral(t *testing.T) {
	p := &policy{allowRooms: []string{"private-{http.auth.user.id}"}, maxRoom: 128}
	v := &socketView{ID: "x", Namespace: "/", Identity: identity{userIDKey: "*"}}
	if p.roomAllowed(v, "private-bob") {
		t.Fatal(`user "*" may join another user's room`)
	}
	if !p.roomAllowed(v, "private-*") {
		t.Fatal(`user "*" may not join its own room`)
	}
	if p.roomAllowed(&socketView{ID: "x", Namespace: "/"}, "private-") {
		t.Fatal("a socket without a user may join private-")
	}
}

// TestIdentityHandshakeWithSidLookalike: a handshake whose query merely
// has a parameter whose name ends in "sid" (xsid=1) is still a handshake, and its
// identity is captured.
func TestIdentityHandshakeWithSidLookalike(t *testing.T) {
	h := &Handler{
		Name:     "identity-sid-lookalike",
		Join:     []string{"user-{http.auth.user.id}"},
		Announce: &Message{Event: "welcome", Text: "{http.auth.user.id} in {socketio.room}"},
	}
	base := serveBehindAuth(t, h)
	c := dialHeader(t, base, url.Values{"xsid": {"1"}}, basicAuth("alice"))
	c.ConnectSocket("")
	c.Expect(`42["welcome","alice in user-alice"]`)
}
