package emitapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// testServer is a plain realtime.Server and its emit API side by side on
// one httptest server: the engine at /socket.io/, the API under
// /internal/socketio/. A socket of the main namespace joins room-<room>
// and keeps user and info of its handshake query in its data, for the
// Subject and Data accessors.
type testServer struct {
	srv *realtime.Server
	ws  string // the engine's WebSocket URL, without a query
	api string // the API's base URL, ending in /
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	srv := realtime.NewServer(realtime.Options{Logger: zap.NewNop()})
	srv.Of("/").Use(func(s *realtime.Socket) error {
		q := s.Handshake().Query
		if r := q.Get("room"); r != "" {
			if err := s.Join("room-" + r); err != nil {
				return err
			}
		}
		if u := q.Get("user"); u != "" {
			s.Set("user", u)
		}
		if i := q.Get("info"); i != "" {
			s.Set("info", map[string]any{"info": i})
		}
		return nil
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	mux.Handle("/internal/socketio/", New(srv, opts))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &testServer{
		srv: srv,
		ws:  "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket",
		api: hs.URL + "/internal/socketio/",
	}
}

// rawClient speaks Engine.IO v4 and Socket.IO v5 over WebSocket by hand.
// It answers pings by itself.
type rawClient struct {
	t    *testing.T
	conn *websocket.Conn
}

// dial opens an Engine.IO session with query added to the handshake.
func (ts *testServer) dial(t *testing.T, query url.Values) *rawClient {
	t.Helper()
	u := ts.ws
	if len(query) > 0 {
		u += "&" + query.Encode()
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", u, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &rawClient{t: t, conn: conn}
	c.expectPrefix("0{")
	return c
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("writing %q: %v", s, err)
	}
}

// read returns the next frame that is not a ping.
func (c *rawClient) read() string {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for range 100 {
		_ = c.conn.SetReadDeadline(deadline)
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("reading: %v", err)
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

func (c *rawClient) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("got frame %q, want %q", got, want)
	}
}

func (c *rawClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.read()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got frame %q, want prefix %q", got, prefix)
	}
	return got
}

// connect connects the main namespace and returns the socket id.
func (c *rawClient) connect() string {
	c.t.Helper()
	c.send("40")
	got := c.expectPrefix(`40{"sid":"`)
	var v struct{ Sid string }
	if err := json.Unmarshal([]byte(got[2:]), &v); err != nil {
		c.t.Fatal(err)
	}
	return v.Sid
}

// call makes one request and decodes the JSON answer, checking the
// headers every answer has.
func call(t *testing.T, method, u, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s %s: %s %q, want %q", method, u, h, got, want)
		}
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s %s: answer %q is not a JSON object: %v", method, u, raw, err)
	}
	return resp.StatusCode, out, resp.Header
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestErrors: every refused request gets its status and a message saying
// what is wrong (moved from the root's TestAPIAuthAndErrors, whose bearer
// cases stay there).
func TestErrors(t *testing.T) {
	t.Parallel() // its server's Close waits out net/http's 500 ms after the 413: overlaps with the others
	ts := newTestServer(t, Options{MaxBody: 200})
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"ok", "POST", "emit", `{"event":"x"}`, 200, ""},
		{"unknown endpoint", "POST", "shout", `{}`, 404, `unknown endpoint "shout" (want emit, join, leave, disconnect, sockets, rooms or presence)`},
		{"GET emit", "GET", "emit", ``, 405, "emit takes POST, not GET"},
		{"POST sockets", "POST", "sockets", `{}`, 405, "sockets takes GET"},
		{"empty body", "POST", "emit", ``, 400, "empty body"},
		{"array body", "POST", "emit", `[]`, 400, "bad JSON body"},
		{"not JSON", "POST", "join", `rooms=a`, 400, "bad JSON body"},
		{"unknown field", "POST", "emit", `{"event":"x","room":"a"}`, 400, `unknown field "room"`},
		{"field of another endpoint", "POST", "join", `{"rooms":["a"],"event":"x"}`, 400, `unknown field "event"`},
		{"trailing data", "POST", "emit", `{"event":"x"} {}`, 400, "data after the object"},
		{"no event", "POST", "emit", `{"args":[1]}`, 400, "event: an event name is needed"},
		{"reserved event", "POST", "emit", `{"event":"disconnect"}`, 400, `"disconnect" is reserved`},
		{"args not array", "POST", "emit", `{"event":"x","args":{"a":1}}`, 400, "bad JSON body"},
		{"to not array", "POST", "emit", `{"event":"x","to":"room"}`, 400, "bad JSON body: json: cannot unmarshal string into Go struct field emitRequest.apiTarget.to of type []string"},
		{"empty room", "POST", "emit", `{"event":"x","to":[""]}`, 400, "to: empty room name"},
		{"empty except room", "GET", "sockets?except=", ``, 400, "except: empty room name"},
		{"timeout without ack", "POST", "emit", `{"event":"x","timeout":"1s"}`, 400, `only with "ack": true`},
		{"bad timeout", "POST", "emit", `{"event":"x","ack":true,"timeout":"soon"}`, 400, "timeout"},
		{"timeout too long", "POST", "emit", `{"event":"x","ack":true,"timeout":"2m"}`, 400, "at most 1m0s"},
		{"timeout in ms too long", "POST", "emit", `{"event":"x","ack":true,"timeout":1e300}`, 400, "timeout: want a duration string or milliseconds, got 1e300"},
		{"join without rooms", "POST", "join", `{"to":["a"]}`, 400, "rooms: at least one room"},
		{"namespace without slash", "POST", "emit", `{"namespace":"chat","event":"x"}`, 400, `"chat" must start with /`},
		{"unknown namespace", "POST", "emit", `{"namespace":"/nope","event":"x"}`, 404, `unknown namespace "/nope"`},
		{"unknown namespace GET", "GET", "rooms?namespace=/nope", ``, 404, `unknown namespace "/nope"`},
		{"body too large", "POST", "emit", `{"event":"x","args":["` + strings.Repeat("a", 300) + `"]}`, 413, "body larger than 200 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out, hdr := call(t, tc.method, ts.api+tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, out, tc.status)
			}
			if tc.want == "" {
				if out["ok"] != true {
					t.Fatalf("answer %v", out)
				}
				return
			}
			msg, _ := out["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not contain %q", msg, tc.want)
			}
			if tc.status == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	t.Run("too many rooms", func(t *testing.T) {
		rooms := make([]string, MaxRooms+1)
		for i := range rooms {
			rooms[i] = "r" + strconv.Itoa(i)
		}
		big := newTestServer(t, Options{})
		body := mustJSON(t, map[string]any{"to": []string{"a"}, "rooms": rooms})
		status, out, _ := call(t, "POST", big.api+"join", body)
		if status != 400 || out["error"] != "rooms: more than 1000 rooms" {
			t.Fatalf("%d %v", status, out)
		}
	})
}

