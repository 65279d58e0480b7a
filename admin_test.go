package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

// adminMux mounts the AdminAPI's routes as Caddy's admin endpoint does: on
// an http.ServeMux, an error answered as {"error": ...} with its status.
func adminMux(t *testing.T) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	for _, route := range (AdminAPI{}).Routes() {
		h := route.Handler
		mux.Handle(route.Pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := h.ServeHTTP(w, r)
			if err == nil {
				return
			}
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) {
				apiErr = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
			}
			if apiErr.Message == "" && apiErr.Err != nil {
				apiErr.Message = apiErr.Err.Error()
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(apiErr.HTTPStatus)
			_ = json.NewEncoder(w).Encode(apiErr)
		}))
	}
	return mux
}

// adminDo makes one admin request (target is a path with its query) and
// decodes the JSON answer into out when out is not nil.
func adminDo(t *testing.T, method, target string, out any) (int, string, http.Header) {
	t.Helper()
	w := httptest.NewRecorder()
	adminMux(t).ServeHTTP(w, httptest.NewRequest(method, target, nil))
	body := w.Body.String()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q (body %q)", method, target, ct, body)
	}
	if out != nil && w.Code == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, target, body, err)
		}
	}
	return w.Code, body, w.Header()
}

// adminGet is adminDo for a GET that must succeed.
func adminGet(t *testing.T, target string, out any) {
	t.Helper()
	if code, body, _ := adminDo(t, http.MethodGet, target, out); code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, code, body)
	}
}

// adminExpectError checks an error answer: its status and its message.
func adminExpectError(t *testing.T, method, target string, status int, msg string) http.Header {
	t.Helper()
	code, body, hdr := adminDo(t, method, target, nil)
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("%s %s: error body %q: %v", method, target, body, err)
	}
	if code != status || !strings.Contains(e.Error, msg) {
		t.Fatalf("%s %s: %d %q, want %d with %q", method, target, code, e.Error, status, msg)
	}
	return hdr
}

// adminHandler is a hub with two namespaces, optional auth, a join rule
// on the roomNumber query and a welcome emitted after the joins (so a
// client that read it knows its rooms are joined).
func adminHandler(name string) *Handler {
	return &Handler{
		Name:       name,
		Namespaces: []string{"/", "/chat"},
		Auth:       &AuthConfig{Mode: AuthOptional, Secret: testSecret},
		Join:       []string{"room-{socketio.query.roomNumber}"},
		Emit:       &Message{Event: "welcome", Text: "hi"},
	}
}

// connectMain connects a client to the main namespace and waits for the
// welcome.
func connectMain(t *testing.T, base string, query url.Values, payload string) (*wsClient, string) {
	t.Helper()
	c := dial(t, base, query)
	t.Cleanup(c.Close)
	id := c.ConnectSocket(payload)
	c.ExpectPrefix(`42["welcome"`)
	return c, id
}

type adminSocketList struct {
	Namespace string        `json:"namespace"`
	Total     int           `json:"total"`
	Sockets   []adminSocket `json:"sockets"`
	Next      string        `json:"next"`
}

