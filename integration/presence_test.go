//go:build live

package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
)

// TestPresenceLive: two sockets of one user through a real Caddy, each
// behind its own cut proxy. One drops abruptly and comes back within the
// grace: no offline (it was recovered, too). Both leave and stay gone
// past the grace: exactly one offline. The emit API lists the user while
// it has a socket in the room.
func TestPresenceLive(t *testing.T) {
	drv := nodeclient.Start(t)
	b := newRecBackend(t)
	base := startRecoveryCaddy(t, b.srv.URL)
	const user = "gina"
	waitPresence := func(want []string) {
		t.Helper()
		deadline := time.After(clientWait)
		for !slices.Equal(b.presence(), want) {
			select {
			case <-b.notify:
			case <-deadline:
				t.Fatalf("presence calls %q, want %q", b.presence(), want)
			}
		}
	}

	c1, p1, first := recClient(t, drv, base, "p1", "websocket", user, "pres")
	c2, _, _ := recClient(t, drv, base, "p2", "polling", user, "pres")
	waitPresence([]string{"online " + user})
	status, out := apiITCall(t, base, "GET", "presence?namespace=/&room=room-pres", apiITSecretOld, "")
	if status != 200 || toJSON(t, out["users"]) != `["`+user+`"]` {
		t.Fatalf("presence of room-pres: %d %v", status, out)
	}

	drop(t, b, p1, first.Sid, "websocket")
	p1.pause(false)
	if ev := waitBack(t, c1, clientWait); !ev.Recovered {
		t.Fatalf("back: %+v, want recovered", ev)
	}
	c2.Disconnect()
	if _, err := c2.WaitDisconnect(clientWait); err != nil {
		t.Fatal(err)
	}
	time.Sleep(recGrace + 500*time.Millisecond) // the grace passing is what is tested
	if got := b.presence(); !slices.Equal(got, []string{"online " + user}) {
		t.Fatalf("presence calls %q: offline while a socket was back or left", got)
	}

	c1.Disconnect()
	waitPresence([]string{"online " + user, "offline " + user})
	time.Sleep(recGrace + 500*time.Millisecond) // a second offline would come by now
	if got := b.presence(); len(got) != 2 {
		t.Fatalf("presence calls %q, want exactly one offline", got)
	}
	status, out = apiITCall(t, base, "GET", "presence?namespace=/&room=room-pres", apiITSecretOld, "")
	if status != 200 || toJSON(t, out["users"]) != `[]` {
		t.Fatalf("presence of room-pres after all left: %d %v", status, out)
	}
}
