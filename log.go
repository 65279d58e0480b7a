package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// maxLoggedArgs bounds the JSON of an event's arguments in a log entry.
const maxLoggedArgs = 512

// argsForLog renders event arguments as compact JSON for a log entry, binary
// attachments as "<N bytes>", cut at maxLoggedArgs bytes.
func argsForLog(args []any) string {
	clean := make([]any, len(args))
	for i, a := range args {
		clean[i] = scrubBinary(a)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(clean); err != nil {
		return "<unprintable>"
	}
	return utf8cut.Cut(strings.TrimSuffix(buf.String(), "\n"), maxLoggedArgs)
}

// maxLoggedName bounds an event name in a log entry: a client chooses it,
// and a 300 KB name must not become a 300 KB log line.
const maxLoggedName = 128

// nameForLog is an event name as logged, cut at maxLoggedName bytes.
func nameForLog(name string) string { return utf8cut.Cut(name, maxLoggedName) }

func scrubBinary(v any) any {
	switch x := v.(type) {
	case []byte:
		return "<" + strconv.Itoa(len(x)) + " bytes>"
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubBinary(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = scrubBinary(e)
		}
		return out
	}
	return v
}

// redisLogs routes go-redis's own log lines (pool and reconnect trouble,
// which it prints to stderr by default) to Caddy's logger, as WARN under
// "socketio.redis", at most one every realtime.LogGateEvery with a count
// of those held back: a Redis that is away must not flood the log. The
// go-redis logger is one for the process, so it is set once, the first
// time a hub starts a Redis client.
var redisLogs sync.Once

func routeRedisLogs() {
	redisLogs.Do(func() {
		redis.SetLogger(&redisLogger{l: caddy.Log().Named("socketio.redis")})
	})
}

type redisLogger struct {
	l    *zap.Logger
	gate realtime.LogGate
}

// Printf implements go-redis's logging interface.
func (r *redisLogger) Printf(_ context.Context, format string, v ...any) {
	ok, held := r.gate.Pass()
	if !ok {
		return
	}
	msg := utf8cut.Cut(strings.TrimSpace(fmt.Sprintf(format, v...)), 1024)
	if held > 0 {
		r.l.Warn(msg, zap.Int("similar_not_logged", held))
		return
	}
	r.l.Warn(msg)
}
