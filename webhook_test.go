package socketio

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

const testWebhookSecret = "webhook-secret-0123456789abcdef"

func TestWebhookConfigErrors(t *testing.T) {
	t.Setenv("SOCKETIO_TEST_EMPTY", "")
	t.Setenv("SOCKETIO_TEST_HOOK", "http://127.0.0.1:1/hook")
	ok := func(wh Webhook) *Webhook {
		if wh.Secret == "" {
			wh.Secret = testWebhookSecret
		}
		return &wh
	}
	cases := []struct {
		name string
		wh   *Webhook
		want string
	}{
		{"no secret", &Webhook{Connect: "http://127.0.0.1:1/c"}, "a secret is needed"},
		{"nothing to call", ok(Webhook{}), "nothing to call"},
		{"route without events", ok(Webhook{Events: []WebhookRoute{{URL: "http://127.0.0.1:1/e"}}}), "no event named"},
		{"reserved event", ok(Webhook{Events: []WebhookRoute{{URL: "http://127.0.0.1:1/e", Match: []string{"disconnect"}}}}), `"disconnect" cannot be forwarded`},
		{"relative url", ok(Webhook{Connect: "/connect"}), "is not an http or https URL"},
		{"ftp url", ok(Webhook{Disconnect: "ftp://host/x"}), "is not an http or https URL"},
		{"negative timeout", ok(Webhook{Connect: "http://127.0.0.1:1/c", Timeout: -1}), "must not be negative"},
		{"secret env unset", ok(Webhook{Connect: "http://127.0.0.1:1/c", Secret: "{env.SOCKETIO_TEST_EMPTY}"}), "secret is empty after resolving"},
		{"url env unset", ok(Webhook{Connect: "{env.SOCKETIO_TEST_EMPTY}"}), "is not an http or https URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Name: "webhook-config", Webhook: tc.wh}
			err := h.Provision(testContext(t))
			if err == nil {
				_ = h.Cleanup()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if n := poolSize(); n != 0 {
				t.Fatalf("failed Provision left %d hubs", n)
			}
		})
	}
	t.Run("placeholders resolved", func(t *testing.T) {
		h := &Handler{Name: "webhook-env", Webhook: ok(Webhook{Connect: "{env.SOCKETIO_TEST_HOOK}"})}
		provision(t, h)
		if got := h.entry.pol.webhook.connect; got != "http://127.0.0.1:1/hook" {
			t.Fatalf("connect URL %q", got)
		}
	})
}

// hookCall is one request the test backend received.
type hookCall struct {
	Path string
	Body map[string]any
}

// hookBackend is a webhook backend for tests: it checks every signature,
// records the calls and answers with reply.
type hookBackend struct {
	t     *testing.T
	srv   *httptest.Server
	reply func(c hookCall, r *http.Request) (int, any)

	mu       sync.Mutex
	calls    []hookCall
	inFlight int
	maxIn    int
	notify   chan struct{}
}

func newHookBackend(t *testing.T, reply func(c hookCall, r *http.Request) (int, any)) *hookBackend {
	b := &hookBackend{t: t, reply: reply, notify: make(chan struct{}, 1000)}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *hookBackend) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := webhook.VerifyRequest([]byte(testWebhookSecret), r, raw, time.Minute); err != nil {
		b.t.Errorf("backend: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	c := hookCall{Path: r.URL.Path}
	if err := json.Unmarshal(raw, &c.Body); err != nil {
		b.t.Errorf("backend: body %s: %v", raw, err)
	}
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.inFlight++
	b.maxIn = max(b.maxIn, b.inFlight)
	b.mu.Unlock()
	b.notify <- struct{}{}
	status, reply := b.reply(c, r)
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if reply != nil {
		_ = json.NewEncoder(w).Encode(reply)
	}
}

func (b *hookBackend) url(p string) string { return b.srv.URL + p }

// waitCalls waits until n calls arrived and returns them.
func (b *hookBackend) waitCalls(n int) []hookCall {
	b.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		b.mu.Lock()
		if len(b.calls) >= n {
			out := append([]hookCall(nil), b.calls...)
			b.mu.Unlock()
			return out
		}
		b.mu.Unlock()
		select {
		case <-b.notify:
		case <-deadline:
			b.t.Fatalf("backend got %d calls, want %d", len(b.calls), n)
		}
	}
}

