package socketio

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Tests of adminui.go: the admin_ui block wired to a hub.

const uiPassword = "ui-password"

func uiHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(uiPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// adminLogin connects the admin namespace with the UI's credentials and
// returns the CONNECT answer, skipping the admin events that may come
// before it.
func adminLogin(t *testing.T, c *wsClient, ns, password string) string {
	t.Helper()
	c.Send("40" + ns + `,{"username":"ops","password":"` + password + `"}`)
	for {
		if f := c.Read(); !strings.HasPrefix(f, "42"+ns+",") {
			return f
		}
	}
}

// TestAdminUIOnHub: the admin namespace takes the UI's login, not the
// hub's JWT auth; a reload that changes the hub's auth re-verifies the
// application's sockets but leaves the admins alone; a reload that drops
// admin_ui disconnects them and refuses the namespace.
func TestAdminUIOnHub(t *testing.T) {
	hash := uiHash(t)
	h := tutorialHandler("adminui")
	h.AdminUI = &AdminUI{Username: "ops", PasswordHash: hash}
	base, _ := serve(t, h)

	admin := dial(t, base, nil)
	if got := adminLogin(t, admin, "/admin", "wrong"); got != `44/admin,{"message":"invalid credentials"}` {
		t.Fatalf("wrong password: %q", got)
	}
	if got := adminLogin(t, admin, "/admin", uiPassword); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("login: %q", got)
	}
	// No token needed on the admin namespace; "/" still wants one.
	user := dial(t, base, nil)
	user.Send("40")
	user.ExpectPrefix(`44{"message":`)

	rotated := tutorialHandler("adminui")
	rotated.Auth.Secret = testSecret + "-rotated"
	rotated.AdminUI = &AdminUI{Username: "ops", PasswordHash: hash}
	provision(t, rotated)
	admin.Send(`42/admin,1["join","/","x","nobody"]`)
	for {
		if f := admin.Read(); strings.HasPrefix(f, "43/admin,") {
			if f != `43/admin,1[{"ok":true}]` {
				t.Fatalf("action after an auth reload: %q", f)
			}
			break
		}
	}

	dropped := tutorialHandler("adminui")
	dropped.Auth.Secret = testSecret + "-rotated"
	provision(t, dropped)
	deadline := time.Now().Add(5 * time.Second)
	for f := admin.Read(); f != "41/admin,"; f = admin.Read() {
		if time.Now().After(deadline) {
			t.Fatal("admin not disconnected when admin_ui went away")
		}
	}
	again := dial(t, base, nil)
	if got := adminLogin(t, again, "/admin", uiPassword); got != `44/admin,{"message":"Invalid namespace"}` {
		t.Fatalf("after admin_ui went away: %q", got)
	}
}

// TestAdminUICheck: the block's rules, for JSON configs as for the
// Caddyfile.
func TestAdminUICheck(t *testing.T) {
	hash := uiHash(t)
	cases := []struct {
		name string
		h    Handler
		want string
	}{
		{"ok", Handler{AdminUI: &AdminUI{Username: "a", PasswordHash: hash}}, ""},
		{"placeholder hash", Handler{AdminUI: &AdminUI{Username: "a", PasswordHash: "{env.X}"}}, ""},
		{"no username", Handler{AdminUI: &AdminUI{PasswordHash: hash}}, "admin_ui: username is required"},
		{"no hash", Handler{AdminUI: &AdminUI{Username: "a"}}, "admin_ui: password_hash is required"},
		{"bad hash", Handler{AdminUI: &AdminUI{Username: "a", PasswordHash: "plain"}}, "not a bcrypt hash"},
		{"root namespace", Handler{AdminUI: &AdminUI{Username: "a", PasswordHash: hash, Namespace: "/"}}, "not be the main namespace"},
		{"served", Handler{Namespaces: []string{"*"}, AdminUI: &AdminUI{Username: "a", PasswordHash: hash}}, `namespace "/admin" is also served by namespaces "*"`},
		{"served custom", Handler{Namespaces: []string{"/", "/ops"}, AdminUI: &AdminUI{Username: "a", PasswordHash: hash, Namespace: "/ops"}}, "is also served"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.check()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// A placeholder that resolves to no hash fails at Provision.
	t.Setenv("ADMIN_UI_TEST_HASH", "plain")
	h := &Handler{Name: "adminui-env", AdminUI: &AdminUI{Username: "a", PasswordHash: "{env.ADMIN_UI_TEST_HASH}"}}
	if err := h.Provision(testContext(t)); err == nil || !strings.Contains(err.Error(), "not a bcrypt hash") {
		_ = h.Cleanup()
		t.Fatalf("Provision with a bad hash from the environment: %v", err)
	}
	if n := poolSize(); n != 0 {
		t.Errorf("a refused Provision left %d hubs", n)
	}
}
