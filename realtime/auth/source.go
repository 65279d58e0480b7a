package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Source kinds, as written in configuration ("auth:token", "header",
// "query:token", "cookie:jwt").
const (
	SourceAuth   = "auth"   // a field of the Socket.IO CONNECT payload (socket.io-client's auth option)
	SourceHeader = "header" // an HTTP header of the handshake request, "Bearer <token>" for Authorization
	SourceQuery  = "query"  // a query parameter of the handshake request
	SourceCookie = "cookie" // a cookie of the handshake request
)

// DefaultSources is where a token is looked for when nothing is configured:
// the auth payload's "token" field (what socket.io-client sends with
// io(url, {auth: {token}})) and the Authorization: Bearer header (for
// non-browser clients). Query parameters and cookies are opt-in: URLs end up
// in access logs, and cookies are sent by browsers on cross-site requests.
var DefaultSources = []Source{{Kind: SourceAuth, Name: "token"}, {Kind: SourceHeader, Name: "Authorization"}}

// Source is one place a token may come from.
type Source struct {
	Kind string
	Name string
}

// String returns the configuration form, kind:name.
func (s Source) String() string { return s.Kind + ":" + s.Name }

// ParseSource reads "kind[:name]". The name defaults to "token" for auth and
// query, and to "Authorization" for header; a cookie needs a name.
func ParseSource(spec string) (Source, error) {
	kind, name, _ := strings.Cut(spec, ":")
	s := Source{Kind: kind, Name: name}
	switch kind {
	case SourceAuth, SourceQuery:
		if s.Name == "" {
			s.Name = "token"
		}
	case SourceHeader:
		if s.Name == "" {
			s.Name = "Authorization"
		}
		s.Name = http.CanonicalHeaderKey(s.Name)
	case SourceCookie:
		if s.Name == "" {
			return Source{}, fmt.Errorf("parsing token source %q: a cookie source needs a name (cookie:<name>)", spec)
		}
	default:
		return Source{}, fmt.Errorf("parsing token source %q: unknown kind %q (want auth, header, query or cookie)", spec, kind)
	}
	return s, nil
}

// Handshake is what a token can be taken from.
type Handshake struct {
	Auth    map[string]any // CONNECT payload, may be nil
	Headers http.Header
	Query   url.Values
}

// Extract returns the first non-empty token found in sources, in order, and
// the source it came from.
func Extract(sources []Source, h Handshake) (token string, from Source, ok bool) {
	for _, s := range sources {
		var tok string
		switch s.Kind {
		case SourceAuth:
			tok, _ = h.Auth[s.Name].(string)
		case SourceHeader:
			tok = h.Headers.Get(s.Name)
			if s.Name == "Authorization" {
				scheme, rest, found := strings.Cut(tok, " ")
				if !found || !strings.EqualFold(scheme, "Bearer") {
					tok = ""
				} else {
					tok = rest
				}
			}
		case SourceQuery:
			tok = h.Query.Get(s.Name)
		case SourceCookie:
			tok = cookie(h.Headers, s.Name)
		}
		if tok = strings.TrimSpace(tok); tok != "" {
			return tok, s, true
		}
	}
	return "", Source{}, false
}

func cookie(h http.Header, name string) string {
	// http.Request's parser is lenient: a malformed pair is skipped, not fatal.
	r := http.Request{Header: http.Header{"Cookie": h.Values("Cookie")}}
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
