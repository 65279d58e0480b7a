//go:build live

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// adminITCall makes one request to the admin endpoint of a running Caddy
// and decodes its JSON answer into out.
func adminITCall(t *testing.T, c *caddyProc, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, body %q", method, path, ct, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, body, err)
	}
	return resp.StatusCode
}

type adminITSocket struct {
	ID             string   `json:"id"`
	Namespace      string   `json:"namespace"`
	Transport      string   `json:"transport"`
	Address        string   `json:"address"`
	Rooms          []string `json:"rooms"`
	Subject        string   `json:"subject"`
	ConnectedSince string   `json:"connected_since"`
}

type adminITPage struct {
	Namespace string          `json:"namespace"`
	Total     int             `json:"total"`
	Sockets   []adminITSocket `json:"sockets"`
	Next      string          `json:"next"`
}

// TestAdminAPILive drives the admin routes through a real Caddy's admin
// endpoint (the example config, which configures nothing for them): the
// listings hold exactly the clients connected, a disconnect reaches the
// client, and a reload keeps the hub and its sockets listed.
func TestAdminAPILive(t *testing.T) {
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c := startCaddy(t, sc)
	base := c.BaseURL + "/socket.io/"
	connect := func(sub, room string) (*testkit.WS, string) {
		ws := testkit.DialWS(t, base, url.Values{"roomNumber": {room}}, nil)
		t.Cleanup(ws.Close)
		payload, _ := json.Marshal(map[string]string{"token": testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": sub})})
		id := ws.ConnectSocket(string(payload))
		ws.ExpectPrefix(`42["room-userId"`)
		ws.ExpectPrefix(`42["message_from_server"`)
		return ws, id
	}
	alice, aliceID := connect("alice", "1")
	_, bobID := connect("bob", "1")
	poll := testkit.OpenPolling(t, base, url.Values{"roomNumber": {"2"}}, nil)
	payload, _ := json.Marshal(map[string]string{"token": testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": "carol"})})
	poll.MustPost("40" + string(payload))
	poll.ReadUntil(`42["message_from_server"`, 10*time.Second)

	var hubs struct {
		Hubs []struct {
			Name        string `json:"name"`
			AdminPath   string `json:"admin_path"`
			Connections int    `json:"connections"`
			Sockets     int    `json:"sockets"`
		} `json:"hubs"`
	}
	if code := adminITCall(t, c, http.MethodGet, "/socketio/hubs", &hubs); code != http.StatusOK {
		t.Fatalf("GET /socketio/hubs: %d", code)
	}
	if len(hubs.Hubs) != 1 || hubs.Hubs[0].Name != "/socket.io/" || hubs.Hubs[0].AdminPath != "/socketio/hubs/%2Fsocket.io%2F" ||
		hubs.Hubs[0].Connections != 3 || hubs.Hubs[0].Sockets != 3 {
		t.Fatalf("hubs: %+v", hubs.Hubs)
	}

	wantDetail := `{"name":"/socket.io/","connections":3,"sockets":3,"namespaces":[{"name":"/","sockets":3,"room_count":2,` +
		`"rooms":[{"name":"room-userId-1","size":2},{"name":"room-userId-2","size":1}]}]}`
	var detail json.RawMessage
	for _, p := range []string{hubs.Hubs[0].AdminPath, "/socketio/hubs/default"} {
		if code := adminITCall(t, c, http.MethodGet, p, &detail); code != http.StatusOK || string(detail) != wantDetail {
			t.Fatalf("GET %s: %d %s\nwant %s", p, code, detail, wantDetail)
		}
	}
	var rooms json.RawMessage
	wantRooms := `{"namespace":"/","total":2,"rooms":[{"name":"room-userId-2","size":1}]}`
	if code := adminITCall(t, c, http.MethodGet, "/socketio/hubs/default/rooms?limit=1&after=room-userId-1", &rooms); code != http.StatusOK || string(rooms) != wantRooms {
		t.Fatalf("GET rooms: %d %s\nwant %s", code, rooms, wantRooms)
	}

	listed := func() map[string]adminITSocket {
		t.Helper()
		out := map[string]adminITSocket{}
		after := ""
		for range 10 {
			var page adminITPage
			if code := adminITCall(t, c, http.MethodGet, "/socketio/hubs/default/sockets?limit=2&after="+url.QueryEscape(after), &page); code != http.StatusOK {
				t.Fatalf("GET sockets: %d", code)
			}
			for _, s := range page.Sockets {
				out[s.ID] = s
			}
			if page.Next == "" {
				return out
			}
			after = page.Next
		}
		t.Fatal("more than 10 pages")
		return nil
	}
	got := listed()
	if len(got) != 3 {
		t.Fatalf("listed %d sockets, want 3: %+v", len(got), got)
	}
	for id, want := range map[string]struct{ sub, transport, room string }{
		aliceID: {"alice", "websocket", "room-userId-1"},
		bobID:   {"bob", "websocket", "room-userId-1"},
	} {
		s := got[id]
		if s.Subject != want.sub || s.Transport != want.transport || !slices.Equal(s.Rooms, []string{want.room}) ||
			!strings.HasPrefix(s.Address, "127.0.0.1:") {
			t.Errorf("socket %s: %+v, want %+v", id, s, want)
		}
		if _, err := time.Parse(time.RFC3339, s.ConnectedSince); err != nil {
			t.Errorf("socket %s: connected_since: %v", id, err)
		}
	}
	var carol adminITSocket
	for id, s := range got {
		if id != aliceID && id != bobID {
			carol = s
		}
	}
	if carol.Subject != "carol" || carol.Transport != "polling" || !slices.Equal(carol.Rooms, []string{"room-userId-2"}) {
		t.Errorf("polling socket: %+v", carol)
	}

	// A reload (forced: the same config) swaps the handler; the hub and
	// its sockets stay, and so does the listing.
	c.Reload(sc, true)
	if code := adminITCall(t, c, http.MethodGet, "/socketio/hubs/default", &detail); code != http.StatusOK || string(detail) != wantDetail {
		t.Fatalf("after a reload: %d %s\nwant %s", code, detail, wantDetail)
	}

	var done map[string]any
	if code := adminITCall(t, c, http.MethodPost, "/socketio/hubs/default/sockets/"+aliceID+"/disconnect", &done); code != http.StatusOK || done["disconnected"] != true {
		t.Fatalf("disconnect: %d %v", code, done)
	}
	// Alice has the announce of Bob's join queued before the DISCONNECT.
	for f := alice.Read(); f != "41"; f = alice.Read() {
		if !strings.HasPrefix(f, `42["room-userId"`) {
			t.Fatalf("alice got %q, want the DISCONNECT 41", f)
		}
	}
	if got := listed(); len(got) != 2 || got[aliceID].ID != "" {
		t.Fatalf("after the disconnect: %+v", got)
	}

	var apiErr struct {
		Error string `json:"error"`
	}
	for _, c2 := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodPost, "/socketio/hubs/default/sockets/" + aliceID + "/disconnect", http.StatusNotFound, "no socket"},
		{http.MethodGet, "/socketio/hubs/nope", http.StatusNotFound, "no running socket.io hub"},
		{http.MethodGet, "/socketio/hubs/default/sockets/" + bobID + "/disconnect", http.StatusMethodNotAllowed, "not allowed"},
		{http.MethodGet, "/socketio/hubs/default/sockets?limit=1001", http.StatusBadRequest, "from 1 to 1000"},
	} {
		apiErr.Error = ""
		if code := adminITCall(t, c, c2.method, c2.path, &apiErr); code != c2.status || !strings.Contains(apiErr.Error, c2.msg) {
			t.Errorf("%s %s: %d %q, want %d with %q", c2.method, c2.path, code, apiErr.Error, c2.status, c2.msg)
		}
	}
}
