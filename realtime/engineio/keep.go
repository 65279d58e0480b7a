package engineio

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

// keptKey is the context key of the value a session keeps from its
// handshake request.
type keptKey struct{}

// WithKept returns ctx carrying v. A session made from a handshake request
// whose context holds such a value keeps that value, and only it: the rest
// of the request's context ends with the HTTP exchange and is dropped (see
// newSession). A host server uses it to carry what it knew about the
// handshake request (an authenticated user, say) to the session's handlers.
func WithKept(ctx context.Context, v any) context.Context {
	return context.WithValue(ctx, keptKey{}, v)
}

// Kept returns the value that WithKept put in the handshake request r's
// context, from a session's Request; nil if there is none (Session.Kept
// reads it without building a request).
func Kept(r *http.Request) any {
	if r == nil {
		return nil
	}
	return r.Context().Value(keptKey{})
}

// handshakeRecord is what a session keeps of its handshake request: the
// URL, the headers in wire form and the peer, no *http.Request. A kept
// request would hold its header map, its parsed URL and the request
// struct itself, about 1.5 KB an idle connection; this holds the same
// facts in a few strings. Session.Request builds a request from it.
type handshakeRecord struct {
	uri    string // the URL's request URI: path and raw query
	host   string
	remote string
	header string // "Key: value\n" per value, keys canonical
	tls    *tls.ConnectionState
	value  any // what WithKept put in the request's context
}

func recordHandshake(r *http.Request) handshakeRecord {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return handshakeRecord{
		uri:    r.URL.RequestURI(),
		host:   r.Host,
		remote: r.RemoteAddr,
		header: b.String(),
		tls:    r.TLS,
		value:  r.Context().Value(keptKey{}),
	}
}

// headers parses the record's header block; the keys and values are
// substrings of it, so only the map and its slices are allocated.
func (h *handshakeRecord) headers() http.Header {
	lines := strings.Count(h.header, "\n")
	out := make(http.Header, lines)
	vals := make([]string, lines)
	rest := h.header
	for i := 0; rest != ""; i++ {
		line, after, _ := strings.Cut(rest, "\n")
		rest = after
		k, v, _ := strings.Cut(line, ": ")
		if prev, ok := out[k]; ok {
			out[k] = append(prev, v)
			continue
		}
		vals[i] = v
		out[k] = vals[i : i+1 : i+1]
	}
	return out
}

// request builds a body-less GET request of the record, its context
// carrying only the kept value.
func (h *handshakeRecord) request() *http.Request {
	ctx := context.Background()
	if h.value != nil {
		ctx = WithKept(ctx, h.value)
	}
	u, err := url.ParseRequestURI(h.uri)
	if err != nil {
		// The URI came out of a parsed URL; keep the path at least.
		u = &url.URL{Path: h.uri}
	}
	return (&http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h.headers(),
		Body:       http.NoBody,
		Host:       h.host,
		RemoteAddr: h.remote,
		RequestURI: h.uri,
		TLS:        h.tls,
	}).WithContext(ctx)
}
