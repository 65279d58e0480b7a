package socketio

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
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