func TestAdminListsHubsNamespacesRoomsAndSockets(t *testing.T) {
	base, _ := serve(t, adminHandler("admin/list"))
	before := time.Now().UTC().Add(-time.Second)

	alice, aliceID := connectMain(t, base, url.Values{"roomNumber": {"1"}},
		mustJSON(t, map[string]string{"token": token(t, jwt.MapClaims{"sub": "alice"})}))
	_, bobID := connectMain(t, base, url.Values{"roomNumber": {"1"}}, "")
	_, carolID := connectMain(t, base, url.Values{"roomNumber": {"2"}}, "")
	// The fourth connection only joins /chat, with no room number (the
	// join rule is then skipped).
	dave := dial(t, base, nil)
	t.Cleanup(dave.Close)
	dave.Send("40/chat,")
	dave.ExpectPrefix(`40/chat,{"sid":"`)
	dave.ExpectPrefix(`42/chat,["welcome"`)
	// Alice also joins /chat on her connection, with her token: a
	// socket's subject is that of its own CONNECT.
	alice.Send("40/chat," + mustJSON(t, map[string]string{"token": token(t, jwt.MapClaims{"sub": "alice"})}))
	alice.ExpectPrefix(`40/chat,{"sid":"`)
	alice.ExpectPrefix(`42/chat,["welcome"`)

	var list struct {
		Hubs []adminHubSummary `json:"hubs"`
	}
	adminGet(t, "/socketio/hubs", &list)
	want := []adminHubSummary{{Name: "admin/list", AdminPath: "/socketio/hubs/admin%2Flist", Connections: 4, Sockets: 5}}
	if !slices.Equal(list.Hubs, want) {
		t.Fatalf("hubs: %+v, want %+v", list.Hubs, want)
	}

	var detail adminHubDetail
	adminGet(t, want[0].AdminPath, &detail)
	wantDetail := adminHubDetail{Name: "admin/list", Connections: 4, Sockets: 5, Namespaces: []adminNamespace{
		{Name: "/", Sockets: 3, RoomCount: 2, Rooms: []adminRoom{{Name: "room-1", Size: 2}, {Name: "room-2", Size: 1}}},
		{Name: "/chat", Sockets: 2, RoomCount: 1, Rooms: []adminRoom{{Name: "room-1", Size: 1}}},
	}}
	if got, w := mustJSON(t, detail), mustJSON(t, wantDetail); got != w {
		t.Fatalf("detail:\n got %s\nwant %s", got, w)
	}

	var page adminSocketList
	adminGet(t, want[0].AdminPath+"/sockets", &page)
	if page.Namespace != "/" || page.Total != 3 || page.Next != "" || len(page.Sockets) != 3 {
		t.Fatalf("sockets page: %+v", page)
	}
	wantRooms := map[string][]string{aliceID: {"room-1"}, bobID: {"room-1"}, carolID: {"room-2"}}
	var ids []string
	for _, s := range page.Sockets {
		ids = append(ids, s.ID)
		if !slices.Equal(s.Rooms, wantRooms[s.ID]) {
			t.Errorf("socket %s: rooms %q, want %q", s.ID, s.Rooms, wantRooms[s.ID])
		}
		if s.Namespace != "/" || s.Transport != "websocket" || !strings.HasPrefix(s.Address, "127.0.0.1:") {
			t.Errorf("socket %+v: want namespace /, websocket, a loopback address", s)
		}
		if wantSub := map[bool]string{true: "alice"}[s.ID == aliceID]; s.Subject != wantSub {
			t.Errorf("socket %s: subject %q, want %q", s.ID, s.Subject, wantSub)
		}
		if s.ConnectedSince.Before(before) || s.ConnectedSince.After(time.Now().UTC()) || s.ConnectedSince.Location() != time.UTC {
			t.Errorf("socket %s: connected_since %v", s.ID, s.ConnectedSince)
		}
	}
	wantIDs := []string{aliceID, bobID, carolID}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("sockets %q, want %q in id order", ids, wantIDs)
	}

	// The raw JSON: RFC 3339 times, the id-room left out, no subject when
	// the socket had no token.
	_, body, _ := adminDo(t, http.MethodGet, want[0].AdminPath+"/sockets?namespace=%2Fchat", nil)
	var raw struct {
		Sockets []map[string]any `json:"sockets"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Sockets) != 2 {
		t.Fatalf("/chat sockets: %s", body)
	}
	for _, s := range raw.Sockets {
		if _, err := time.Parse(time.RFC3339, s["connected_since"].(string)); err != nil {
			t.Errorf("connected_since %v: %v", s["connected_since"], err)
		}
		if s["namespace"] != "/chat" {
			t.Errorf("socket %v: namespace", s)
		}
		// Alice's /chat socket is in room-1 and has her subject; Dave's
		// has no room and no subject field.
		wantRooms, wantSub := "[]", any(nil)
		if s["subject"] != nil {
			wantRooms, wantSub = `["room-1"]`, "alice"
		}
		if mustJSON(t, s["rooms"]) != wantRooms || s["subject"] != wantSub {
			t.Errorf("socket %v: want rooms %s, subject %v", s, wantRooms, wantSub)
		}
	}
	if got := mustJSON(t, []any{raw.Sockets[0]["subject"], raw.Sockets[1]["subject"]}); !strings.Contains(got, `"alice"`) || !strings.Contains(got, "null") {
		t.Errorf("/chat subjects %s, want alice's and none", got)
	}
}

func TestAdminSocketsPaging(t *testing.T) {
	base, _ := serve(t, adminHandler("admin-paging"))
	var ids []string
	for range 7 {
		_, id := connectMain(t, base, nil, "")
		ids = append(ids, id)
	}
	slices.Sort(ids)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("more than 3 pages of 3 for 7 sockets")
		}
		var page adminSocketList
		adminGet(t, "/socketio/hubs/admin-paging/sockets?limit=3&after="+url.QueryEscape(after), &page)
		if page.Total != 7 {
			t.Fatalf("total %d, want 7", page.Total)
		}
		wantLen := min(3, 7-len(got))
		if len(page.Sockets) != wantLen {
			t.Fatalf("page after %q: %d sockets, want %d", after, len(page.Sockets), wantLen)
		}
		for _, s := range page.Sockets {
			got = append(got, s.ID)
		}
		if page.Next == "" {
			break
		}
		if page.Next != got[len(got)-1] {
			t.Fatalf("next %q, want the page's last id %q", page.Next, got[len(got)-1])
		}
		after = page.Next
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pages listed %q, want %q", got, ids)
	}

	// after need not be a listed id: the page starts at the next id.
	var page adminSocketList
	adminGet(t, "/socketio/hubs/admin-paging/sockets?limit=1000&after="+url.QueryEscape(ids[2][:len(ids[2])-1]), &page)
	if len(page.Sockets) != 5 || page.Sockets[0].ID != ids[2] || page.Next != "" {
		t.Fatalf("after a prefix of %q: %+v", ids[2], page)
	}
	adminGet(t, "/socketio/hubs/admin-paging/sockets?after=~", &page)
	if len(page.Sockets) != 0 || page.Next != "" {
		t.Fatalf("after the last id: %+v", page)
	}

	for _, bad := range []string{"0", "-1", "1001", "ten", "1e2"} {
		adminExpectError(t, http.MethodGet, "/socketio/hubs/admin-paging/sockets?limit="+bad, http.StatusBadRequest, "want a number from 1 to 1000")
	}
	adminExpectError(t, http.MethodGet, "/socketio/hubs/admin-paging/sockets?namespace=%2Fnone", http.StatusNotFound, `no namespace "/none"`)
}

// TestAdminRoomsPaging: a namespace with more rooms than a page lists the
// first DefaultAdminPageSize in the hub's detail, with the count and where
// the next page starts; GET .../rooms pages through all of them in name
// order, each with its size, and refuses a bad limit or namespace.
func TestAdminRoomsPaging(t *testing.T) {
	h := adminHandler("admin-rooms")
	base, _ := serve(t, h)
	_, id := connectMain(t, base, url.Values{"roomNumber": {"x"}}, "")
	s, ok := h.hub.server.Of("/").Socket(id)
	if !ok {
		t.Fatal("socket not found")
	}
	const n = DefaultAdminPageSize + 30
	want := []adminRoom{}
	for i := range n {
		want = append(want, adminRoom{Name: fmt.Sprintf("r%03d", i), Size: 1})
	}
	want = append(want, adminRoom{Name: "room-x", Size: 1}) // the join rule's
	for _, r := range want[:n] {
		if err := s.Join(r.Name); err != nil {
			t.Fatal(err)
		}
	}

	var detail adminHubDetail
	adminGet(t, "/socketio/hubs/admin-rooms", &detail)
	main := detail.Namespaces[0]
	if main.Name != "/" || main.RoomCount != n+1 || len(main.Rooms) != DefaultAdminPageSize ||
		main.Rooms[0] != want[0] || main.RoomsNext != want[DefaultAdminPageSize-1].Name {
		t.Fatalf("detail of /: %d rooms listed, count %d, first %v, next %q", len(main.Rooms), main.RoomCount, main.Rooms[:1], main.RoomsNext)
	}

	var got []adminRoom
	after := main.RoomsNext
	got = append(got, main.Rooms...)
	for pages := 0; after != ""; pages++ {
		if pages > 4 {
			t.Fatal("more than 4 pages of 10 for the 31 rooms after the detail's 100")
		}
		var page adminRoomPage
		adminGet(t, "/socketio/hubs/admin-rooms/rooms?limit=10&after="+url.QueryEscape(after), &page)
		if page.Namespace != "/" || page.Total != n+1 || len(page.Rooms) > 10 || len(page.Rooms) == 0 {
			t.Fatalf("page after %q: %+v", after, page)
		}
		got = append(got, page.Rooms...)
		if page.Next != "" && page.Next != page.Rooms[len(page.Rooms)-1].Name {
			t.Fatalf("next %q, want the page's last room", page.Next)
		}
		after = page.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d rooms, want %d in name order", len(got), len(want))
	}
	// A namespace with sockets and no rooms.
	c := dial(t, base, nil)
	t.Cleanup(c.Close)
	c.Send("40/chat,")
	c.ExpectPrefix(`40/chat,{"sid":"`)
	var page adminRoomPage
	adminGet(t, "/socketio/hubs/admin-rooms/rooms?namespace=%2Fchat", &page)
	if page.Namespace != "/chat" || page.Total != 0 || len(page.Rooms) != 0 || page.Next != "" {
		t.Fatalf("/chat rooms: %+v", page)
	}
	for _, bad := range []string{"0", "1001", "ten"} {
		adminExpectError(t, http.MethodGet, "/socketio/hubs/admin-rooms/rooms?limit="+bad, http.StatusBadRequest, "want a number from 1 to 1000")
	}
	adminExpectError(t, http.MethodGet, "/socketio/hubs/admin-rooms/rooms?namespace=%2Fnone", http.StatusNotFound, `no namespace "/none"`)
}

func TestAdminDisconnect(t *testing.T) {
	base, logs := serve(t, adminHandler("admin-disconnect"))
	a, aID := connectMain(t, base, nil, "")
	b, bID := connectMain(t, base, nil, "")
	b.Send("40/chat,")
	b.ExpectPrefix(`40/chat,{"sid":"`)
	b.ExpectPrefix(`42/chat,["welcome"`)

	hubPath := "/socketio/hubs/admin-disconnect"
	var out map[string]any
	if code, body, _ := adminDo(t, http.MethodPost, hubPath+"/sockets/"+aID+"/disconnect", &out); code != http.StatusOK {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	if out["disconnected"] != true || out["id"] != aID || out["namespace"] != "/" || out["close"] != false {
		t.Fatalf("disconnect answer %v", out)
	}
	a.Expect("41")
	if logs.FilterMessage("socket disconnected by the admin API").Len() != 1 {
		t.Errorf("the disconnect is not logged: %v", logs.All())
	}
	var page adminSocketList
	adminGet(t, hubPath+"/sockets", &page)
	if len(page.Sockets) != 1 || page.Sockets[0].ID != bID {
		t.Fatalf("after the disconnect: %+v, want only %s", page.Sockets, bID)
	}
	adminExpectError(t, http.MethodPost, hubPath+"/sockets/"+aID+"/disconnect", http.StatusNotFound, "no socket")
	// The id of a socket in / is not one in /chat.
	adminExpectError(t, http.MethodPost, hubPath+"/sockets/"+bID+"/disconnect?namespace=/chat", http.StatusNotFound, "no socket")
	adminExpectError(t, http.MethodPost, hubPath+"/sockets/"+bID+"/disconnect?close=maybe", http.StatusBadRequest, "close")

	// close=true disconnects every socket of the connection and closes it.
	if code, body, _ := adminDo(t, http.MethodPost, hubPath+"/sockets/"+bID+"/disconnect?close=true", &out); code != http.StatusOK {
		t.Fatalf("disconnect with close: %d %s", code, body)
	}
	first, second := b.Read(), b.Read()
	if got := []string{first, second}; !slices.Contains(got, "41") || !slices.Contains(got, "41/chat,") {
		t.Fatalf("disconnect with close: frames %q, want 41 and 41/chat,", got)
	}
	b.ExpectClosed(5 * time.Second)
	var detail adminHubDetail
	adminGet(t, hubPath, &detail)
	if detail.Sockets != 0 {
		t.Fatalf("after closing: %+v", detail)
	}
}

func TestAdminErrors(t *testing.T) {
	base, _ := serve(t, adminHandler("admin-errors"))
	_, id := connectMain(t, base, nil, "")
	hubPath := "/socketio/hubs/admin-errors"

	adminExpectError(t, http.MethodGet, "/socketio/hubs/nope", http.StatusNotFound, `no running socket.io hub "nope"`)
	adminExpectError(t, http.MethodGet, "/socketio/hubs/nope/sockets", http.StatusNotFound, "no running socket.io hub")
	adminExpectError(t, http.MethodPost, "/socketio/hubs/nope/sockets/"+id+"/disconnect", http.StatusNotFound, "no running socket.io hub")
	adminExpectError(t, http.MethodGet, "/socketio/", http.StatusNotFound, "unknown admin route")
	adminExpectError(t, http.MethodGet, "/socketio/other", http.StatusNotFound, "unknown admin route")
	adminExpectError(t, http.MethodGet, "/socketio/hubs/nope/rooms", http.StatusNotFound, "no running socket.io hub")
	adminExpectError(t, http.MethodGet, hubPath+"/members", http.StatusNotFound, "unknown admin route")
	adminExpectError(t, http.MethodGet, hubPath+"/rooms/room-1", http.StatusNotFound, "unknown admin route")
	adminExpectError(t, http.MethodGet, hubPath+"/sockets/"+id, http.StatusNotFound, "unknown admin route")

	for _, c := range []struct{ method, target, allow string }{
		{http.MethodPost, "/socketio/hubs", "GET"},
		{http.MethodDelete, hubPath, "GET"},
		{http.MethodPost, hubPath + "/sockets", "GET"},
		{http.MethodPost, hubPath + "/rooms", "GET"},
		{http.MethodGet, hubPath + "/sockets/" + id + "/disconnect", "POST"},
		{http.MethodDelete, hubPath + "/sockets/" + id + "/disconnect", "POST"},
	} {
		hdr := adminExpectError(t, c.method, c.target, http.StatusMethodNotAllowed, "not allowed")
		if hdr.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.target, hdr.Get("Allow"), c.allow)
		}
	}
	// A wrong method does not disconnect.
	var page adminSocketList
	adminGet(t, hubPath+"/sockets", &page)
	if len(page.Sockets) != 1 {
		t.Fatalf("sockets after refused requests: %+v", page)
	}
}

