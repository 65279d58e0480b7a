package socketio

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
)

func TestMintToken(t *testing.T) {
	now := time.Now()
	tok, err := mintToken(tokenOptions{
		Secret: testSecret, Sub: "alice", TTL: 2 * time.Hour, Aud: "chat", Iss: "dev",
		Claims: []string{"role=admin", "level=3", "flags={\"a\":true}", "note=has=equals"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret), Issuer: "dev", Audience: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	for k, want := range map[string]string{"sub": "alice", "role": "admin", "level": "3", "note": "has=equals", "aud": "chat", "iss": "dev"} {
		if got, _ := format(claims[k]); got != want {
			t.Errorf("claim %s = %q, want %q", k, got, want)
		}
	}
	if _, isNum := claims["level"].(json.Number); !isNum {
		t.Errorf("level is %T, want a number", claims["level"])
	}
	if flags, _ := claims["flags"].(map[string]any); flags["a"] != true {
		t.Errorf("flags = %v", claims["flags"])
	}
	exp, ok := claims.Expiry()
	if !ok || exp.Unix() != now.Add(2*time.Hour).Unix() {
		t.Errorf("exp = %v", exp)
	}
	for _, bad := range []tokenOptions{
		{TTL: time.Hour},
		{Secret: "x", TTL: 0},
		{Secret: "x", TTL: time.Hour, Claims: []string{"novalue"}},
		{Secret: "x", TTL: time.Hour, Claims: []string{"=v"}},
	} {
		if _, err := mintToken(bad, now); err == nil {
			t.Errorf("mintToken(%+v) accepted", bad)
		}
	}
}
