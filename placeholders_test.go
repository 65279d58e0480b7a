package socketio

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

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
