//go:build live

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// adminUIPassword is the dashboard's password in these tests.
const adminUIPassword = "dashboard-pass"

// startAdminUICaddy runs a Caddy with two hubs that serve the admin UI
// (the main one, and a read-only one on /ro/), the UI's static build from
// the npm package under /admin-ui/, and an origin allowed with
// credentials next to "*".
func startAdminUICaddy(t *testing.T) *caddyProc {
	t.Helper()
	bin := testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	// Cost 10, not hash-password's 14: this machine runs other tests too.
	hash := hashPasswordCost(t, bin, adminUIPassword, 10)
	cfg := fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	handle_path /admin-ui/* {
		root * testdata/node_modules/@socket.io/admin-ui/ui/dist
		file_server
	}
	socketio {
		origins * http://admin.example
		room_requests join leave
		allow_rooms *
		admin_ui {
			username ops
			password_hash %s
		}
	}
	socketio {
		name ro
		path /ro/
		admin_ui {
			username ops
			password_hash %s
			readonly
		}
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, hash, hash)
	return startCaddyConfig(t, sc, cfg)
}

// connectAdmin logs a socket.io-client 4.8 into the admin namespace the
// way the UI does (its io() options) and returns it once connected.
func connectAdmin(t *testing.T, drv *nodeclient.Driver, id, base, path string, auth map[string]any) (*nodeclient.Client, error) {
	t.Helper()
	c := drv.Connect(id, "4", base+"/admin", map[string]any{
		"path":            path,
		"auth":            auth,
		"withCredentials": true,
		"transports":      []any{"polling", "websocket"},
		"reconnection":    false,
	})
	_, err := c.WaitConnect(clientWait)
	return c, err
}

// waitAdminEvent waits for event name whose arguments match.
func waitAdminEvent(t *testing.T, c *nodeclient.Client, name string, match func(args []any) bool) []any {
	t.Helper()
	ev, err := c.Wait(clientWait, name, func(e nodeclient.Event) bool {
		return e.Type == "event" && e.Name == name && match(e.Args)
	})
	if err != nil {
		t.Fatalf("%s: %v\nreceived: %v", name, err, eventNames(c))
	}
	return ev.Args
}

func eventNames(c *nodeclient.Client) []string {
	var out []string
	for _, e := range c.Events() {
		out = append(out, e.Type+":"+e.Name)
	}
	return out
}

var isoTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestAdminUILive drives the admin namespace of a real Caddy with the
// real socket.io-client 4.8, as @socket.io/admin-ui 0.5.1 does: the login,
// the live view of a socket that connects, upgrades, joins, sends, leaves
// and disconnects, the actions, read-only, and the hostile cases.
func TestAdminUILive(t *testing.T) {
	t.Parallel()
	drv := nodeclient.Start(t)
	c := startAdminUICaddy(t)
	base := c.BaseURL
	ops := map[string]any{"username": "ops", "password": adminUIPassword}

	admin, err := connectAdmin(t, drv, "admin", base, "/socket.io", ops)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	session := waitAdminEvent(t, admin, "session", func([]any) bool { return true })
	sessionID, _ := session[0].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(sessionID) {
		t.Errorf("session %v", session)
	}
	cfg := waitAdminEvent(t, admin, "config", func([]any) bool { return true })
	features, _ := cfg[0].(map[string]any)["supportedFeatures"].([]any)
	for _, f := range []any{"JOIN", "LEAVE", "DISCONNECT", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"} {
		if !slices.Contains(features, f) {
			t.Errorf("features %v lack %v", features, f)
		}
	}
	waitAdminEvent(t, admin, "all_sockets", func(a []any) bool { list, _ := a[0].([]any); return len(list) == 1 })
	waitAdminEvent(t, admin, "server_stats", func(a []any) bool {
		s, _ := a[0].(map[string]any)
		return s["clientsCount"] == float64(1) && s["pid"] != nil && s["uptime"] != nil
	})

	t.Run("live view", func(t *testing.T) {
		user := drv.Connect("user", "4", base, map[string]any{"reconnection": false})
		uid, err := user.WaitConnect(clientWait)
		if err != nil {
			t.Fatal(err)
		}
		got := waitAdminEvent(t, admin, "socket_connected", func(a []any) bool {
			s, _ := a[0].(map[string]any)
			return s["id"] == uid
		})
		s := got[0].(map[string]any)
		hs, _ := s["handshake"].(map[string]any)
		if s["nsp"] != "/" || s["transport"] != "polling" || len(s["clientId"].(string)) != 12 ||
			hs["address"] != "127.0.0.1" || hs["issued"] == nil || !isoTimestamp.MatchString(got[1].(string)) {
			t.Errorf("socket_connected %v", got)
		}
		upd := waitAdminEvent(t, admin, "socket_updated", func(a []any) bool {
			m, _ := a[0].(map[string]any)
			return m["id"] == uid
		})
		if m := upd[0].(map[string]any); m["nsp"] != "/" || m["transport"] != "websocket" {
			t.Errorf("socket_updated %v", upd)
		}
		if _, err := user.EmitWithAck(clientWait, "join", "room-a"); err != nil {
			t.Fatal(err)
		}
		recv := waitAdminEvent(t, admin, "event_received", func(a []any) bool { return a[1] == uid })
		if ev, _ := recv[2].([]any); recv[0] != "/" || len(ev) != 2 || ev[0] != "join" || ev[1] != "room-a" {
			t.Errorf("event_received %v", recv)
		}
		joined := waitAdminEvent(t, admin, "room_joined", func(a []any) bool { return a[1] == "room-a" })
		if joined[0] != "/" || joined[2] != uid || !isoTimestamp.MatchString(joined[3].(string)) {
			t.Errorf("room_joined %v", joined)
		}
		if _, err := user.EmitWithAck(clientWait, "leave", "room-a"); err != nil {
			t.Fatal(err)
		}
		waitAdminEvent(t, admin, "room_left", func(a []any) bool { return a[1] == "room-a" && a[2] == uid })
		user.Disconnect()
		gone := waitAdminEvent(t, admin, "socket_disconnected", func(a []any) bool { return a[1] == uid })
		if gone[0] != "/" || gone[2] != "client namespace disconnect" {
			t.Errorf("socket_disconnected %v", gone)
		}
		waitAdminEvent(t, admin, "room_left", func(a []any) bool { return a[1] == uid && a[2] == uid })
	})

	t.Run("actions", func(t *testing.T) {
		user := drv.Connect("target", "4", base, map[string]any{"reconnection": false})
		uid, err := user.WaitConnect(clientWait)
		if err != nil {
			t.Fatal(err)
		}
		admin.Emit("join", "/", "vip", uid)
		waitAdminEvent(t, admin, "room_joined", func(a []any) bool { return a[1] == "vip" && a[2] == uid })
		admin.Emit("leave", "/", "vip")
		waitAdminEvent(t, admin, "room_left", func(a []any) bool { return a[1] == "vip" && a[2] == uid })
		admin.Emit("_disconnect", "/", false, uid)
		if reason, err := user.WaitDisconnect(clientWait); err != nil || reason != "io server disconnect" {
			t.Errorf("disconnect action: %q %v", reason, err)
		}
	})

	t.Run("wrong credentials", func(t *testing.T) {
		for i, auth := range []map[string]any{
			{"username": "ops", "password": "guess"},
			{"username": "root", "password": adminUIPassword},
			{"sessionId": "00000000000000000000000000000000"},
		} {
			_, err := connectAdmin(t, drv, fmt.Sprint("intruder-", i), base, "/socket.io", auth)
			var ce *nodeclient.ConnectError
			if !errors.As(err, &ce) || ce.Message != "invalid credentials" {
				t.Errorf("auth %v: %v", auth, err)
			}
		}
	})

	t.Run("session", func(t *testing.T) {
		again, err := connectAdmin(t, drv, "admin-again", base, "/socket.io", map[string]any{"sessionId": sessionID})
		if err != nil {
			t.Fatalf("the UI's page reload with its session: %v", err)
		}
		waitAdminEvent(t, again, "config", func([]any) bool { return true })
	})

	t.Run("readonly", func(t *testing.T) {
		ro, err := connectAdmin(t, drv, "readonly", base, "/ro/", ops)
		if err != nil {
			t.Fatal(err)
		}
		cfg := waitAdminEvent(t, ro, "config", func([]any) bool { return true })
		if f := cfg[0].(map[string]any)["supportedFeatures"].([]any); !slices.Equal(f, []any{"AGGREGATED_EVENTS", "ALL_EVENTS"}) {
			t.Errorf("readonly features %v", f)
		}
		user := drv.Connect("ro-user", "4", base, map[string]any{"path": "/ro/", "reconnection": false})
		uid, err := user.WaitConnect(clientWait)
		if err != nil {
			t.Fatal(err)
		}
		waitAdminEvent(t, ro, "socket_connected", func(a []any) bool { return a[0].(map[string]any)["id"] == uid })
		reply, err := ro.EmitWithAck(clientWait, "_disconnect", "/", true, uid)
		if err != nil || len(reply) != 1 || reply[0].(map[string]any)["error"] != "read-only" {
			t.Errorf("readonly _disconnect: %v %v", reply, err)
		}
		if _, err := ro.EmitWithAck(clientWait, "join", "/", "vip", uid); err != nil {
			t.Fatal(err)
		}
		// The user is still there, in no new room: its own event shows it.
		user.Emit("still-here")
		waitAdminEvent(t, ro, "event_received", func(a []any) bool { return a[1] == uid })
		for _, e := range ro.EventsNamed("room_joined") {
			if e[1] == "vip" {
				t.Errorf("readonly join acted: %v", e)
			}
		}
	})

	t.Run("cors", func(t *testing.T) {
		for _, tc := range []struct{ origin, acao, creds string }{
			{"http://admin.example", "http://admin.example", "true"},
			{"http://evil.example", "*", ""},
		} {
			h := getHeaders(t, base+"/socket.io/?EIO=4&transport=polling", http.Header{"Origin": {tc.origin}})
			if h.Get("Access-Control-Allow-Origin") != tc.acao || h.Get("Access-Control-Allow-Credentials") != tc.creds {
				t.Errorf("origin %s: allow-origin %q, credentials %q", tc.origin, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
			}
		}
	})

	t.Run("static ui", func(t *testing.T) {
		code, body := rawGet(t, base, "/admin-ui/", nil)
		if code != http.StatusOK || !strings.Contains(body, "<title>Socket.IO Admin UI</title>") {
			t.Errorf("GET /admin-ui/: %d %.200q", code, body)
		}
	})

	// Last: it spends this client IP's logins.
	defer t.Run("login flood", func(t *testing.T) {
		throttled := 0
		for i := range 8 {
			_, err := connectAdmin(t, drv, fmt.Sprint("flood-", i), base, "/socket.io", map[string]any{"username": "ops", "password": "guess"})
			var ce *nodeclient.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("attempt %d: %v", i, err)
			}
			if ce.Message == "too many login attempts, try again later" {
				throttled++
			} else if ce.Message != "invalid credentials" {
				t.Fatalf("attempt %d: %q", i, ce.Message)
			}
		}
		if throttled == 0 {
			t.Error("8 wrong logins in a row from one IP were all compared")
		}
		// The admin's remembered session still logs in, and the
		// application's clients are not affected.
		if _, err := connectAdmin(t, drv, "admin-during-flood", base, "/socket.io", map[string]any{"sessionId": sessionID}); err != nil {
			t.Errorf("session login during the flood: %v", err)
		}
		user := drv.Connect("user-during-flood", "4", base, map[string]any{"reconnection": false})
		if _, err := user.WaitConnect(clientWait); err != nil {
			t.Errorf("application client during the flood: %v", err)
		}
	})

	t.Run("the admin namespace is not the application's", func(t *testing.T) {
		// The application's room requests do not reach it.
		reply, err := admin.EmitWithAck(clientWait, "join", "/admin", "x")
		if err != nil || len(reply) != 1 || reply[0].(map[string]any)["ok"] != true {
			t.Fatalf("join in the admin namespace, as the UI may: %v %v", reply, err)
		}
		// Its own events are not shown to the admins.
		admin.Emit("hello")
		time.Sleep(300 * time.Millisecond) // waits out the moment an echo would take, on purpose
		for _, e := range admin.EventsNamed("event_received") {
			if e[0] == "/admin" {
				t.Errorf("admin event shown: %v", e)
			}
		}
	})
}

// hashPasswordCost runs `caddy hash-password` with a bcrypt cost.
func hashPasswordCost(t *testing.T, bin, password string, cost int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caddyCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "hash-password", "--plaintext", password, "--bcrypt-cost", fmt.Sprint(cost)).Output()
	if err != nil {
		t.Fatalf("caddy hash-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// getHeaders makes a GET and returns the response headers.
func getHeaders(t *testing.T, u string, header http.Header) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := (&http.Client{Timeout: clientWait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.Header
}

// adminUIBrowserResult is the JSON line testdata/browser/admin-ui.cjs prints.
type adminUIBrowserResult struct {
	OK          bool     `json:"ok"`
	Error       string   `json:"error"`
	Refused     bool     `json:"refused"`
	Connected   bool     `json:"connected"`
	SocketShown bool     `json:"socketShown"`
	Disconnect  bool     `json:"disconnected"`
	Blocked     []string `json:"blocked"`
	Screenshot  string   `json:"screenshot"`
	Logs        []string `json:"logs"`
}

// TestBrowserAdminUI opens the real dashboard (the npm package's ui/dist,
// served by Caddy's file_server) in a headless Chromium cut off from the
// Internet, logs in (a wrong password first), finds a connected socket on
// its Sockets page and disconnects it with the row's button. The
// screenshot is kept in testdata/artifacts/.
func TestBrowserAdminUI(t *testing.T) {
	t.Parallel()
	root, node := needBrowser(t, "playwright-core/package.json", "@socket.io/admin-ui/package.json")
	c := startAdminUICaddy(t)
	user := testkit.DialWS(t, c.BaseURL+"/socket.io/", nil, nil)
	t.Cleanup(user.Close)
	id := user.ConnectSocket("")

	artifacts := filepath.Join(root, "testdata", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "admin-ui.cjs"),
		c.BaseURL, "ops", adminUIPassword, id, filepath.Join(artifacts, "admin-ui.png"))
	cmd.Dir = filepath.Join(root, "testdata")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "CHROMIUM_PATH="+chromiumPath)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res adminUIBrowserResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("admin-ui.cjs: %v; no JSON result (%v):\n%s\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if !res.OK || runErr != nil {
		t.Fatalf("admin-ui.cjs failed (%v): %s\nlogs: %q\ncaddy log:\n%s", runErr, res.Error, res.Logs, c.Log)
	}
	// Offline, the two stylesheets of index.html are what it reaches for.
	var fonts, icons bool
	for _, u := range res.Blocked {
		fonts = fonts || strings.HasPrefix(u, "https://fonts.googleapis.com/")
		icons = icons || strings.HasPrefix(u, "https://cdn.jsdelivr.net/npm/@mdi/font")
	}
	if !fonts || !icons {
		t.Errorf("blocked %q, want the Google Fonts and @mdi/font stylesheets", res.Blocked)
	}
	// The row's button disconnected the socket.
	user.Expect("41")
	t.Logf("screenshot %s; blocked %q", res.Screenshot, res.Blocked)
}