// TestDefaultMaxBody: without Options.MaxBody a body is bounded by
// DefaultMaxBody.
func TestDefaultMaxBody(t *testing.T) {
	h := New(realtime.NewServer(realtime.Options{Logger: zap.NewNop()}), Options{})
	pad := strings.Repeat("a", DefaultMaxBody)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/emit", strings.NewReader(`{"event":"x","args":["`+pad+`"]}`)))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body larger than 1048576 bytes") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
}

// TestWriteError: what a front (authentication, a missing server) writes
// looks like every other answer.
func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusForbidden, `wrong <secret> "x"`)
	if rec.Code != 403 || rec.Body.String() != `{"error":"wrong <secret> \"x\""}`+"\n" ||
		rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

// TestRoute: the endpoint is the last segment of the path as Caddy's path
// matcher sees it (cleaned, lowercased); the root's
// TestAPIRouteAsCaddySeesIt checks Route against Caddy's own cleaning.
func TestRoute(t *testing.T) {
	cases := []struct{ path, want string }{
		{"/api/emit", "emit"},
		{"/api/emit/", "emit"},
		{"/api/EMIT", "emit"},
		{"/api/emit/.", "emit"},
		{"/api/sockets/../emit", "emit"},
		{"/api/emit/..", "api"},
		{"/api/%2e%2e/rooms", "rooms"},
		{"/api//rooms//", "rooms"},
		{"/", "."},
		{"", "."},
		{"/../../emit", "emit"},
	}
	for _, tc := range cases {
		u, err := url.Parse("http://x" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Route(u.Path); got != tc.want {
			t.Errorf("Route(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/a/b/", "/a/b/"}, {"/a//b", "/a/b"}, {"/a/./b/../c/", "/a/c/"}, {"/", "/"}, {"//", "/"}, {"", "."}, {"a/", "a/"},
	} {
		if got := cleanPath(tc.in); got != tc.want {
			t.Errorf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestParseDuration: Caddy's duration syntax and errors, as
// caddy.ParseDuration has them (the root's TestAPITimeoutAsCaddyParses
// compares the two on many inputs).
func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"1.5s", 1500 * time.Millisecond, ""},
		{"0.0001d", 8640 * time.Millisecond, ""},
		{"1h1d", 25 * time.Hour, ""},
		{"1d1d", 48 * time.Hour, ""},
		{"0.5000d1d", 0, `time: unknown unit "d" in duration "12h1d"`},
		{"d", 0, `strconv.ParseFloat: parsing "": invalid syntax`},
		{"1xd", 0, `strconv.ParseFloat: parsing "1x": invalid syntax`},
		{"soon", 0, `time: invalid duration "soon"`},
		{strings.Repeat("1", 1025), 0, "parsing duration: input string too long"},
	} {
		got, err := parseDuration(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseDuration(%.20q): %v, %v, want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestSocketsSubjectAndData: GET .../sockets lists what the accessors read
// from a socket, and nothing when they are not given.
func TestSocketsSubjectAndData(t *testing.T) {
	subject := func(info realtime.SocketInfo) string { s, _ := info.Data["user"].(string); return s }
	data := func(info realtime.SocketInfo) any { return info.Data["info"] }
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"accessors", Options{Subject: subject, Data: data}},
		{"none", Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.opts)
			a := ts.dial(t, url.Values{"user": {"alice"}, "info": {"x"}})
			sa := a.connect()
			b := ts.dial(t, nil)
			sb := b.connect()
			status, out, _ := call(t, "GET", ts.api+"sockets", "")
			socks, _ := out["sockets"].([]any)
			if status != 200 || len(socks) != 2 {
				t.Fatalf("%d %v", status, out)
			}
			byID := map[string]map[string]any{}
			for _, s := range socks {
				m := s.(map[string]any)
				byID[m["id"].(string)] = m
			}
			if len(byID[sb]) != 5 { // id, namespace, rooms, transport, address
				t.Errorf("socket without data listed as %v", byID[sb])
			}
			got := byID[sa]
			if tc.opts.Subject == nil {
				if _, ok := got["subject"]; ok {
					t.Errorf("subject listed without an accessor: %v", got)
				}
				if _, ok := got["data"]; ok {
					t.Errorf("data listed without an accessor: %v", got)
				}
				return
			}
			if got["subject"] != "alice" || mustJSON(t, got["data"]) != `{"info":"x"}` {
				t.Errorf("socket listed as %v", got)
			}
		})
	}
}

// TestEmitJoinLeaveDisconnect drives every endpoint against live sockets
// (moved from the root, where it ran through the Caddy module).
func TestEmitJoinLeaveDisconnect(t *testing.T) {
	t.Parallel() // waits on an ack timeout: overlaps with the others
	ts := newTestServer(t, Options{})
	a := ts.dial(t, url.Values{"room": {"1"}})
	sa := a.connect()
	b := ts.dial(t, url.Values{"room": {"1"}})
	sb := b.connect()
	c := ts.dial(t, url.Values{"room": {"2"}})
	sc := c.connect()
	api := ts.api
	post := func(endpoint, body string) map[string]any {
		t.Helper()
		status, out, _ := call(t, "POST", api+endpoint, body)
		if status != 200 || out["ok"] != true {
			t.Fatalf("POST %s %s: %d %v", endpoint, body, status, out)
		}
		return out
	}
	// marker proves, by arriving first, that nothing else arrived before.
	marker := func(label string, clients ...*rawClient) {
		t.Helper()
		post("emit", `{"event":"marker","args":["`+label+`"]}`)
		for _, cl := range clients {
			cl.expect(`42["marker","` + label + `"]`)
		}
	}

	t.Run("emit to a room", func(t *testing.T) {
		post("emit", `{"event":"news","args":["hello",{"n":1}],"to":["room-1"]}`)
		a.expect(`42["news","hello",{"n":1}]`)
		b.expect(`42["news","hello",{"n":1}]`)
		marker("1", a, b, c)
	})
	t.Run("emit except and to a socket id", func(t *testing.T) {
		post("emit", `{"event":"all-but","except":["room-1"],"volatile":true}`)
		c.expect(`42["all-but"]`)
		post("emit", `{"event":"just-you","to":["`+sb+`"]}`)
		b.expect(`42["just-you"]`)
		marker("2", a, b, c)
	})
	t.Run("emit with acks", func(t *testing.T) {
		done := make(chan map[string]any, 1)
		go func() {
			_, out, _ := call(t, "POST", api+"emit", `{"event":"ask","args":[7],"to":["room-1"],"ack":true,"timeout":2000}`)
			done <- out
		}()
		for i, cl := range []*rawClient{a, b} {
			got := cl.expectPrefix(`42`)
			id, payload, _ := strings.Cut(strings.TrimPrefix(got, "42"), "[")
			if payload != `"ask",7]` {
				t.Fatalf("client got %q", got)
			}
			cl.send(`43` + id + `["yes",` + strconv.Itoa(i) + `]`)
		}
		select {
		case out := <-done:
			if out["timed_out"] != false {
				t.Fatalf("answer %v", out)
			}
			replies := out["replies"].([]any)
			got := []string{mustJSON(t, replies[0]), mustJSON(t, replies[1])}
			slices.Sort(got)
			if len(replies) != 2 || got[0] != `["yes",0]` || got[1] != `["yes",1]` {
				t.Fatalf("replies %v", replies)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no answer")
		}
	})
	t.Run("emit with acks times out with the replies so far", func(t *testing.T) {
		done := make(chan map[string]any, 1)
		start := time.Now()
		go func() {
			_, out, _ := call(t, "POST", api+"emit", `{"event":"ask","to":["room-1"],"ack":true,"timeout":"300ms"}`)
			done <- out
		}()
		got := a.expectPrefix(`42`)
		id, _, _ := strings.Cut(strings.TrimPrefix(got, "42"), "[")
		a.send(`43` + id + `["only me"]`)
		b.expectPrefix(`42`) // b never answers
		select {
		case out := <-done:
			if out["timed_out"] != true || mustJSON(t, out["replies"]) != `[["only me"]]` {
				t.Fatalf("answer %v", out)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Fatalf("answered after %v, before the timeout", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no answer")
		}
	})
	t.Run("join and leave", func(t *testing.T) {
		post("join", `{"to":["`+sa+`","`+sc+`"],"rooms":["vip","staff"]}`)
		status, out, _ := call(t, "GET", api+"rooms?namespace=/", "")
		if status != 200 || mustJSON(t, out["rooms"]) != `[{"name":"room-1","size":2},{"name":"room-2","size":1},{"name":"staff","size":2},{"name":"vip","size":2}]` {
			t.Fatalf("rooms: %d %v", status, out)
		}
		post("emit", `{"event":"vip-only","to":["vip"]}`)
		a.expect(`42["vip-only"]`)
		c.expect(`42["vip-only"]`)
		marker("3", a, b, c)
		post("leave", `{"to":["room-2"],"rooms":["vip"]}`)
		status, out, _ = call(t, "GET", api+"sockets?room=vip&room=staff&except=room-1", "")
		if status != 200 {
			t.Fatalf("sockets: %d %v", status, out)
		}
		socks := out["sockets"].([]any)
		if len(socks) != 1 {
			t.Fatalf("sockets %v", socks)
		}
		s := socks[0].(map[string]any)
		if s["id"] != sc || mustJSON(t, s["rooms"]) != `["room-2","staff"]` || s["transport"] != "websocket" ||
			!strings.HasPrefix(s["address"].(string), "127.0.0.1:") || s["namespace"] != "/" {
			t.Fatalf("socket %v", s)
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		post("disconnect", `{"to":["room-2"]}`)
		c.expect(`41`)
		_, out, _ := call(t, "GET", api+"sockets", "")
		if n := len(out["sockets"].([]any)); n != 2 {
			t.Fatalf("%d sockets after disconnecting one", n)
		}
		marker("4", a, b)
		post("disconnect", `{"to":["`+sa+`"],"close":true}`)
		a.expect(`41`)
		_ = a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 10 {
			if _, data, err := a.conn.ReadMessage(); err != nil {
				break
			} else if string(data) != "1" && string(data) != "2" {
				t.Fatalf("frame %q after close", data)
			}
		}
		marker("5", b)
	})
}

// TestAckRequestEnds: an emit with acks whose request ends before the
// replies answers 503, and the handler returns.
func TestAckRequestEnds(t *testing.T) {
	ts := newTestServer(t, Options{})
	a := ts.dial(t, nil)
	a.connect()
	h := New(ts.srv, Options{})
	req := httptest.NewRequest("POST", "/emit", strings.NewReader(`{"event":"ask","ack":true,"timeout":"30s"}`))
	ctx, cancel := context.WithCancel(req.Context())
	rec := httptest.NewRecorder()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.ServeHTTP(rec, req.WithContext(ctx))
	}()
	a.expectPrefix(`42`) // the question; never answered
	cancel()
	wg.Wait()
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "request ended before the replies: context canceled") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
}

// TestPresenceListing: GET presence lists the users of the selected
// sockets, sorted and each once, sockets without a user left out; 404
// without the accessor.
func TestPresenceListing(t *testing.T) {
	user := func(info realtime.SocketInfo) string { s, _ := info.Data["user"].(string); return s }
	ts := newTestServer(t, Options{Presence: user})
	for _, u := range []string{"bob", "alice", "bob", ""} {
		c := ts.dial(t, url.Values{"user": {u}})
		c.connect()
	}
	status, out, _ := call(t, "GET", ts.api+"presence?namespace=/", "")
	if status != 200 || mustJSON(t, out["users"]) != `["alice","bob"]` {
		t.Fatalf("presence: %d %v", status, out)
	}
	status, out, _ = call(t, "GET", ts.api+"presence?namespace=/&room=nobody-here", "")
	if status != 200 || mustJSON(t, out["users"]) != `[]` {
		t.Fatalf("presence of an empty room: %d %v", status, out)
	}
	none := newTestServer(t, Options{})
	if status, _, _ := call(t, "GET", none.api+"presence?namespace=/", ""); status != 404 {
		t.Fatalf("presence without an accessor: %d, want 404", status)
	}
	if status, _, _ := call(t, "POST", ts.api+"presence", "{}"); status != 405 {
		t.Fatalf("POST presence: %d, want 405", status)
	}
}