func (b *hookBackend) callsTo(p string) []hookCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []hookCall
	for _, c := range b.calls {
		if c.Path == p {
			out = append(out, c)
		}
	}
	return out
}

// serveWebhook serves a handler whose webhook calls backend b, with the
// webhook's log going to the returned observer.
func serveWebhook(t *testing.T, name string, wh *Webhook) (string, *observer.ObservedLogs, *Handler) {
	t.Helper()
	wh.Secret = testWebhookSecret
	h := &Handler{Name: name, Join: []string{"room-{socketio.query.room}"}, Webhook: wh}
	base, _ := serve(t, h)
	core, logs := observer.New(zapcore.DebugLevel)
	h.entry.pol.webhook.logger = zap.New(core)
	return base, logs, h
}

func TestWebhookEvents(t *testing.T) {
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		switch args, _ := c.Body["args"].([]any); c.Body["event"] {
		case "chat":
			return 200, map[string]any{"ack": []any{"ok", 42, args}}
		case "promote":
			return 200, map[string]any{
				"actions": []any{
					map[string]any{"join": []string{"vip"}},
					map[string]any{"leave": []string{"room-1"}},
					map[string]any{"emit": map[string]any{"rooms": []string{"vip"}, "event": "news", "args": []any{"welcome"}}},
					map[string]any{"emit": map[string]any{"event": "private", "args": []any{1}}},
				},
				"ack": []any{"done"},
			}
		case "refuse":
			return 200, map[string]any{"error": map[string]any{"code": "nope"}}
		case "broken":
			return 500, nil
		case "garbage":
			return 200, "not an object"
		case "kick":
			return 200, map[string]any{"actions": []any{map[string]any{"disconnect": true}}, "ack": []any{"bye"}}
		}
		return 204, nil
	})
	base, _, _ := serveWebhook(t, "webhook-events", &Webhook{
		Events:  []WebhookRoute{{URL: b.url("/chat"), Match: []string{"chat"}}, {URL: b.url("/other"), Match: []string{"*"}}},
		Headers: []string{"X-Site-User"},
		Cookies: []string{"session"},
	})
	c := dialHeader(t, base, url.Values{"room": {"1"}}, http.Header{
		"X-Site-User": {"ann"}, "Cookie": {"theme=dark; session=s3cr3t"}, "X-Other": {"no"},
	})
	sid := c.ConnectSocket("")

	c.Send(`421["chat","hi",{"n":1.5}]`)
	c.Expect(`431["ok",42,["hi",{"n":1.5}]]`)
	call := b.callsTo("/chat")[0]
	want := map[string]any{
		"type": "event", "namespace": "/", "socket": sid, "event": "chat",
		"args": []any{"hi", map[string]any{"n": 1.5}}, "ack": true, "rooms": []any{"room-1"},
		"headers": map[string]any{"X-Site-User": "ann"}, "cookies": map[string]any{"session": "s3cr3t"},
	}
	for k, v := range want {
		if got, _ := json.Marshal(call.Body[k]); string(got) != mustJSON(t, v) {
			t.Errorf("body %s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	if _, ok := call.Body["address"].(string); !ok {
		t.Errorf("body has no address: %v", call.Body)
	}

	t.Run("actions then ack", func(t *testing.T) {
		c.Send(`422["promote"]`)
		c.Expect(`42["news","welcome"]`)
		c.Expect(`42["private",1]`)
		c.Expect(`432["done"]`)
		c.Send(`423["chat"]`)
		c.Expect(`433["ok",42,[]]`)
		if got := b.callsTo("/chat")[1].Body["rooms"]; mustJSON(t, got) != `["vip"]` {
			t.Fatalf("rooms after actions: %v", got)
		}
	})
	t.Run("backend error", func(t *testing.T) {
		c.Send(`424["refuse"]`)
		c.Expect(`434[{"error":{"code":"nope"}}]`)
	})
	t.Run("failures", func(t *testing.T) {
		c.Send(`425["broken"]`)
		c.Expect(`435[{"error":"webhook failed: status 500"}]`)
		c.Send(`426["garbage"]`)
		c.Expect(`436[{"error":"webhook failed: bad reply"}]`)
	})
	t.Run("empty reply", func(t *testing.T) {
		c.Send(`427["nothing",true]`)
		c.Expect(`437[]`)
	})
	t.Run("no ack wanted", func(t *testing.T) {
		n := len(b.callsTo("/other"))
		c.Send(`42["quiet"]`)
		calls := b.waitCalls(len(b.callsTo("/chat")) + n + 1)
		last := calls[len(calls)-1]
		if last.Body["event"] != "quiet" || last.Body["ack"] != nil {
			t.Fatalf("last call %v", last.Body)
		}
	})
	t.Run("disconnect action", func(t *testing.T) {
		c.Send(`428["kick"]`)
		c.Expect(`438["bye"]`)
		c.Expect(`41`)
	})
}

func TestWebhookConnectAndDisconnect(t *testing.T) {
	t.Parallel()
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		switch c.Path {
		case "/connect":
			cookies, _ := c.Body["cookies"].(map[string]any)
			switch cookies["session"] {
			case "good":
				return 200, map[string]any{"rooms": []string{"user-ann"}, "data": map[string]any{"user": "ann"}}
			case "teapot":
				return 418, map[string]any{"error": "short and stout"}
			case "down":
				return 503, nil
			}
			return 200, map[string]any{"error": map[string]any{"message": "no session", "data": map[string]any{"login": "/login"}}}
		case "/event":
			return 200, map[string]any{"ack": []any{c.Body["data"], c.Body["rooms"]}}
		}
		return 204, nil
	})
	base, _, _ := serveWebhook(t, "webhook-connect", &Webhook{
		Events:     []WebhookRoute{{URL: b.url("/event"), Match: []string{"whoami"}}},
		Connect:    b.url("/connect"),
		Disconnect: b.url("/disconnect"),
		Cookies:    []string{"session"},
	})
	for _, tc := range []struct{ session, want string }{
		{"bad", `44{"message":"no session","data":{"login":"/login"}}`},
		{"teapot", `44{"message":"short and stout"}`},
		{"down", `44{"message":"webhook failed: status 503"}`},
	} {
		t.Run("refused "+tc.session, func(t *testing.T) {
			c := dialHeader(t, base, nil, http.Header{"Cookie": {"session=" + tc.session}})
			c.Send(`40{"token":"x"}`)
			c.Expect(tc.want)
		})
	}
	t.Run("accepted", func(t *testing.T) {
		c := dialHeader(t, base, url.Values{"room": {"2"}}, http.Header{"Cookie": {"session=good"}})
		c.Send(`40{"hello":"there"}`)
		c.ExpectPrefix(`40{"sid":"`)
		connect := b.callsTo("/connect")
		last := connect[len(connect)-1].Body
		if mustJSON(t, last["auth"]) != `{"hello":"there"}` || mustJSON(t, last["query"]) != `{"room":"2"}` {
			t.Fatalf("connect body %v", last)
		}
		c.Send(`421["whoami"]`)
		c.Expect(`431[{"user":"ann"},["room-2","user-ann"]]`)
		// Counted before the DISCONNECT: its call may arrive before
		// waitCalls would read the count.
		b.mu.Lock()
		before := len(b.calls)
		b.mu.Unlock()
		c.Send(`41`)
		calls := b.waitCalls(before + 1)
		if d := b.callsTo("/disconnect"); len(d) != 1 || d[0].Body["reason"] != "client namespace disconnect" ||
			mustJSON(t, d[0].Body["data"]) != `{"user":"ann"}` {
			t.Fatalf("disconnect calls %v (all calls %d)", d, len(calls))
		}
		// A second namespace disconnect or the connection closing later
		// must not tell the backend again.
		c.Close()
		// A wrong second call would come soon after the close; proving that
		// none comes takes a wait (nothing signals what does not happen).
		time.Sleep(200 * time.Millisecond)
		if d := b.callsTo("/disconnect"); len(d) != 1 {
			t.Fatalf("%d disconnect calls, want 1", len(d))
		}
	})
	t.Run("refused socket is not announced as disconnected", func(t *testing.T) {
		if d := b.callsTo("/disconnect"); len(d) != 1 {
			t.Fatalf("%d disconnect calls, want 1 (refused sockets never connected)", len(d))
		}
	})
}

