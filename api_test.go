package socketio

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

const (
	apiSecretOld = "api-secret-old-0123456789abcdef"
	apiSecretNew = "api-secret-new-0123456789abcdef"
)

// serveAPI provisions an API for hub and serves it under /internal/.
func serveAPI(t *testing.T, a *API) string {
	t.Helper()
	if a.Secrets == nil {
		a.Secrets = []string{apiSecretOld, apiSecretNew}
	}
	if err := a.Provision(testContext(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.ServeHTTP(w, r, nil); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/internal/socketio/"
}

// apiCall makes one request and decodes the JSON answer.
func apiCall(t *testing.T, method, u, secret, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
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
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, u, ct)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s %s: answer %q is not a JSON object: %v", method, u, raw, err)
	}
	return resp.StatusCode, out, resp.Header
}

func TestAPIAuthAndErrors(t *testing.T) {
	h := &Handler{Name: "api-errors", Namespaces: []string{"/", "/chat"}}
	serve(t, h)
	base := serveAPI(t, &API{Hub: "api-errors", MaxBody: 200})
	cases := []struct {
		name, method, path, secret, body string
		status                           int
		want                             string
	}{
		{"no secret", "POST", "emit", "", `{"event":"x"}`, 401, "missing bearer secret"},
		{"basic auth", "POST", "emit", "", ``, 401, "missing bearer secret"},
		{"wrong secret", "POST", "emit", "nope", `{"event":"x"}`, 403, "wrong bearer secret"},
		{"wrong secret, prefix of a right one", "POST", "emit", apiSecretOld[:10], `{"event":"x"}`, 403, "wrong bearer secret"},
		{"old secret", "POST", "emit", apiSecretOld, `{"event":"x"}`, 200, ""},
		{"new secret", "POST", "emit", apiSecretNew, `{"event":"x"}`, 200, ""},
		{"unknown endpoint", "POST", "shout", apiSecretNew, `{}`, 404, `unknown endpoint "shout"`},
		{"GET emit", "GET", "emit", apiSecretNew, ``, 405, "emit takes POST, not GET"},
		{"POST sockets", "POST", "sockets", apiSecretNew, `{}`, 405, "sockets takes GET"},
		{"empty body", "POST", "emit", apiSecretNew, ``, 400, "empty body"},
		{"array body", "POST", "emit", apiSecretNew, `[]`, 400, "bad JSON body"},
		{"not JSON", "POST", "join", apiSecretNew, `rooms=a`, 400, "bad JSON body"},
		{"unknown field", "POST", "emit", apiSecretNew, `{"event":"x","room":"a"}`, 400, `unknown field "room"`},
		{"field of another endpoint", "POST", "join", apiSecretNew, `{"rooms":["a"],"event":"x"}`, 400, `unknown field "event"`},
		{"trailing data", "POST", "emit", apiSecretNew, `{"event":"x"} {}`, 400, "data after the object"},
		{"no event", "POST", "emit", apiSecretNew, `{"args":[1]}`, 400, "event: an event name is needed"},
		{"reserved event", "POST", "emit", apiSecretNew, `{"event":"disconnect"}`, 400, `"disconnect" is reserved`},
		{"args not array", "POST", "emit", apiSecretNew, `{"event":"x","args":{"a":1}}`, 400, "bad JSON body"},
		{"to not array", "POST", "emit", apiSecretNew, `{"event":"x","to":"room"}`, 400, "bad JSON body"},
		{"empty room", "POST", "emit", apiSecretNew, `{"event":"x","to":[""]}`, 400, "to: empty room name"},
		{"timeout without ack", "POST", "emit", apiSecretNew, `{"event":"x","timeout":"1s"}`, 400, `only with "ack": true`},
		{"bad timeout", "POST", "emit", apiSecretNew, `{"event":"x","ack":true,"timeout":"soon"}`, 400, "timeout"},
		{"timeout too long", "POST", "emit", apiSecretNew, `{"event":"x","ack":true,"timeout":"2m"}`, 400, "at most 1m0s"},
		{"join without rooms", "POST", "join", apiSecretNew, `{"to":["a"]}`, 400, "rooms: at least one room"},
		{"namespace without slash", "POST", "emit", apiSecretNew, `{"namespace":"chat","event":"x"}`, 400, `"chat" must start with /`},
		{"unknown namespace", "POST", "emit", apiSecretNew, `{"namespace":"/nope","event":"x"}`, 404, `unknown namespace "/nope"`},
		{"unknown namespace GET", "GET", "rooms?namespace=/nope", apiSecretNew, ``, 404, `unknown namespace "/nope"`},
		{"body too large", "POST", "emit", apiSecretNew, `{"event":"x","args":["` + strings.Repeat("a", 300) + `"]}`, 413, "body larger than 200 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.name == "basic auth":
				req.SetBasicAuth("user", apiSecretNew)
			case tc.secret != "":
				req.Header.Set("Authorization", "Bearer "+tc.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, out, tc.status)
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
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestAPIProvision(t *testing.T) {
	t.Setenv("SOCKETIO_TEST_API", apiSecretNew)
	t.Setenv("SOCKETIO_TEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		a    API
		want string
	}{
		{"no secrets", API{}, "at least one secret"},
		{"empty secret", API{Secrets: []string{""}}, "empty secret"},
		{"env unset", API{Secrets: []string{"{env.SOCKETIO_TEST_EMPTY}"}}, "secret 1 is empty after resolving"},
		{"negative max_body", API{Secrets: []string{"x"}, MaxBody: -1}, "max_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.a.Provision(testContext(t)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("env secret and defaults", func(t *testing.T) {
		a := &API{Secrets: []string{"{env.SOCKETIO_TEST_API}"}}
		if err := a.Provision(testContext(t)); err != nil {
			t.Fatal(err)
		}
		if a.Hub != DefaultPath || a.MaxBody != DefaultAPIMaxBody {
			t.Fatalf("hub %q max_body %d", a.Hub, a.MaxBody)
		}
		r := httptest.NewRequest("GET", "/rooms", nil)
		r.Header.Set("Authorization", "Bearer "+apiSecretNew)
		if err := a.authorize(r); err != nil {
			t.Fatalf("env secret refused: %v", err)
		}
	})
}

// TestAPIHubLifetime checks that the API finds its hub whichever handler is
// provisioned first, and neither keeps it alive nor destroys it.
func TestAPIHubLifetime(t *testing.T) {
	if n := poolSize(); n != 0 {
		t.Fatalf("pool has %d hubs before the test", n)
	}
	base := serveAPI(t, &API{Hub: "api-lifetime"}) // before the socketio handler
	status, out, _ := apiCall(t, "GET", base+"rooms", apiSecretOld, "")
	if status != http.StatusServiceUnavailable || !strings.Contains(out["error"].(string), `"api-lifetime" is not running`) {
		t.Fatalf("no hub: %d %v", status, out)
	}
	if poolSize() != 0 {
		t.Fatal("the API created a hub")
	}
	h := &Handler{Name: "api-lifetime"}
	if err := h.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if status, out, _ = apiCall(t, "GET", base+"rooms", apiSecretOld, ""); status != 200 {
		t.Fatalf("with hub: %d %v", status, out)
	}
	// An API provisioned after the handler, then cleaned up (APIs have no
	// Cleanup; a config going away simply drops them): the hub stays.
	base2 := serveAPI(t, &API{Hub: "api-lifetime"})
	if status, _, _ = apiCall(t, "GET", base2+"sockets", apiSecretOld, ""); status != 200 {
		t.Fatalf("second API: %d", status)
	}
	if refs, ok := hubs.References("api-lifetime"); !ok || refs != 1 {
		t.Fatalf("hub references %d (present %v), want 1: the API must hold none", refs, ok)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if poolSize() != 0 {
		t.Fatal("hub outlived its only handler")
	}
	if status, _, _ = apiCall(t, "GET", base+"rooms", apiSecretOld, ""); status != http.StatusServiceUnavailable {
		t.Fatalf("after cleanup: %d", status)
	}
}

func sidOf(t *testing.T, c *wsClient) string {
	t.Helper()
	return c.connectSocket()
}

func TestAPIEmitJoinLeaveDisconnect(t *testing.T) {
	h := &Handler{Name: "api-rooms", Join: []string{"room-{socketio.query.room}"}}
	base, _ := serve(t, h)
	api := serveAPI(t, &API{Hub: "api-rooms"})
	a := dial(t, base, url.Values{"room": {"1"}})
	sa := sidOf(t, a)
	b := dial(t, base, url.Values{"room": {"1"}})
	sb := sidOf(t, b)
	c := dial(t, base, url.Values{"room": {"2"}})
	sc := sidOf(t, c)
	post := func(endpoint, body string) map[string]any {
		t.Helper()
		status, out, _ := apiCall(t, "POST", api+endpoint, apiSecretOld, body)
		if status != 200 || out["ok"] != true {
			t.Fatalf("POST %s %s: %d %v", endpoint, body, status, out)
		}
		return out
	}
	// marker proves, by arriving first, that nothing else arrived before.
	marker := func(label string, clients ...*wsClient) {
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
			_, out, _ := apiCall(t, "POST", api+"emit", apiSecretOld, `{"event":"ask","args":[7],"to":["room-1"],"ack":true,"timeout":2000}`)
			done <- out
		}()
		for i, cl := range []*wsClient{a, b} {
			got := cl.expectPrefix(`42`)
			id, payload, _ := strings.Cut(strings.TrimPrefix(got, "42"), "[")
			if payload != `"ask",7]` {
				t.Fatalf("client got %q", got)
			}
			cl.send(`43` + id + `["yes",` + itoa(i) + `]`)
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
			_, out, _ := apiCall(t, "POST", api+"emit", apiSecretOld, `{"event":"ask","to":["room-1"],"ack":true,"timeout":"300ms"}`)
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
		status, out, _ := apiCall(t, "GET", api+"rooms?namespace=/", apiSecretOld, "")
		if status != 200 || mustJSON(t, out["rooms"]) != `[{"name":"room-1","size":2},{"name":"room-2","size":1},{"name":"staff","size":2},{"name":"vip","size":2}]` {
			t.Fatalf("rooms: %d %v", status, out)
		}
		post("emit", `{"event":"vip-only","to":["vip"]}`)
		a.expect(`42["vip-only"]`)
		c.expect(`42["vip-only"]`)
		marker("3", a, b, c)
		post("leave", `{"to":["room-2"],"rooms":["vip"]}`)
		status, out, _ = apiCall(t, "GET", api+"sockets?room=vip&room=staff&except=room-1", apiSecretOld, "")
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
		_, out, _ := apiCall(t, "GET", api+"sockets", apiSecretOld, "")
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

func TestAPICaddyfileErrors(t *testing.T) {
	cases := []struct{ name, input, want string }{
		{"no secrets", "socketio_api {\n\thub chat\n}", "socketio_api: secrets are required, at Caddyfile:3"},
		{"secrets without value", "socketio_api {\n\tsecrets\n}", "wrong argument count or unexpected line ending after 'secrets', at Caddyfile:2"},
		{"unknown subdirective", "socketio_api {\n\tsecrets s\n\troom x\n}", `unrecognized subdirective "room", at Caddyfile:3`},
		{"repeated", "socketio_api {\n\tsecrets a\n\tsecrets b\n}", "secrets: subdirective given twice, at Caddyfile:3"},
		{"two hubs", "socketio_api {\n\thub a b\n\tsecrets s\n}", "at Caddyfile:2"},
		{"bad size", "socketio_api {\n\tsecrets s\n\tmax_body huge\n}", `max_body: invalid size "huge", at Caddyfile:3`},
		{"argument on directive", "socketio_api extra {\n\tsecrets s\n}", "wrong argument count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := new(API).UnmarshalCaddyfile(caddyfile.NewDispenser(tokensNamed(t, tc.input)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("through the adapter", func(t *testing.T) {
		_, err := adapt(":8080 {\n\tsocketio_api /api/* {\n\t\tsecrets a\n\t\tmax_body 0\n\t}\n}\n")
		if err == nil || !strings.Contains(err.Error(), `max_body: invalid size "0", at Caddyfile:4`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestAPIRouteAsCaddySeesIt: the endpoint is read from the path as Caddy's
// path matcher sees it (cleaned, lowercased), so a matcher guarding one
// endpoint and the API agree on which endpoint a crafted path names.
func TestAPIRouteAsCaddySeesIt(t *testing.T) {
	cases := []struct{ path, want string }{
		{"/api/emit", "emit"},
		{"/api/emit/", "emit"},
		{"/api/EMIT", "emit"},
		{"/api/emit/.", "emit"},
		{"/api/sockets/../emit", "emit"},
		{"/api/emit/..", "api"},
		{"/api/%2e%2e/rooms", "rooms"},
		{"/api//rooms//", "rooms"},
	}
	for _, tc := range cases {
		u, err := url.Parse("http://x" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := apiRoute(u.Path); got != tc.want {
			t.Errorf("apiRoute(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
