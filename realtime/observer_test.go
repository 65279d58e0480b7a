package realtime

import (
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// TestObserver: each Observer callback is called where its doc says, once.
func TestObserver(t *testing.T) {
	var (
		mu          sync.Mutex
		refused     []string
		disconnects []string
		broadcasts  int
		ackTimeouts int
	)
	errNo := errors.New("no")
	obs := Observer{
		OnRefused: func(ns string, err error) {
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrInvalidNamespace) {
				refused = append(refused, ns+":invalid")
			} else {
				refused = append(refused, ns+":"+err.Error())
			}
		},
		OnDisconnect: func(_ *Socket, reason string) { mu.Lock(); disconnects = append(disconnects, reason); mu.Unlock() },
		OnBroadcast:  func(*Namespace) { mu.Lock(); broadcasts++; mu.Unlock() },
		OnAckTimeout: func(*Namespace) { mu.Lock(); ackTimeouts++; mu.Unlock() },
	}
	srv := NewServer(Options{Engine: engineio.Options{PingInterval: time.Minute}, Observer: obs})
	srv.Of("/").Use(func(s *Socket) error {
		if s.Handshake().Auth["ok"] != true {
			return errNo
		}
		return nil
	})
	srv.Of("/").OnConnection(func(s *Socket) {
		_ = s.EmitWithAckFunc(10*time.Millisecond, "ping", nil, func([]any, error) {
			_ = srv.Of("/").Emit("timed-out")
		})
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })

	c := dialRaw(t, ts, "")
	c.Send(`40/nope,`)
	c.Expect(`44/nope,{"message":"Invalid namespace"}`)
	c.Send(`40{"ok":false}`)
	c.Expect(`44{"message":"no"}`)
	c.Send(`40{"ok":true}`)
	c.ExpectPrefix(`40{"sid":`)
	c.Expect(`420["ping"]`)
	c.Expect(`42["timed-out"]`)
	c.Send(`41`)
	waitFor := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(disconnects)
		mu.Unlock()
		if n > 0 || time.Now().After(waitFor) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 2 || refused[0] != "/nope:invalid" || refused[1] != "/:no" {
		t.Errorf("refused %q", refused)
	}
	if len(disconnects) != 1 || disconnects[0] != "client namespace disconnect" {
		t.Errorf("disconnects %q", disconnects)
	}
	if broadcasts != 1 || ackTimeouts != 1 {
		t.Errorf("broadcasts %d, ack timeouts %d; want 1, 1", broadcasts, ackTimeouts)
	}
}