func TestWebhookTimeoutDoesNotBlockOthers(t *testing.T) {
	t.Parallel() // waits on real timers: overlaps with the others
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		if c.Body["event"] == "slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return 200, map[string]any{"ack": []any{c.Body["event"]}}
	})
	base, logs, _ := serveWebhook(t, "webhook-timeout", &Webhook{
		Events:  []WebhookRoute{{URL: b.url("/e"), Match: []string{"*"}}},
		Timeout: caddy.Duration(700 * time.Millisecond),
	})
	slow := dial(t, base, nil)
	slow.ConnectSocket("")
	fast := dial(t, base, nil)
	fast.ConnectSocket("")

	start := time.Now()
	slow.Send(`421["slow"]`)
	b.waitCalls(1)
	fast.Send(`421["fast"]`)
	fast.Expect(`431["fast"]`)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("second socket's ack took %v while the first waited", d)
	}
	slow.Expect(`431[{"error":"webhook failed: timeout"}]`)
	if d := time.Since(start); d < 600*time.Millisecond || d > 3*time.Second {
		t.Fatalf("timeout ack after %v, want about 700ms", d)
	}
	// The socket's queue carries on after a failure.
	slow.Send(`422["again"]`)
	slow.Expect(`432["again"]`)
	if n := logs.FilterMessage("webhook failed").Len(); n != 1 {
		t.Fatalf("%d failure log lines, want 1", n)
	}
}

