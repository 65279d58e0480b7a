package engineio

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandshakePolling(t *testing.T) {
	ts := newTServer(t, Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	code, hdr, body := ts.do("GET", "EIO=4&transport=polling&t=abc", "", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("body %q", body)
	}
	var open map[string]any
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	if len(open) != 5 {
		t.Errorf("open packet has %d keys, want exactly 5: %v", len(open), open)
	}
	sid, _ := open["sid"].(string)
	if len(sid) != 20 || strings.Trim(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("sid %q is not 20 base64url chars", sid)
	}
	if ups, _ := json.Marshal(open["upgrades"]); string(ups) != `["websocket"]` {
		t.Errorf("upgrades %s", ups)
	}
	if open["pingInterval"] != 300.0 || open["pingTimeout"] != 200.0 || open["maxPayload"] != 1e6 {
		t.Errorf("timings %v", open)
	}
	if n := ts.srv.SessionCount(); n != 1 {
		t.Errorf("SessionCount %d", n)
	}
	r := ts.session()
	if r.s.ID() != sid || r.s.Transport() != TransportPolling {
		t.Errorf("session %q %q", r.s.ID(), r.s.Transport())
	}
	if got := r.s.Request().URL.Query().Get("t"); got != "abc" {
		t.Errorf("Request() query t=%q", got)
	}
}

func TestHandshakeUpgradesList(t *testing.T) {
	for name, opts := range map[string]Options{
		"upgrades disabled": {DisableUpgrades: true},
		"polling only":      {Transports: []string{TransportPolling}},
	} {
		t.Run(name, func(t *testing.T) {
			ts := newTServer(t, opts)
			_, _, body := ts.do("GET", "EIO=4&transport=polling", "", nil)
			if !strings.Contains(body, `"upgrades":[]`) {
				t.Errorf("body %q", body)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	refuse := func(*http.Request) error { return errors.New("go away") }
	tests := []struct {
		name   string
		opts   Options
		method string
		query  string
		header http.Header
		status int
		body   string
	}{
		{"missing EIO", Options{}, "GET", "transport=polling", nil, 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO abc", Options{}, "GET", "EIO=abc&transport=polling", nil, 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO 3", Options{}, "GET", "EIO=3&transport=polling", nil, 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"missing transport", Options{}, "GET", "EIO=4", nil, 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown transport", Options{}, "GET", "EIO=4&transport=abc", nil, 400, `{"code":0,"message":"Transport unknown"}`},
		{"disabled transport", Options{Transports: []string{TransportWebSocket}}, "GET", "EIO=4&transport=polling", nil, 400, `{"code":0,"message":"Transport unknown"}`},
		{"transport before method", Options{}, "POST", "EIO=4", nil, 400, `{"code":0,"message":"Transport unknown"}`},
		{"POST handshake", Options{}, "POST", "EIO=4&transport=polling", nil, 400, `{"code":2,"message":"Bad handshake method"}`},
		{"PUT handshake", Options{}, "PUT", "EIO=4&transport=polling", nil, 400, `{"code":2,"message":"Bad handshake method"}`},
		{"method before EIO", Options{}, "POST", "transport=polling", nil, 400, `{"code":2,"message":"Bad handshake method"}`},
		{"unknown sid", Options{}, "GET", "EIO=4&transport=polling&sid=nope", nil, 400, `{"code":1,"message":"Session ID unknown"}`},
		{"unknown sid POST", Options{}, "POST", "EIO=4&transport=polling&sid=nope", nil, 400, `{"code":1,"message":"Session ID unknown"}`},
		{"websocket without upgrade", Options{}, "GET", "EIO=4&transport=websocket", nil, 400, `{"code":3,"message":"Bad request"}`},
		{"foreign origin", Options{}, "GET", "EIO=4&transport=polling", http.Header{"Origin": {"https://evil.example"}}, 403, `{"code":4,"message":"Forbidden"}`},
		{"origin not listed", Options{AllowedOrigins: []string{"https://a.example"}}, "GET", "EIO=4&transport=polling", http.Header{"Origin": {"https://b.example"}}, 403, `{"code":4,"message":"Forbidden"}`},
		{"allowRequest", Options{AllowRequest: refuse}, "GET", "EIO=4&transport=polling", nil, 403, `{"code":4,"message":"go away"}`},
		{"allowRequest before EIO", Options{AllowRequest: refuse}, "GET", "EIO=3&transport=polling", nil, 403, `{"code":4,"message":"go away"}`},
		{"allowRequest empty message", Options{AllowRequest: func(*http.Request) error { return errors.New("") }}, "GET", "EIO=4&transport=polling", nil, 403, `{"code":4,"message":"Forbidden"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTServer(t, tt.opts)
			code, hdr, body := ts.do(tt.method, tt.query, "", tt.header)
			if code != tt.status || body != tt.body {
				t.Errorf("got %d %s, want %d %s", code, body, tt.status, tt.body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if n := ts.srv.SessionCount(); n != 0 {
				t.Errorf("SessionCount %d after a refused request", n)
			}
		})
	}
}

func TestSessionErrorsWithSid(t *testing.T) {
	ts := newTServer(t, Options{})
	sid := ts.handshake()
	tests := []struct {
		name, method, query, body string
	}{
		{"EIO mismatch", "GET", "EIO=3&transport=polling&sid=" + sid, `{"code":3,"message":"Bad request"}`},
		{"transport mismatch", "GET", "EIO=4&transport=websocket&sid=" + sid, `{"code":3,"message":"Bad request"}`},
		{"unsupported method", "PUT", "EIO=4&transport=polling&sid=" + sid, `{"code":3,"message":"Bad request"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := ts.do(tt.method, tt.query, "", nil)
			if code != 400 || body != tt.body {
				t.Errorf("got %d %s, want 400 %s", code, body, tt.body)
			}
		})
	}
}

func TestOriginAllowed(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string
		origin  string
		want    bool
	}{
		{"no origin", nil, "example.com", "", true},
		{"same origin", nil, "example.com:8080", "http://example.com:8080", true},
		{"same origin case", nil, "Example.com", "HTTP://example.COM", true},
		{"same origin trailing slash", nil, "example.com", "http://example.com/", true},
		{"default port in Host", nil, "example.com:80", "http://example.com", true},
		{"default port in Origin", nil, "example.com", "http://example.com:80", true},
		{"https origin on a plain request", nil, "example.com", "https://example.com", false},
		{"https default port on a plain request", nil, "example.com:443", "https://example.com", false},
		{"gopher scheme", nil, "example.com", "gopher://example.com", false},
		{"ws scheme", nil, "example.com", "ws://example.com", false},
		{"file scheme", nil, "example.com", "file://example.com", false},
		{"origin with a path", nil, "example.com", "http://example.com/app", false},
		{"origin with user info", nil, "example.com", "http://u@example.com", false},
		{"other host", nil, "example.com", "https://evil.com", false},
		{"other port", nil, "example.com:8080", "http://example.com:9090", false},
		{"null origin", nil, "example.com", "null", false},
		{"any", []string{"*"}, "example.com", "https://evil.com", true},
		{"listed", []string{"https://a.com", "https://b.com/"}, "x", "https://b.com", true},
		{"listed case", []string{"https://A.com"}, "x", "https://a.com", true},
		{"not listed", []string{"https://a.com"}, "x", "http://a.com", false},
		{"listed does not imply same origin", []string{"https://a.com"}, "x.com", "https://x.com", false},
		{"control char", []string{"*"}, "x", "https://a.com\x01", false},
		{"DEL char", []string{"*"}, "x", "https://a.com\x7f", false},
		{"tab and latin1 are valid", []string{"*"}, "x", "https://a.com\t\xe9", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(Options{AllowedOrigins: tt.allowed})
			r := httptest.NewRequest("GET", "http://"+tt.host+"/", nil)
			r.Host = tt.host
			if got := cfg.originAllowed(r, tt.origin); got != tt.want {
				t.Errorf("originAllowed = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOriginAllowedScheme: the same-origin check uses RequestScheme, by
// default https exactly when the request came over TLS.
func TestOriginAllowedScheme(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		scheme func(*http.Request) string
		origin string
		want   bool
	}{
		{"https origin over TLS", true, nil, "https://example.com", true},
		{"http origin over TLS", true, nil, "http://example.com", false},
		{"proxy says https", false, func(*http.Request) string { return "https" }, "https://example.com", true},
		{"proxy says https, http origin", false, func(*http.Request) string { return "https" }, "http://example.com", false},
		{"proxy scheme case", false, func(*http.Request) string { return "HTTPS" }, "https://example.com", true},
		{"scheme other than http(s) never matches", false, func(*http.Request) string { return "gopher" }, "gopher://example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newConfig(Options{RequestScheme: tt.scheme})
			r := httptest.NewRequest("GET", "http://example.com/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := cfg.originAllowed(r, tt.origin); got != tt.want {
				t.Errorf("originAllowed = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSameOriginSchemeRefused: against a plain-http server, an Origin with
// the right host but another scheme is refused with 403 and gets no CORS
// headers (before, host:port alone was compared, so gopher://host passed
// and was reflected with credentials).
func TestSameOriginSchemeRefused(t *testing.T) {
	ts := newTServer(t, Options{})
	host := strings.TrimPrefix(ts.hs.URL, "http://")
	tests := []struct {
		origin string
		status int
	}{
		{"http://" + host, 200},
		{"https://" + host, 403},
		{"gopher://" + host, 403},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			code, h, body := ts.do("GET", "EIO=4&transport=polling", "", http.Header{"Origin": {tt.origin}})
			if code != tt.status {
				t.Fatalf("polling handshake: %d %q, want %d", code, body, tt.status)
			}
			acao := h.Get("Access-Control-Allow-Origin")
			if tt.status == 200 {
				ts.session()
				if acao != tt.origin || h.Get("Access-Control-Allow-Credentials") != "true" {
					t.Errorf("CORS headers %v", h)
				}
				return
			}
			if body != `{"code":4,"message":"Forbidden"}` || acao != "" || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("refusal %q with headers %v", body, h)
			}
			c, resp, err := ts.dial("EIO=4&transport=websocket", http.Header{"Origin": {tt.origin}})
			if err == nil {
				c.Close()
				t.Fatal("websocket handshake accepted")
			}
			if resp == nil || resp.StatusCode != 403 {
				t.Errorf("websocket handshake: %v %v", resp, err)
			}
		})
	}
}

func TestCORSHeaders(t *testing.T) {
	tests := []struct {
		name        string
		allowed     []string
		origin      string
		query       string
		wantOrigin  string
		wantCreds   string
		wantVary    string
		wantStatus  int
		wantNoAllow bool
	}{
		{"any origin success", []string{"*"}, "https://a.com", "EIO=4&transport=polling", "*", "", "", 200, false},
		{"any origin error", []string{"*"}, "https://a.com", "EIO=4", "*", "", "", 400, false},
		{"any origin without Origin", []string{"*"}, "", "EIO=4&transport=polling", "*", "", "", 200, false},
		// A page with withCredentials (the admin UI) needs its origin
		// echoed: listed next to "*", it is; unlisted, it stays "*".
		{"listed beside any echoed", []string{"*", "https://admin.example"}, "https://admin.example", "EIO=4&transport=polling", "https://admin.example", "true", "Origin", 200, false},
		{"listed beside any, case", []string{"https://Admin.example/", "*"}, "https://admin.EXAMPLE", "EIO=4&transport=polling", "https://admin.EXAMPLE", "true", "Origin", 200, false},
		{"unlisted beside any gets star", []string{"*", "https://admin.example"}, "https://evil.example", "EIO=4&transport=polling", "*", "", "Origin", 200, false},
		{"listed origin echoed", []string{"https://a.com"}, "https://a.com", "EIO=4&transport=polling", "https://a.com", "true", "Origin", 200, false},
		{"listed origin on error", []string{"https://a.com"}, "https://a.com", "EIO=5&transport=polling", "https://a.com", "true", "Origin", 400, false},
		{"refused origin gets no CORS", []string{"https://a.com"}, "https://b.com", "EIO=4&transport=polling", "", "", "", 403, true},
		{"no Origin, no CORS", []string{"https://a.com"}, "", "EIO=4&transport=polling", "", "", "", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTServer(t, Options{AllowedOrigins: tt.allowed})
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			code, h, _ := ts.do("GET", tt.query, "", hdr)
			if code != tt.wantStatus {
				t.Errorf("status %d, want %d", code, tt.wantStatus)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Errorf("Allow-Origin %q, want %q", got, tt.wantOrigin)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != tt.wantCreds {
				t.Errorf("Allow-Credentials %q, want %q", got, tt.wantCreds)
			}
			if got := h.Get("Vary"); got != tt.wantVary {
				t.Errorf("Vary %q, want %q", got, tt.wantVary)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	ts := newTServer(t, Options{AllowedOrigins: []string{"https://a.com"}})
	hdr := http.Header{
		"Origin":                         {"https://a.com"},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"content-type,x-token"},
	}
	code, h, body := ts.do("OPTIONS", "EIO=4&transport=polling", "", hdr)
	if code != 204 || body != "" {
		t.Fatalf("preflight %d %q", code, body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://a.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET,HEAD,PUT,PATCH,POST,DELETE",
		"Access-Control-Allow-Headers":     "content-type,x-token",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	hdr.Set("Origin", "https://evil.com")
	code, h, body = ts.do("OPTIONS", "EIO=4&transport=polling", "", hdr)
	if code != 403 || body != `{"code":4,"message":"Forbidden"}` || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused preflight: %d %q %v", code, body, h)
	}
}

func TestWebSocketRefusedBeforeUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		query  string
		origin string
		status int
		body   string
	}{
		{"missing EIO", Options{}, "transport=websocket", "", 400, "Unsupported protocol version"},
		{"missing transport", Options{}, "EIO=4", "", 400, "Transport unknown"},
		{"unknown sid", Options{}, "EIO=4&transport=websocket&sid=nope", "", 400, "Session ID unknown"},
		{"polling transport on upgrade", Options{}, "EIO=4&transport=polling", "", 400, "Bad request"},
		{"websocket disabled", Options{Transports: []string{TransportPolling}}, "EIO=4&transport=websocket", "", 400, "Transport unknown"},
		{"cross-site websocket", Options{}, "EIO=4&transport=websocket", "https://evil.com", 403, "Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTServer(t, tt.opts)
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			c, resp, err := ts.dial(tt.query, hdr)
			if err == nil {
				c.Close()
				t.Fatal("upgrade succeeded")
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestSetOptionsAppliesToNewSessions(t *testing.T) {
	ts := newTServer(t, Options{PingInterval: time.Minute})
	old := ts.handshake()
	oldRec := ts.session()
	ts.srv.SetOptions(Options{PingInterval: 40 * time.Second, PingTimeout: 7 * time.Second, OnSession: ts.srv.cfg.Load().OnSession})
	_, _, body := ts.do("GET", "EIO=4&transport=polling", "", nil)
	if !strings.Contains(body, `"pingInterval":40000,"pingTimeout":7000`) {
		t.Errorf("new session open packet %q", body)
	}
	ts.session()
	if oldRec.s.cfg.PingInterval != time.Minute || oldRec.s.ID() != old {
		t.Errorf("existing session changed options: %v", oldRec.s.cfg.PingInterval)
	}
}
