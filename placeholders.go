package socketio

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// socketView is what the {socketio.*} placeholders read. It is a plain struct
// rather than a *realtime.Socket so the rules can be tested without a
// connection.
type socketView struct {
	ID        string
	Namespace string
	Room      string // the room an announcement is about; empty elsewhere
	Query     url.Values
	Headers   http.Header
	Auth      map[string]any
	Claims    map[string]any
	// Hidden lists auth payload keys that are never exposed as placeholders
	// (the token fields).
	Hidden []string
	// Identity is what Caddy's handler chain knew of the handshake request:
	// the {http.*} placeholders the policy uses (see identity).
	Identity identity
}

// newReplacer returns a replacer that knows Caddy's global placeholders
// ({env.*}, {time.*}, ...), the socket's {socketio.*} ones and the {http.*}
// ones captured at its handshake (only those the policy uses; another
// {http.*} placeholder is unknown). The {file.*} placeholder is left out:
// templates run on every connection.
//
// When escape is set, values coming from the client or the token are passed
// through it; the allow_rooms patterns use this so that a claim holding "*"
// stays a literal star.
func newReplacer(v *socketView, escape func(string) string) *caddy.Replacer {
	repl := caddy.NewReplacer().WithoutFile()
	repl.Map(func(key string) (any, bool) {
		var s string
		var ok bool
		if rest, isSocket := strings.CutPrefix(key, "socketio."); isSocket {
			s, ok = v.lookup(rest)
		} else if strings.HasPrefix(key, identityPrefix) {
			s, ok = v.Identity[key]
		}
		if !ok {
			return nil, false
		}
		if escape != nil {
			s = escape(s)
		}
		return s, true
	})
	return repl
}

func (v *socketView) lookup(key string) (string, bool) {
	switch key {
	case "id":
		return v.ID, v.ID != ""
	case "namespace":
		return v.Namespace, v.Namespace != ""
	case "room":
		return v.Room, v.Room != ""
	}
	kind, name, ok := strings.Cut(key, ".")
	if !ok || name == "" {
		return "", false
	}
	switch kind {
	case "query":
		vals, ok := v.Query[name]
		if !ok || len(vals) == 0 {
			return "", false
		}
		return vals[0], true
	case "header":
		vals := v.Headers.Values(name)
		if len(vals) == 0 {
			return "", false
		}
		return strings.Join(vals, ","), true
	case "auth":
		top, _, _ := strings.Cut(name, ".")
		for _, h := range v.Hidden {
			if top == h {
				return "", false
			}
		}
		return walk(v.Auth, name)
	case "claims":
		return walk(v.Claims, name)
	}
	return "", false
}

// walk follows a dotted path into decoded JSON and formats the value found.
func walk(m map[string]any, path string) (string, bool) {
	var cur any = m
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = obj[part]; !ok {
			return "", false
		}
	}
	return format(cur)
}

// format renders a JSON value as placeholder text: strings as they are,
// numbers without exponent, arrays of scalars comma-joined, anything else as
// JSON.
func format(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any, nil:
				return jsonText(x)
			}
			s, _ := format(e)
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	}
	return jsonText(v)
}

func jsonText(v any) (string, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// expandRoom evaluates a room template. It reports false when the template
// uses a placeholder that is unknown or empty, or comes out empty, so that a
// client that did not send roomNumber joins no "room-userId-" room.
func expandRoom(repl *caddy.Replacer, tpl string) (string, bool) {
	out, err := repl.ReplaceOrErr(tpl, true, true)
	if err != nil || out == "" {
		return "", false
	}
	return out, true
}

// expandText evaluates a message template; unknown placeholders become empty.
func expandText(repl *caddy.Replacer, tpl string) string {
	return repl.ReplaceAll(tpl, "")
}
