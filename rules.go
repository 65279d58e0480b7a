package socketio

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// globMatch reports whether name matches pattern, where "*" stands for any
// run of characters (slashes included), "?" for one character, and a
// backslash makes the next character literal. Room and namespace names are
// not paths, so path.Match's "* stops at /" rule would only surprise.
func globMatch(pattern, name string) bool {
	// Iterative matcher with one backtrack point: linear in practice and
	// without recursion, so a hostile name cannot blow the stack.
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(name[n:])
				p++
				n += size
				continue
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == name[n] {
					p += 2
					n++
					continue
				}
			default:
				if c == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globEscape makes s match itself literally in globMatch.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// looksLikeSocketID reports whether a room name has the shape of a socket id
// (20 characters of base64url). Every socket sits in a room named after its
// id, so a template or request that produced such a name could let one
// client listen to another's private room; those names are refused.
func looksLikeSocketID(room string) bool {
	if len(room) != 20 {
		return false
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

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

// jsonUnmarshalNumber decodes one JSON value keeping numbers as json.Number.
func jsonUnmarshalNumber(b []byte, v *any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