func TestWebhookOrderAndBounds(t *testing.T) {
	gate := make(chan struct{})
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		if c.Body["event"] == "wait" {
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		}
		time.Sleep(5 * time.Millisecond) // each call takes a while, so that calls would overlap if they could
		return 200, map[string]any{"ack": []any{c.Body["args"]}}
	})
	base, logs, _ := serveWebhook(t, "webhook-order", &Webhook{
		Events:         []WebhookRoute{{URL: b.url("/e"), Match: []string{"*"}}},
		MaxConcurrency: 1,
		Queue:          3,
	})
	a := dial(t, base, nil)
	a.ConnectSocket("")
	other := dial(t, base, nil)
	other.ConnectSocket("")

	a.Send(`420["wait"]`)
	b.waitCalls(1) // in flight: the queue is empty again
	for i := 1; i <= 3; i++ {
		a.Send(`42` + itoa(i) + `["n",` + itoa(i) + `]`)
	}
	a.Send(`424["n",4]`) // one over the bound
	a.Expect(`434[{"error":"webhook failed: queue full"}]`)
	if logs.FilterMessage("webhook queue full, event refused").Len() != 1 {
		t.Fatal("no warning for the full queue")
	}
	other.Send(`429["n",9]`) // waits for the only slot
	open()
	a.Expect(`430[[]]`)
	for i := 1; i <= 3; i++ {
		a.Expect(`43` + itoa(i) + `[[` + itoa(i) + `]]`)
	}
	other.Expect(`439[[9]]`)
	var order []string
	for _, c := range b.callsTo("/e") {
		if c.Body["event"] == "n" && c.Body["socket"] != nil {
			order = append(order, mustJSON(t, c.Body["args"]))
		}
	}
	if got := strings.Join(order, " "); got != "[1] [2] [3] [9]" && got != "[1] [2] [9] [3]" && got != "[1] [9] [2] [3]" && got != "[9] [1] [2] [3]" {
		t.Fatalf("call order %s: the socket's events are out of order", got)
	}
	b.mu.Lock()
	maxIn := b.maxIn
	b.mu.Unlock()
	if maxIn != 1 {
		t.Fatalf("%d calls in flight at once, want at most 1", maxIn)
	}
}

