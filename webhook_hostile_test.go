package socketio

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// TestWebhookConnectLoopDoesNotStarveEvents: when the connect hook is the
// login, anonymous clients that send CONNECT again as soon as they are
// refused used to fill the one pool of webhook slots, and a logged-in
// socket's events failed with "webhook failed: timeout". Connect calls now
// have a pool of their own, and refused clients wait before the hook is
// asked again for them.
func TestWebhookConnectLoopDoesNotStarveEvents(t *testing.T) {
	testkit.WaitsOnClock(t)
	t.Parallel() // waits on real timers: overlaps with the others
	var connectCalls atomic.Int64
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		switch c.Path {
		case "/connect":
			connectCalls.Add(1)
			time.Sleep(50 * time.Millisecond) // a login check that takes a while
			if auth, _ := c.Body["auth"].(map[string]any); auth["user"] == "ann" {
				return 200, map[string]any{"rooms": []string{"ann"}}
			}
			return 200, map[string]any{"error": "log in first"}
		case "/event":
			return 200, map[string]any{"ack": []any{"ok"}}
		}
		return 204, nil
	})
	base, _, _ := serveWebhook(t, "webhook-connect-loop", &Webhook{
		Events:             []WebhookRoute{{URL: b.url("/event"), Match: []string{"chat"}}},
		Connect:            b.url("/connect"),
		Timeout:            caddy.Duration(400 * time.Millisecond),
		MaxConcurrency:     4,
		ConnectConcurrency: 4,
	})
	ann := dial(t, base, nil)
	ann.Send(`40{"user":"ann"}`)
	ann.ExpectPrefix(`40{"sid":"`)

	// 60 anonymous connections, each sending CONNECT again on every
	// refusal, for a bounded time.
	const loopers = 60
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refusals, retryLater atomic.Int64
	for range loopers {
		c := dial(t, base, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c.Write(websocket.TextMessage, []byte("40")) != nil {
					return
				}
				f, err := c.Recv(2 * time.Second)
				if err != nil {
					return
				}
				switch {
				case strings.Contains(f.Data, errRetryLater):
					retryLater.Add(1)
				case strings.HasPrefix(f.Data, "44"):
					refusals.Add(1)
				}
			}
		}()
	}
	// Meanwhile the logged-in socket's events, spread over 1.5 s, all get
	// their ack.
	for i := range 30 {
		ann.Send(fmt.Sprintf(`42%d["chat","hi %d"]`, i, i))
		ann.Expect(fmt.Sprintf(`43%d["ok"]`, i))
		time.Sleep(50 * time.Millisecond) // spread over 1.5 s on purpose, while the loopers run
	}
	close(stop)
	wg.Wait()
	if retryLater.Load() == 0 {
		t.Fatalf("no looping client was told to retry later (%d refusals by the hook)", refusals.Load())
	}
	// Each looping connection reaches the hook a few times, then waits;
	// the address as a whole (all on 127.0.0.1) is held back too.
	if n := connectCalls.Load(); n > loopers*webhook.BackoffFreeConn+webhook.BackoffFreeAddr+loopers {
		t.Errorf("the connect hook was called %d times by %d looping clients", n, loopers)
	}
	t.Logf("connect hook calls %d, refused by the hook %d, told to retry later %d", connectCalls.Load(), refusals.Load(), retryLater.Load())
}

// TestWebhookBodyBound: an event whose arguments make the call larger than
// max_body is not sent; its ack says why, and the socket goes on.
func TestWebhookBodyBound(t *testing.T) {
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) {
		return 200, map[string]any{"ack": []any{"ok"}}
	})
	base, _, _ := serveWebhook(t, "webhook-body-bound", &Webhook{
		Events:  []WebhookRoute{{URL: b.url("/event"), Match: []string{"*"}}},
		MaxBody: 4096,
	})
	c := dial(t, base, nil)
	c.ConnectSocket("")
	c.Send(`421["big","` + strings.Repeat("x", 5000) + `"]`)
	c.Expect(`431[{"error":"webhook failed: body too large"}]`)
	if n := len(b.callsTo("/event")); n != 0 {
		t.Fatalf("the backend got %d oversized calls", n)
	}
	c.Send(`422["small","x"]`)
	c.Expect(`432["ok"]`)
}

// TestWebhookNeverForwardsToken: the connect call carries the verified
// claims, never the raw JWT, wherever the token came from, even when the
// config copies that header or cookie into calls.
func TestWebhookNeverForwardsToken(t *testing.T) {
	b := newHookBackend(t, func(c hookCall, r *http.Request) (int, any) { return 200, map[string]any{} })
	tok := token(t, jwt.MapClaims{"sub": "ann"})
	for _, tc := range []struct {
		name    string
		from    []string
		header  http.Header
		query   url.Values
		payload string
	}{
		{"auth payload", nil, nil, nil, `{"token":"` + tok + `","locale":"fr"}`},
		{"bearer header", nil, http.Header{"Authorization": {"Bearer " + tok}}, nil, `{"locale":"fr"}`},
		{"query", []string{"query:jwt"}, nil, url.Values{"jwt": {tok}}, `{"locale":"fr"}`},
		{"cookie", []string{"cookie:sess"}, http.Header{"Cookie": {"sess=" + tok}}, nil, `{"locale":"fr"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{
				Name: "webhook-token-" + strings.ReplaceAll(tc.name, " ", "-"),
				Auth: &AuthConfig{Secret: testSecret, TokenFrom: tc.from},
				Webhook: &Webhook{
					Connect: b.url("/connect"), Secret: testWebhookSecret,
					Headers: []string{"Authorization"}, Cookies: []string{"sess"},
				},
			}
			base, _ := serve(t, h)
			before := len(b.callsTo("/connect"))
			c := dialHeader(t, base, tc.query, tc.header)
			c.Send("40" + tc.payload)
			c.ExpectPrefix(`40{"sid":"`)
			calls := b.callsTo("/connect")
			if len(calls) != before+1 {
				t.Fatalf("%d connect calls, want 1", len(calls)-before)
			}
			body := calls[len(calls)-1].Body
			if raw := mustJSON(t, body); strings.Contains(raw, tok) || testkit.HasJWT(raw) {
				t.Fatalf("the connect call carries the token: %s", raw)
			}
			if claims, _ := body["claims"].(map[string]any); claims["sub"] != "ann" {
				t.Fatalf("claims %v, want sub ann", body["claims"])
			}
			if a, _ := body["auth"].(map[string]any); a["locale"] != "fr" {
				t.Fatalf("auth %v: the other fields must stay", body["auth"])
			}
		})
	}
}
