package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// TestTrackGoroutines: a goroutine started after the snapshot is seen
// while it runs and not once it has ended.
func TestTrackGoroutines(t *testing.T) {
	g := TrackGoroutines("testkit.parkForTest")
	stop := make(chan struct{})
	done := make(chan struct{})
	go parkForTest(stop, done)
	deadline := time.Now().Add(DefaultWait)
	for len(g.New()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the new goroutine is not seen: %q", g.New())
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	g.Check(t, DefaultWait)
}

func parkForTest(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	<-stop
}

// TestWS: the open packet is read, pings are answered by the reader and
// never handed to the test, frames come in order.
func TestWS(t *testing.T) {
	pong := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		if r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("room") != "7" {
			_ = conn.WriteMessage(websocket.TextMessage, []byte("bad query "+r.URL.RawQuery))
			return
		}
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"x"}`))
		_ = conn.WriteMessage(websocket.TextMessage, []byte("2"))
		_, b, _ := conn.ReadMessage()
		pong <- string(b)
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"abc"}`))
		_, _, _ = conn.ReadMessage()
	}))
	t.Cleanup(srv.Close)
	c := DialWS(t, srv.URL+"/socket.io/", map[string][]string{"room": {"7"}}, nil)
	if got := <-pong; got != "3" { // the test has sent nothing yet
		t.Fatalf("ping answered with %q", got)
	}
	if sid := c.ConnectSocket(""); sid != "abc" {
		t.Fatalf("sid %q", sid)
	}
	c.Close()
	c.ExpectClosed(DefaultWait)
}

func TestHS256(t *testing.T) {
	claims := jwt.MapClaims{"sub": "a"}
	tok := HS256(t, "secret", claims)
	if _, ok := claims["exp"]; !ok || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q, claims %v", tok, claims)
	}
	if u := Unsigned(t, jwt.MapClaims{"sub": "a"}); !strings.HasSuffix(u, ".") {
		t.Fatalf("alg none token %q has a signature", u)
	}
}

func TestSyncBufferWaitFor(t *testing.T) {
	var b SyncBuffer
	go func() {
		for _, s := range []string{"starting\n", "still starting\n", "ready\n"} {
			time.Sleep(5 * time.Millisecond) // a process writing over time
			_, _ = b.Write([]byte(s))
		}
	}()
	if !b.WaitFor(DefaultWait, nil, func(out string) bool { return strings.Contains(out, "ready") }) {
		t.Fatalf("no ready in %q", b.String())
	}
	stop := make(chan struct{})
	close(stop)
	if b.WaitFor(DefaultWait, stop, func(out string) bool { return strings.Contains(out, "never") }) {
		t.Fatal("WaitFor held for a line never written")
	}
}

// TestHasJWT: a token the tests sign is seen, in a log line too; random
// base64 with "eyJ" in it (a WebSocket key CI once logged) is not.
func TestHasJWT(t *testing.T) {
	tok := HS256(t, "secret-for-this-test-0123456789abcdef", jwt.MapClaims{"sub": "ann"})
	if !HasJWT(`{"msg":"x","token":"` + tok + `"}`) {
		t.Errorf("a signed token %q not seen", tok)
	}
	if HasJWT(`"Sec-Websocket-Key":["m/L5J/feyJqK+pnQZGB/Xw=="]`) {
		t.Error("a WebSocket key taken for a token")
	}
}
