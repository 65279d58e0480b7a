package nodeclient

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// StartEchoServer runs testdata/client/echo-server.cjs, a Node socket.io 4.8
// server on a random loopback port, and returns its base URL
// ("http://127.0.0.1:PORT"). It is the known-good peer for this package's
// tests and a reference to compare our server with; see the script for what
// it does. Skips like Start; t.Cleanup stops it (bounded).
func StartEchoServer(t testing.TB) string {
	t.Helper()
	env := Locate(t)
	ports := make(chan int, 1)
	onLine := func(line []byte) {
		var msg struct {
			Type string `json:"type"`
			Port int    `json:"port"`
		}
		if json.Unmarshal(line, &msg) == nil && msg.Type == "listening" {
			select {
			case ports <- msg.Port:
			default:
			}
			return
		}
		t.Logf("echo-server: %s", line)
	}
	proc, err := startNode(t, env, "echo-server", onLine, "echo-server.cjs", "0")
	if err != nil {
		t.Fatalf("nodeclient: %v", err)
	}
	t.Cleanup(func() { proc.stop(t, "echo-server") })
	select {
	case port := <-ports:
		return fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-proc.done:
		t.Fatalf("nodeclient: echo-server exited before listening: %v", proc.err)
	case <-time.After(readyTimeout):
		t.Fatalf("nodeclient: echo-server not listening after %v", readyTimeout)
	}
	return ""
}
