package realtime

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Handshake describes how a socket connected: the Engine.IO handshake request
// and the CONNECT packet's auth payload. It mirrors socket.handshake in Node.
type Handshake struct {
	// Headers of the Engine.IO handshake request.
	Headers http.Header
	// Query of the Engine.IO handshake request (e.g. roomNumber).
	Query url.Values
	// Auth is the CONNECT payload (socket.io-client's auth option), nil if none.
	Auth map[string]any
	// Address is the TCP peer as http.Request.RemoteAddr has it.
	Address string
	// Time the socket connected.
	Time time.Time
	// URL is the request URI of the handshake request.
	URL string
	// Secure reports whether the handshake came over TLS.
	Secure bool
	// Request is the body-less handshake request. Its context is not the live
	// request's context, which ends when the HTTP exchange does.
	Request *http.Request
}

func newHandshake(r *http.Request, auth map[string]any, at time.Time) *Handshake {
	return &Handshake{
		Headers: r.Header,
		Query:   r.URL.Query(),
		Auth:    auth,
		Address: r.RemoteAddr,
		Time:    at,
		URL:     r.URL.RequestURI(),
		Secure:  r.TLS != nil,
		Request: r,
	}
}

// nodeTimeLayout is how Node prints the handshake's time (Date.toString()).
const nodeTimeLayout = "Mon Jan 02 2006 15:04:05 GMT-0700 (MST)"

// secretHeaders are the handshake headers that never leave the node: a
// peer listing sockets (fetchSockets) has no use for the client's
// credentials.
var secretHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// handshakeJSON is the shape of socket.handshake in Node's fetchSockets
// answers: single-valued headers and query (repeated values joined by
// ", " for headers, the first kept for the query, as Node's parsers do).
type handshakeJSON struct {
	Headers map[string]any `json:"headers"`
	Time    string         `json:"time"`
	Address string         `json:"address"`
	XDomain bool           `json:"xdomain"`
	Secure  bool           `json:"secure"`
	Issued  int64          `json:"issued"`
	URL     string         `json:"url"`
	Query   map[string]any `json:"query"`
	Auth    map[string]any `json:"auth"`
}

// MarshalJSON writes the handshake as Node's fetchSockets has it, without
// the request and without credentials: the Authorization, Cookie and
// Proxy-Authorization headers are left out, and so is the CONNECT auth
// payload (it is where socket.io-client puts tokens), which a Node peer
// would send.
func (h *Handshake) MarshalJSON() ([]byte, error) {
	out := handshakeJSON{
		Headers: make(map[string]any, len(h.Headers)),
		Time:    h.Time.Format(nodeTimeLayout),
		Address: h.Address,
		XDomain: h.Headers.Get("Origin") != "",
		Secure:  h.Secure,
		Issued:  h.Time.UnixMilli(),
		URL:     h.URL,
		Query:   make(map[string]any, len(h.Query)),
		Auth:    map[string]any{},
	}
	for k, v := range h.Headers {
		if len(v) == 0 || slicesContainsFold(secretHeaders, k) {
			continue
		}
		out.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	for k, v := range h.Query {
		if len(v) > 0 {
			out.Query[k] = v[0]
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a handshake of Node's shape (another node's socket);
// header and query values may be strings or lists of strings. Request
// stays nil.
func (h *Handshake) UnmarshalJSON(b []byte) error {
	var in handshakeJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decoding handshake: %w", err)
	}
	*h = Handshake{
		Headers: http.Header{},
		Query:   url.Values{},
		Auth:    in.Auth,
		Address: in.Address,
		URL:     in.URL,
		Secure:  in.Secure,
	}
	if in.Issued != 0 {
		h.Time = time.UnixMilli(in.Issued)
	} else if t, err := time.Parse(nodeTimeLayout, in.Time); err == nil {
		h.Time = t
	}
	each := func(m map[string]any, add func(k, v string)) {
		for k, v := range m {
			switch v := v.(type) {
			case string:
				add(k, v)
			case []any:
				for _, s := range v {
					if s, ok := s.(string); ok {
						add(k, s)
					}
				}
			}
		}
	}
	each(in.Headers, h.Headers.Add)
	each(in.Query, h.Query.Add)
	return nil
}

func slicesContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
