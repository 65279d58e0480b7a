package socketio

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

func TestArgsForLog(t *testing.T) {
	if got := argsForLog([]any{"hi", json.Number("2"), []byte{1, 2, 3}, map[string]any{"b": []byte{1}}}); got != `["hi",2,"<3 bytes>",{"b":"<1 bytes>"}]` {
		t.Fatalf("argsForLog = %s", got)
	}
	long := argsForLog([]any{strings.Repeat("é", 1000)})
	if len(long) > maxLoggedArgs+len("…") || !strings.HasSuffix(long, "…") {
		t.Fatalf("not truncated: %d bytes", len(long))
	}
}

// TestRedisLogger: go-redis's lines reach zap as WARN, cut in length, and
// a burst of them (a Redis that is away) gives one line per window.
func TestRedisLogger(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	r := &redisLogger{l: zap.New(core)}
	r.Printf(context.Background(), "redis: %s: %s\n", "dial tcp 127.0.0.1:1", strings.Repeat("x", 5000))
	for range 100 {
		r.Printf(context.Background(), "redis: pool: %d", 1)
	}
	all := logs.All()
	if len(all) != 1 || all[0].Level != zapcore.WarnLevel || !strings.HasPrefix(all[0].Message, "redis: dial tcp 127.0.0.1:1: xxx") {
		t.Fatalf("logged %+v", all)
	}
	if n := len(all[0].Message); n > 1024+len("…") || strings.HasSuffix(all[0].Message, "\n") {
		t.Fatalf("line of %d bytes, not cut or not trimmed", n)
	}
	r.gate = realtime.LogGate{} // as if the gate's window had passed
	r.Printf(context.Background(), "redis: again")
	if all = logs.All(); len(all) != 2 || all[1].Message != "redis: again" {
		t.Fatalf("after the window: %+v", all)
	}
}
