package socketio

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/redisadapter"
)

// recoveringHandler has recovery, presence, a webhook and the welcome
// emit (so each client gets an offset as soon as it connects).
func recoveringHandler(name string, b *hookBackend, skip bool) *Handler {
	return &Handler{
		Name:     name,
		Auth:     &AuthConfig{Secret: testSecret},
		Join:     []string{"room-{socketio.query.room}"},
		Emit:     &Message{Event: "welcome", Text: "hi {socketio.claims.sub}"},
		Recovery: &Recovery{SkipMiddlewares: &skip},
		Presence: &PresenceConfig{Webhook: b.url("/presence"), Grace: caddy.Duration(time.Minute)},
		Webhook: &Webhook{
			Secret:     testWebhookSecret,
			Connect:    b.url("/connect"),
			Disconnect: b.url("/disconnect"),
			Events:     []WebhookRoute{{URL: b.url("/event"), Match: []string{"whoami"}}},
		},
	}
}

// welcomeOffset reads the welcome event and returns its offset.
func welcomeOffset(t *testing.T, c *wsClient) string {
	t.Helper()
	got := c.ExpectPrefix(`42["welcome",`)
	var args []any
	if err := json.Unmarshal([]byte(got[2:]), &args); err != nil || len(args) != 3 {
		t.Fatalf("welcome %q: want [welcome, text, offset] (%v)", got, err)
	}
	return args[2].(string)
}

func connectReplyOf(t *testing.T, frame string) (sid, pid string) {
	t.Helper()
	var r struct{ Sid, Pid string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, "40")), &r); err != nil || r.Pid == "" {
		t.Fatalf("CONNECT reply %q: want a sid and a pid (%v)", frame, err)
	}
	return r.Sid, r.Pid
}

// waitGone waits until the hub has no connection left.
func waitGone(t *testing.T, h *Handler) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.hub.server.ConnCount() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the connection is still open after 5s")
		}
		time.Sleep(5 * time.Millisecond) // polling the hub, bounded
	}
}

// TestRecoveryThroughTheModule: a socket whose transport drops is
// announced "recoverable" to the disconnect hook; its client, back with
// pid and offset, gets the same socket with the events it missed, its
// claims and connect-hook data (the event hook still sees them), and the
// connect hook hears "recovered": true (a notice when the middlewares are
// skipped, the usual call when not), never the pid; the user never went
// offline.
func TestRecoveryThroughTheModule(t *testing.T) {
	for _, skip := range []bool{true, false} {
		name := "recovery-module-skip"
		if !skip {
			name = "recovery-module-run"
		}
		t.Run(name, func(t *testing.T) {
			b := newHookBackend(t, func(c hookCall, _ *http.Request) (int, any) {
				switch c.Path {
				case "/connect":
					return 200, map[string]any{"data": map[string]any{"seen": c.Body["recovered"] == true}}
				case "/event":
					return 200, map[string]any{"ack": []any{c.Body["claims"].(map[string]any)["sub"], c.Body["data"]}}
				}
				return 204, nil
			})
			h := recoveringHandler(name, b, skip)
			base, _ := serve(t, h)
			tok := token(t, jwt.MapClaims{"sub": "alice"})
			c := dial(t, base, map[string][]string{"room": {"1"}})
			c.Send("40" + connectPayload(t, map[string]any{"token": tok}))
			sid, pid := connectReplyOf(t, c.ExpectPrefix(`40{"sid":"`))
			last := welcomeOffset(t, c)
			c.Close()
			waitGone(t, h)
			b.waitCalls(3) // connect, presence online, disconnect
			if dc := b.callsTo("/disconnect"); len(dc) != 1 || dc[0].Body["recoverable"] != true || dc[0].Body["reason"] != "transport close" {
				t.Fatalf("disconnect calls %v, want one recoverable transport close", dc)
			}
			ns, _ := h.hub.server.Namespace("/")
			_ = ns.To("room-1").Emit("missed", 1)
			_ = ns.To("room-1").Emit("missed", 2)

			c2 := dial(t, base, nil)
			c2.Send("40" + connectPayload(t, map[string]any{"pid": pid, "offset": last, "token": tok}))
			c2.ExpectPrefix(`42["missed",1,"`)
			c2.ExpectPrefix(`42["missed",2,"`)
			sid2, pid2 := connectReplyOf(t, c2.ExpectPrefix(`40{"sid":"`))
			if sid2 != sid || pid2 != pid {
				t.Fatalf("recovered as %s/%s, want %s/%s", sid2, pid2, sid, pid)
			}
			welcomeOffset(t, c2) // the connection rules run again, as Node's connection handlers
			c2.Send(`421["whoami"]`)
			// Skipped, the hook's reply to the notice changes nothing; run,
			// its new data replaces the old.
			c2.Expect(`431["alice",{"seen":` + strconv.FormatBool(!skip) + `}]`)
			// The recovered socket holds no connect view (the state
			// resume made is the one whose view is dropped).
			for _, s := range h.hub.server.Of("/").Sockets() {
				if stateOf(s).holdsConnectView() {
					t.Fatal("a recovered socket still holds its connect view")
				}
			}
			for deadline := time.Now().Add(5 * time.Second); len(b.callsTo("/connect")) < 2; {
				if time.Now().After(deadline) {
					t.Fatal("the connect hook was not told of the recovery")
				}
				time.Sleep(5 * time.Millisecond) // polling the backend, bounded
			}
			cc := b.callsTo("/connect")
			if cc[1].Body["recovered"] != true || cc[1].Body["socket"] != sid {
				t.Fatalf("second connect call %v, want recovered true for %s", cc[1].Body, sid)
			}
			if a, _ := cc[1].Body["auth"].(map[string]any); a["pid"] != nil || a["offset"] != nil {
				t.Fatalf("connect call carries the recovery fields: %v", a)
			}
			if got := presenceCalls(b); !slices.Equal(got, []string{"online alice"}) {
				t.Fatalf("presence calls %q, want only the first online", got)
			}
		})
	}
}

