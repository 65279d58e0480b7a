package socketio

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// identity holds the values of the {http.*} placeholders that the policy
// uses, as Caddy's handler chain had them for the Engine.IO handshake
// request: {http.auth.user.id} set by basic_auth or an auth plugin,
// {http.vars.*}, {http.request.remote.host}, ... The engine keeps it with
// the session (engineio.WithKept), so every socket of the session reads
// the same values, for its life. Keys are placeholder names without braces;
// a placeholder that was unknown or empty is absent.
type identity map[string]string

// identityPrefix starts the placeholders captured at the handshake.
const identityPrefix = "http."

// userIDKey is captured whenever a webhook is configured, so that a
// backend behind an authenticating site learns who connected.
const userIDKey = "http.auth.user.id"

// identityKeys lists the {http.*} placeholders that templates use, sorted,
// each once.
func identityKeys(templates ...string) []string {
	var keys []string
	for _, tpl := range templates {
		for rest := tpl; ; {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				break
			}
			if i > 0 && rest[i-1] == '\\' { // an escaped brace
				rest = rest[i+1:]
				continue
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				break
			}
			key := rest[i+1 : i+j]
			rest = rest[i+j+1:]
			if strings.HasPrefix(key, identityPrefix) && len(key) > len(identityPrefix) && !strings.ContainsAny(key, "{ ") {
				keys = append(keys, key)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// identityKeys lists the {http.*} placeholders a handler's rules use (join,
// allow_rooms, announce, announce_leave, emit), and {http.auth.user.id}
// when it has a webhook.
func (h *Handler) identityKeys() []string {
	tpls := slices.Concat(h.Join, h.AllowRooms)
	for _, m := range []*Message{h.Announce, h.AnnounceLeave, h.Emit} {
		if m != nil {
			tpls = append(tpls, m.Text)
		}
	}
	if h.Webhook != nil {
		tpls = append(tpls, "{"+userIDKey+"}")
	}
	if h.Presence != nil {
		tpls = append(tpls, h.Presence.By)
	}
	return identityKeys(tpls...)
}

// captureIdentity reads keys from the replacer that Caddy's handler chain
// filled for r; nil when none of them has a value (or r did not come
// through Caddy).
func captureIdentity(r *http.Request, keys []string) identity {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil
	}
	var id identity
	for _, key := range keys {
		v, ok := repl.Get(key)
		if !ok {
			continue
		}
		s := placeholderText(v)
		if s == "" {
			continue
		}
		if id == nil {
			id = make(identity, len(keys))
		}
		id[key] = s
	}
	return id
}

// placeholderText formats a replacer value as Caddy's replacer does.
func placeholderText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	}
	return fmt.Sprint(v)
}

// withIdentity gives an Engine.IO handshake request the identity its
// session keeps. Requests with a sid belong to a session that exists: they
// are left alone, so only the handshake is captured (and costs anything).
func withIdentity(r *http.Request, keys []string) *http.Request {
	// The engine's own test for a session request (a non-empty sid), so
	// a query that merely contains "sid=" elsewhere is still a handshake.
	if len(keys) == 0 || r.URL.Query().Get("sid") != "" {
		return r
	}
	id := captureIdentity(r, keys)
	if id == nil {
		return r
	}
	return r.WithContext(engineio.WithKept(r.Context(), id))
}

// identityOf returns what was captured at a session's handshake.
func identityOf(r *http.Request) identity {
	id, _ := realtime.Kept(r).(identity)
	return id
}
