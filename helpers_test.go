package socketio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// The helpers the root package's tests share: a provisioned handler served
// by httptest, raw clients of it (testkit.WS), tokens, JSON.

const testSecret = "test-secret-0123456789abcdef-0123456789"

func testContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func poolSize() int {
	n := 0
	hubs.Range(func(_, _ any) bool { n++; return true })
	return n
}

// provision provisions h and arranges its cleanup; the pool must be empty
// afterwards.
func provision(t *testing.T, h *Handler) {
	t.Helper()
	if err := h.Provision(testContext(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
}

type caddyHandlerFunc func(http.ResponseWriter, *http.Request) error

func (f caddyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// tutorialHandler is the Caddyfile.example configuration with test extras.
func tutorialHandler(name string) *Handler {
	return &Handler{
		Name:         name,
		Namespaces:   []string{"/", "/team-*"},
		Auth:         &AuthConfig{Secret: testSecret, Leeway: caddy.Duration(time.Millisecond)},
		Join:         []string{"room-userId-{socketio.query.roomNumber}"},
		Announce:     &Message{Event: "room-userId", Text: "You are in room number: {socketio.query.roomNumber}"},
		Emit:         &Message{Event: "message_from_server", Text: "Message: welcome {socketio.claims.sub}"},
		Relay:        []string{"message_from_client"},
		LogEvents:    []string{"message_from_client"},
		RoomRequests: &RoomRequests{Join: "join", Leave: "leave"},
		AllowRooms:   []string{"room-{socketio.claims.sub}-*"},
	}
}

// serve provisions h, swaps its logger for an observer, and serves it.
func serve(t *testing.T, h *Handler) (string, *observer.ObservedLogs) {
	t.Helper()
	provision(t, h)
	core, logs := observer.New(zapcore.DebugLevel)
	h.entry.pol.logger = zap.New(core)
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/", logs
}

// serveObserved is serve with the engine's own log (Engine.IO and Socket.IO
// layers) going to an observer too.
func serveObserved(t *testing.T, h *Handler) (httpBase, wsBase string, logs *observer.ObservedLogs) {
	t.Helper()
	provision(t, h)
	core, logs := observer.New(zapcore.DebugLevel)
	h.entry.pol.logger = zap.New(core)
	opts := h.serverOptions()
	opts.Logger, opts.Engine.Logger = zap.New(core), zap.New(core)
	h.hub.server.SetOptions(opts)
	notFound := caddyHandlerFunc(func(w http.ResponseWriter, r *http.Request) error { http.NotFound(w, r); return nil })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = h.ServeHTTP(w, r, notFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/socket.io/", "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket.io/", logs
}

// wsClient is a raw Engine.IO WebSocket client of a served handler: a
// testkit.WS (pings answered, 5 s per frame, fatal on error), whose methods
// the tests call (Send, Expect, ExpectPrefix, Read, ConnectSocket, ...).
type wsClient struct {
	*testkit.WS
}

// dial connects to the handler served at base (see serve) over WebSocket
// with query added and reads the open packet.
func dial(t *testing.T, base string, query url.Values) *wsClient {
	t.Helper()
	return dialHeader(t, base, query, nil)
}

// dialHeader is dial with request headers.
func dialHeader(t *testing.T, base string, query url.Values, header http.Header) *wsClient {
	t.Helper()
	return &wsClient{WS: testkit.DialWS(t, base, query, header)}
}

// token signs claims with testSecret (an exp an hour ahead unless claims
// has one).
func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return testkit.HS256(t, testSecret, claims)
}

func connectPayload(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(i int) string { return strconv.Itoa(i) }

// The fast loop runs this package's timer-bound tests side by side.
func TestMain(m *testing.M) { os.Exit(testkit.RunShortWide(m)) }

// joinTutorial connects a socket of the tutorial handler served at base
// as sub with ?roomNumber=room, and reads its CONNECT answer, its room's
// announcement and its welcome.
func joinTutorial(t *testing.T, base, room, sub string) *wsClient {
	t.Helper()
	c := dial(t, base, url.Values{"roomNumber": {room}})
	c.Send("40" + connectPayload(t, map[string]any{"token": token(t, jwt.MapClaims{"sub": sub})}))
	c.ExpectPrefix(`40{"sid":"`)
	c.Expect(`42["room-userId","You are in room number: ` + room + `"]`)
	c.Expect(`42["message_from_server","Message: welcome ` + sub + `"]`)
	return c
}