func TestAdminHubNames(t *testing.T) {
	for _, c := range []struct{ name, seg string }{
		{"/socket.io/", "%2Fsocket.io%2F"},
		{"chat", "chat"},
		{"a b/c?d#e%f", "a%20b%2Fc%3Fd%23e%25f"},
		{"default", "%64%65%66%61%75%6C%74"},
		{".", "%2E"},
		{"..", "%2E%2E"},
	} {
		if got := escapeHubName(c.name); got != c.seg {
			t.Errorf("escapeHubName(%q) = %q, want %q", c.name, got, c.seg)
		}
		if got, err := unescapeHubName(c.seg); err != nil || got != c.name {
			t.Errorf("unescapeHubName(%q) = %q, %v; want %q", c.seg, got, err, c.name)
		}
	}
	if got, _ := unescapeHubName("default"); got != DefaultPath {
		t.Errorf("the segment default names %q, want %q", got, DefaultPath)
	}

	// The default hub, by its escaped name and by the alias; a hub named
	// "default" by its escaped name; "." through the path cleaning of
	// the admin endpoint's mux.
	serve(t, &Handler{})
	serve(t, &Handler{Name: "default"})
	serve(t, &Handler{Name: "."})
	var list struct {
		Hubs []adminHubSummary `json:"hubs"`
	}
	adminGet(t, "/socketio/hubs", &list)
	var names []string
	for _, h := range list.Hubs {
		names = append(names, h.Name)
		var d adminHubDetail
		adminGet(t, h.AdminPath, &d)
		if d.Name != h.Name {
			t.Errorf("%s names hub %q, want %q", h.AdminPath, d.Name, h.Name)
		}
	}
	if want := []string{".", "/socket.io/", "default"}; !slices.Equal(names, want) {
		t.Fatalf("hubs %q, want %q", names, want)
	}
	var d adminHubDetail
	adminGet(t, "/socketio/hubs/default", &d)
	if d.Name != DefaultPath {
		t.Errorf("/socketio/hubs/default is %q, want %q", d.Name, DefaultPath)
	}
	adminGet(t, "/socketio/hubs/default/", &d) // a trailing slash is accepted
}
