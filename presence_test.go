package socketio

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/redispresence"
)

// presenceCalls lists the presence calls a backend got, as "online alice".
func presenceCalls(b *hookBackend) []string {
	var out []string
	for _, c := range b.callsTo("/presence") {
		out = append(out, c.Body["type"].(string)+" "+c.Body["user"].(string))
	}
	return out
}

// waitPresence waits until the backend has n presence calls.
func waitPresence(t *testing.T, b *hookBackend, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if got := presenceCalls(b); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence calls %q, want %d", presenceCalls(b), n)
		}
		select {
		case <-b.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func servePresence(t *testing.T, name string, grace time.Duration, b *hookBackend) (string, *Handler) {
	t.Helper()
	h := &Handler{
		Name:       name,
		Namespaces: []string{"/", "/chat"},
		Auth:       &AuthConfig{Mode: AuthOptional, Secret: testSecret},
		Join:       []string{"room-{socketio.query.room}"},
		Presence:   &PresenceConfig{Webhook: b.url("/presence"), Grace: caddy.Duration(grace)},
		Webhook:    &Webhook{Secret: testWebhookSecret, Disconnect: b.url("/disconnect")},
	}
	base, _ := serve(t, h)
	return base, h
}

func (c *wsClient) connectAs(t *testing.T, sub string) string {
	t.Helper()
	payload := ""
	if sub != "" {
		payload = connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})})
	}
	return c.ConnectSocket(payload)
}

// TestPresenceHooks: two sockets of one user (two connections, and a
// second namespace) make one online; one dropping and another coming
// back within the grace makes no offline; all gone past the grace makes
// exactly one offline, signed; a socket without a user is not tracked.
func TestPresenceHooks(t *testing.T) {
	testkit.WaitsOnClock(t)
	t.Parallel()
	b := newHookBackend(t, func(hookCall, *http.Request) (int, any) { return 204, nil })
	const grace = 300 * time.Millisecond
	base, h := servePresence(t, "presence-hooks", grace, b)

	a1 := dial(t, base, nil)
	a1.connectAs(t, "alice")
	a2 := dial(t, base, nil)
	a2.connectAs(t, "alice")
	a2.Send("40/chat," + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": "alice"})}))
	a2.ExpectPrefix(`40/chat,{"sid":"`)
	anon := dial(t, base, nil)
	anon.connectAs(t, "")
	if got := waitPresence(t, b, 1); !slices.Equal(got, []string{"online alice"}) {
		t.Fatalf("presence calls %q, want one online", got)
	}

	a1.Close()
	a3 := dial(t, base, nil)
	a3.connectAs(t, "alice")
	a2.Close()
	// The grace passing is what is tested: wait it out (twice over).
	time.Sleep(2 * grace)
	if got := presenceCalls(b); !slices.Equal(got, []string{"online alice"}) {
		t.Fatalf("presence calls %q: a user with a socket left went offline", got)
	}
	a3.Close()
	if got := waitPresence(t, b, 2); !slices.Equal(got, []string{"online alice", "offline alice"}) {
		t.Fatalf("presence calls %q, want online then offline", got)
	}
	time.Sleep(2 * grace) // a second offline would come by now
	if got := presenceCalls(b); len(got) != 2 {
		t.Fatalf("presence calls %q, want exactly one offline", got)
	}
	if n := h.hub.presence.tracker.Len(); n != 0 {
		t.Fatalf("%d users still tracked", n)
	}
	for _, c := range b.callsTo("/presence") {
		if _, has := c.Body["socket"]; has {
			t.Fatalf("presence body %v carries a socket", c.Body)
		}
	}
}

// TestPresenceAPI: the emit API lists the users online in a room, each
// once, and answers 404 for a hub without presence.
func TestPresenceAPI(t *testing.T) {
	b := newHookBackend(t, func(hookCall, *http.Request) (int, any) { return 204, nil })
	base, _ := servePresence(t, "presence-api", time.Minute, b)
	api := serveAPI(t, &API{Hub: "presence-api"})
	for _, who := range []struct{ sub, room string }{{"alice", "1"}, {"alice", "1"}, {"bob", "1"}, {"carol", "2"}, {"", "1"}} {
		c := dial(t, base, map[string][]string{"room": {who.room}})
		c.connectAs(t, who.sub)
	}
	// The join rule and the presence tracking run after the CONNECT reply:
	// wait for them, bounded.
	waitUsers := func(query, want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			_, out, _ := apiCall(t, "GET", api+"presence?"+query, apiSecretOld, "")
			got := mustJSON(t, out["users"])
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("presence of %s: %s, want %s", query, got, want)
			}
			time.Sleep(10 * time.Millisecond) // polling the API
		}
	}
	waitUsers("namespace=/&room=room-1", `["alice","bob"]`)
	waitUsers("namespace=/", `["alice","bob","carol"]`)

	serve(t, &Handler{Name: "no-presence"})
	noAPI := serveAPI(t, &API{Hub: "no-presence"})
	status, out, _ := apiCall(t, "GET", noAPI+"presence?namespace=/", apiSecretOld, "")
	if status != 404 || !strings.Contains(out["error"].(string), "presence is not configured") {
		t.Fatalf("presence without presence: %d %v", status, out)
	}
}