// TestWebhookCleanupStopsCalls is not parallel: it sets the package's
// webhookCloseGrace, which every other test's Provision reads.
func TestWebhookCleanupStopsCalls(t *testing.T) {
	cancelled := make(chan struct{})
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		<-r.Context().Done()
		close(cancelled)
		return 200, nil
	})
	h := &Handler{Name: "webhook-cleanup", Webhook: &Webhook{
		Secret:  testWebhookSecret,
		Events:  []WebhookRoute{{URL: b.url("/e"), Match: []string{"*"}}},
		Timeout: caddy.Duration(30 * time.Second),
	}}
	// Read when the config is built.
	defer func(g time.Duration) { webhookCloseGrace = g }(webhookCloseGrace)
	webhookCloseGrace = 100 * time.Millisecond
	if err := h.Provision(testContext(t)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hb := h.hub; hb != nil {
			hb.server.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/", nil)
	c.ConnectSocket("")
	c.Send(`421["stuck"]`)
	b.waitCalls(1)
	w := h.entry.pol.webhook
	start := time.Now()
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Cleanup took %v", d)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight was not cancelled")
	}
	if w.client.Go(func() {}) {
		t.Fatal("closed webhooks still start goroutines")
	}
}

func TestWebhookCaddyfileErrors(t *testing.T) {
	wrap := func(body string) string { return "socketio {\n\twebhook {\n" + body + "\t}\n}" }
	cases := []struct{ name, input, want string }{
		{"argument", "socketio {\n\twebhook http://x {\n\t}\n}", "unexpected line ending after 'http://x', at Caddyfile:2"},
		{"no secret", wrap("\t\tconnect http://127.0.0.1/c\n"), "webhook: a secret is needed to sign calls, at Caddyfile:4"},
		{"unknown", wrap("\t\tsecret s\n\t\turl http://x\n"), `webhook: unrecognized subdirective "url", at Caddyfile:4`},
		{"repeated", wrap("\t\tsecret s\n\t\tsecret t\n"), "webhook: secret: subdirective given twice, at Caddyfile:4"},
		{"events without event", wrap("\t\tsecret s\n\t\tevents http://127.0.0.1/e\n"), "webhook: events: want <url> <event>..., at Caddyfile:4"},
		{"events url first", wrap("\t\tsecret s\n\t\tevents chat http://127.0.0.1/e\n"), `webhook: events: "chat" is not an http or https URL, at Caddyfile:4`},
		{"bad connect url", wrap("\t\tsecret s\n\t\tconnect /connect\n"), `webhook: connect: "/connect" is not an http or https URL, at Caddyfile:4`},
		{"bad timeout", wrap("\t\tsecret s\n\t\ttimeout soon\n"), `timeout: invalid duration "soon": time: invalid duration "soon", at Caddyfile:4`},
		{"zero queue", wrap("\t\tsecret s\n\t\tqueue 0\n"), `webhook: queue: want a positive number, got "0", at Caddyfile:4`},
		{"bad max_concurrency", wrap("\t\tsecret s\n\t\tmax_concurrency many\n"), `webhook: max_concurrency: want a positive number, got "many", at Caddyfile:4`},
		{"webhook twice", "socketio {\n\twebhook {\n\t\tsecret s\n\t}\n\twebhook {\n\t}\n}", "webhook: subdirective given twice, at Caddyfile:5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewDispenser(tokensNamed(t, tc.input)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("provision refuses what parsing lets through", func(t *testing.T) {
		_, err := adapt(":8080 {\n\tsocketio {\n\t\twebhook {\n\t\t\tsecret s\n\t\t}\n\t}\n}")
		if err != nil {
			t.Fatalf("adapt: %v", err)
		}
		h := &Handler{Name: "webhook-empty", Webhook: &Webhook{Secret: "s"}}
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "nothing to call") {
			t.Fatalf("Validate: %v", err)
		}
	})
}