// TestRecoveryExpiredToken: a socket recovered without the middlewares
// whose token expired meanwhile is disconnected at once.
func TestRecoveryExpiredToken(t *testing.T) {
	testkit.WaitsOnClock(t)
	t.Parallel()
	b := newHookBackend(t, func(hookCall, *http.Request) (int, any) { return 204, nil })
	h := recoveringHandler("recovery-expired", b, true)
	h.Auth.Leeway = caddy.Duration(time.Millisecond)
	base, _ := serve(t, h)
	tok := token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(1500 * time.Millisecond).Unix()})
	c := dial(t, base, nil)
	c.Send("40" + connectPayload(t, map[string]any{"token": tok}))
	_, pid := connectReplyOf(t, c.ExpectPrefix(`40{"sid":"`))
	last := welcomeOffset(t, c)
	c.Close()
	waitGone(t, h)
	time.Sleep(1600 * time.Millisecond) // the token's expiry is what is tested
	c2 := dial(t, base, nil)
	c2.Send("40" + connectPayload(t, map[string]any{"pid": pid, "offset": last, "token": tok}))
	c2.ExpectPrefix(`40{"sid":"`)
	for {
		f := c2.Read()
		if f == "41" {
			return
		}
		if !strings.HasPrefix(f, "42") {
			t.Fatalf("frame %q, want events then the DISCONNECT", f)
		}
	}
}

func TestRecoveryConfig(t *testing.T) {
	if err := (&Handler{Recovery: &Recovery{Buffer: -1}}).check(); err == nil {
		t.Fatal("a negative buffer passed")
	}
	o := (&Recovery{}).options()
	if o.MaxDisconnectionDuration != 2*time.Minute || o.RunMiddlewares {
		t.Fatalf("defaults %+v, want Node's: 2m and middlewares skipped", o)
	}
	if (*Recovery)(nil).options() != nil {
		t.Fatal("no recovery block, but recovery options")
	}
}

// TestRecoveryWithRedis: recovery is taken with the redis adapter, and a
// hub on a cluster keeps its sessions and events in the cluster's store
// (what the Caddyfile gave stays: window, skip_middlewares).
func TestRecoveryWithRedis(t *testing.T) {
	h := new(Handler)
	in := "socketio {\n\trecovery {\n\t\tmax_disconnection_duration 30s\n\t}\n\tadapter redis redis://127.0.0.1:1\n}"
	if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokensNamed(t, in))); err != nil {
		t.Fatalf("recovery with the redis adapter refused: %v", err)
	}
	if err := h.check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	cl, err := redisadapter.New(redisadapter.Options{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	hb := &hub{cluster: cl}
	opts := hb.onCluster(realtime.Options{Recovery: h.Recovery.options()})
	if opts.Recovery.NewStore == nil || opts.Recovery.MaxDisconnectionDuration != 30*time.Second {
		t.Fatalf("recovery options %+v", opts.Recovery)
	}
	if _, ok := opts.Recovery.NewStore(*opts.Recovery).(*redisadapter.RecoveryStore); !ok {
		t.Fatal("the hub's store is not the cluster's")
	}
	if got := (&hub{}).onCluster(realtime.Options{Recovery: h.Recovery.options()}); got.Recovery.NewStore != nil {
		t.Fatal("a hub without a cluster got a store")
	}
}
