package socketio

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/emitapi"
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

// TestAPIAuthAndErrors covers what the module answers itself (the bearer
// check) and, with one request each, that the rest reaches the emitapi
// handler of the named hub with the configured body bound. The request
// errors themselves are realtime/emitapi's TestErrors.
func TestAPIAuthAndErrors(t *testing.T) {
	t.Parallel() // waits on real timers: overlaps with the others
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
		{"wrong secret to an unknown endpoint", "POST", "shout", "nope", `{}`, 403, "wrong bearer secret"},
		{"old secret", "POST", "emit", apiSecretOld, `{"event":"x"}`, 200, ""},
		{"new secret", "POST", "emit", apiSecretNew, `{"event":"x"}`, 200, ""},
		{"unknown endpoint", "POST", "shout", apiSecretNew, `{}`, 404, `unknown endpoint "shout"`},
		{"GET emit", "GET", "emit", apiSecretNew, ``, 405, "emit takes POST, not GET"},
		{"bad body", "POST", "emit", apiSecretNew, `{"event":"x","room":"a"}`, 400, `unknown field "room"`},
		{"unknown namespace", "POST", "emit", apiSecretNew, `{"namespace":"/nope","event":"x"}`, 404, `unknown namespace "/nope"`},
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
// emitapi.Route cleans the path itself (the package never imports Caddy):
// it must agree with caddyhttp.CleanPath on every path.
func TestAPIRouteAsCaddySeesIt(t *testing.T) {
	asCaddy := func(p string) string {
		return path.Base(strings.TrimSuffix(caddyhttp.CleanPath(strings.ToLower(p), true), "/"))
	}
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
		if got := emitapi.Route(u.Path); got != tc.want {
			t.Errorf("emitapi.Route(%q) = %q, want %q", tc.path, got, tc.want)
		}
		if got := asCaddy(u.Path); got != tc.want {
			t.Errorf("as Caddy sees %q: %q, want %q", tc.path, got, tc.want)
		}
	}
	// Every path of up to 6 characters of an alphabet of path troubles,
	// and random longer ones.
	const alphabet = "/.eE%2"
	var paths []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		paths = append(paths, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(prefix+string(c), n-1)
		}
	}
	gen("", 6)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, 1+rnd.IntN(24))
		for i := range b {
			b[i] = "/./..//emit/ROOMS/x/"[rnd.IntN(20)]
		}
		paths = append(paths, string(b))
	}
	for _, p := range paths {
		if got, want := emitapi.Route(p), asCaddy(p); got != want {
			t.Fatalf("emitapi.Route(%q) = %q, Caddy sees %q", p, got, want)
		}
	}
}

// TestAPITimeoutAsCaddyParses: a timeout string is read as Caddy reads a
// duration ("d" is 24h), with Caddy's errors, though emitapi parses it
// itself.
func TestAPITimeoutAsCaddyParses(t *testing.T) {
	srv := realtime.NewServer(realtime.Options{Logger: zap.NewNop()})
	t.Cleanup(srv.Close)
	h := emitapi.New(srv, emitapi.Options{})
	inputs := []string{
		"", "d", "1d", "0.0001d", "0.0005d", "1xd", "1h1d", "1d1d", "0.50d1d", "0.5000d1d", "+0.0001d", "-1d",
		".d", "1e-5d", "1e400d", "nand", "infd", "0x1p-20d", "1.5s", "150ms", "1m", "61s", "0s", "-1s", "1", "s",
		"1s1d", "d1", "dd", "1dd", "1µs", "300ms1d", strings.Repeat("1", 1024) + "ms", strings.Repeat("1", 1025),
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		b := make([]byte, 1+rnd.IntN(10))
		for i := range b {
			b[i] = "0123456789.+-dhmsd0.1"[rnd.IntN(21)]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		want, wantMsg := http.StatusOK, ""
		if d, err := caddy.ParseDuration(s); err != nil {
			want, wantMsg = http.StatusBadRequest, "bad JSON body: timeout: "+err.Error()
		} else if d <= 0 || d > MaxAPIAckTimeout {
			want, wantMsg = http.StatusBadRequest, "timeout: want more than 0 and at most 1m0s"
		}
		body, _ := json.Marshal(map[string]any{"event": "x", "ack": true, "timeout": s})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/emit", bytes.NewReader(body)))
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("timeout %q: answer %q: %v", s, rec.Body.Bytes(), err)
		}
		if got, _ := out["error"].(string); rec.Code != want || got != wantMsg {
			t.Fatalf("timeout %q: %d %q, want %d %q", s, rec.Code, got, want, wantMsg)
		}
	}
}

// TestAPISocketsSubjectAndData: the sockets listing shows the "sub" claim
// of a socket's token and the data its connect webhook stored, read from
// the module's own socket data keys.
func TestAPISocketsSubjectAndData(t *testing.T) {
	h := &Handler{Name: "api-subject", Auth: &AuthConfig{Secret: testSecret}}
	base, _ := serve(t, h)
	api := serveAPI(t, &API{Hub: "api-subject"})
	c := dial(t, base, nil)
	c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "alice"})}))
	c.ExpectPrefix(`40{"sid":"`)
	status, out, _ := apiCall(t, "GET", api+"sockets", apiSecretOld, "")
	socks, _ := out["sockets"].([]any)
	if status != 200 || len(socks) != 1 {
		t.Fatalf("sockets: %d %v", status, out)
	}
	if s := socks[0].(map[string]any); s["subject"] != "alice" || s["data"] != nil {
		t.Fatalf("socket listed as %v, want subject alice and no data", s)
	}
	// The module's state is not the socket's data: nothing of it is listed
	// there, and a socket that is gone has no subject.
	for _, ns := range h.hub.server.Namespaces() {
		for _, s := range ns.Sockets() {
			if d := s.Info().Data; len(d) != 0 {
				t.Errorf("socket data holds the module's state: %v", d)
			}
		}
	}
	gone := realtime.SocketInfo{ID: "gone", Namespace: "/"}
	if sub, data := h.hub.socketSubject(gone), h.hub.socketHookData(gone); sub != "" || data != nil {
		t.Errorf("a gone socket lists subject %q, data %v", sub, data)
	}
}