// TestPresenceConfig: the checks, and the grace's default with recovery.
func TestPresenceConfig(t *testing.T) {
	tests := []struct {
		name string
		h    *Handler
		want string
	}{
		{"hook without webhook block", &Handler{Presence: &PresenceConfig{Webhook: "http://127.0.0.1:1/p"}}, "add a webhook block"},
		{"by a header", &Handler{Presence: &PresenceConfig{By: "{socketio.header.X-User}"}}, "chosen by the client"},
		{"by the auth payload", &Handler{Presence: &PresenceConfig{By: "u-{socketio.auth.user}"}}, "chosen by the client"},
		{"negative grace", &Handler{Presence: &PresenceConfig{Grace: -1}}, "must not be negative"},
		{"by an identity", &Handler{Presence: &PresenceConfig{By: "{http.auth.user.id}"}}, ""},
		{"with the redis adapter", &Handler{Presence: &PresenceConfig{}, Adapter: &AdapterConfig{Type: AdapterRedis, URL: "redis://127.0.0.1:6379"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	pp, err := (&PresenceConfig{}).build(caddy.NewReplacer(), &Recovery{MaxDisconnectionDuration: caddy.Duration(time.Minute)})
	if err != nil || pp.opts.Grace != time.Minute || pp.by != DefaultPresenceBy {
		t.Fatalf("with recovery: grace %v by %q (%v), want the recovery window and the sub claim", pp.opts.Grace, pp.by, err)
	}
	if keys := (&Handler{Presence: &PresenceConfig{By: "{http.auth.user.id}"}}).identityKeys(); !slices.Contains(keys, "http.auth.user.id") {
		t.Fatalf("identity keys %v: the presence template's placeholder is not captured", keys)
	}
}

// TestPresenceTrackerChoice: the memory adapter gets a single node's
// tracker, the redis adapter one on its Redis; with Redis unreachable it
// still counts and closes at once.
func TestPresenceTrackerChoice(t *testing.T) {
	t.Parallel()
	p := &policy{logger: zap.NewNop()}
	if _, ok := (&hub{}).newPresenceTracker(p, realtime.PresenceOptions{}).(*realtime.Presence); !ok {
		t.Fatal("memory adapter: not a realtime.Presence")
	}
	h := &hub{redisOptions: &redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1}, redisKey: "k"}
	tr, ok := h.newPresenceTracker(p, realtime.PresenceOptions{}).(*redispresence.Tracker)
	if !ok {
		t.Fatal("redis adapter: not a redispresence.Tracker")
	}
	if !tr.Add("alice") || tr.Len() != 1 {
		t.Fatal("not counting with Redis away")
	}
	start := time.Now()
	tr.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with Redis away", d)
	}
}

// TestPresenceRedisHubs: two hubs on one Redis, as two nodes in one
// process (so -race sees the module's side): a user with a socket on each
// is online once; the emit API of one hub lists the users of the other;
// both gone past the grace, one offline.
func TestPresenceRedisHubs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	r := testkit.StartRedis(t)
	b := newHookBackend(t, func(hookCall, *http.Request) (int, any) { return 204, nil })
	const grace = 500 * time.Millisecond
	node := func(name string) string {
		h := &Handler{
			Name:     name,
			Auth:     &AuthConfig{Mode: AuthOptional, Secret: testSecret},
			Join:     []string{"room-{socketio.query.room}"},
			Adapter:  &AdapterConfig{Type: AdapterRedis, URL: r.URL()},
			Presence: &PresenceConfig{Webhook: b.url("/presence"), Grace: caddy.Duration(grace)},
			Webhook:  &Webhook{Secret: testWebhookSecret, Disconnect: b.url("/disconnect")},
		}
		base, _ := serve(t, h)
		return base
	}
	baseA, baseB := node("presence-redis-a"), node("presence-redis-b")
	room := map[string][]string{"room": {"1"}}
	a := dial(t, baseA, room)
	a.connectAs(t, "alice")
	ab := dial(t, baseB, room)
	ab.connectAs(t, "alice")
	bob := dial(t, baseB, room)
	bob.connectAs(t, "bob")
	got := waitPresence(t, b, 2)
	slices.Sort(got)
	if !slices.Equal(got, []string{"online alice", "online bob"}) {
		t.Fatalf("presence calls %q, want one online each", got)
	}
	api := serveAPI(t, &API{Hub: "presence-redis-a"})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out, _ := apiCall(t, "GET", api+"presence?namespace=/&room=room-1", apiSecretOld, "")
		if mustJSON(t, out["users"]) == `["alice","bob"]` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub A lists %v, want alice and bob (bob on hub B)", out)
		}
	}
	a.Close()
	ab.Close()
	if got := waitPresence(t, b, 3); !slices.Contains(got, "offline alice") {
		t.Fatalf("presence calls %q, want alice offline", got)
	}
	time.Sleep(2 * grace) // a second offline would come by now
	if got := presenceCalls(b); len(got) != 3 {
		t.Fatalf("presence calls %q, want exactly one offline", got)
	}
}
