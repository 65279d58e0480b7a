package socketio

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
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
	return cutForLog(strings.TrimSuffix(buf.String(), "\n"), maxLoggedArgs)
}

// maxLoggedName bounds an event name in a log entry: a client chooses it,
// and a 300 KB name must not become a 300 KB log line.
const maxLoggedName = 128

// nameForLog is an event name as logged, cut at maxLoggedName bytes.
func nameForLog(name string) string { return cutForLog(name, maxLoggedName) }

// cutForLog cuts s at n bytes, on a rune boundary, marking the cut.
func cutForLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

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
