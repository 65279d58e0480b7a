package adminui

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Bounds of what one socket's description may hold: its headers and query
// come from the client.
const (
	maxListedValues = 64   // headers, and query parameters
	maxValueBytes   = 2048 // each header or query value, cut beyond
	redacted        = "[redacted]"
)

// alwaysRedacted are the headers whose values are never shown: they carry
// the credentials of the user, which the dashboard must not hand to
// whoever reads it.
var alwaysRedacted = []string{"authorization", "proxy-authorization", "cookie"}

// socketJSON is a socket as the UI knows it (SerializedSocket in
// @socket.io/admin-ui's typed-events.ts).
type socketJSON struct {
	ID        string         `json:"id"`
	ClientID  string         `json:"clientId"`
	Transport string         `json:"transport"`
	Nsp       string         `json:"nsp"`
	Data      map[string]any `json:"data"`
	Handshake handshakeJSON  `json:"handshake"`
	Rooms     []string       `json:"rooms"`
}

type handshakeJSON struct {
	Address string         `json:"address"`
	Headers map[string]any `json:"headers"`
	Query   map[string]any `json:"query"`
	Issued  int64          `json:"issued"` // ms since the epoch; the UI needs a valid date
	Secure  bool           `json:"secure"`
	Time    string         `json:"time"` // as JavaScript's Date.toString
	URL     string         `json:"url"`
	XDomain bool           `json:"xdomain"`
}

// serialize describes s for the UI, as JSON. The address is the one the
// server saw (behind a trusted proxy, the client's as the embedding server
// resolved it), never a client-sent header as Node takes it; the auth
// payload is left out, as Node does, and so are the values of the headers
// and query parameters that carry credentials.
func (c *config) serialize(s *realtime.Socket) json.RawMessage {
	hs := s.Handshake()
	sid := s.SessionID()
	out := socketJSON{
		ID:        s.ID(),
		ClientID:  sid[:min(12, len(sid))],
		Transport: s.Transport(),
		Nsp:       s.Namespace().Name(),
		Data:      s.Data(),
		Rooms:     s.Rooms(),
		Handshake: handshakeJSON{
			Address: clientIP(hs.Address),
			Headers: c.headers(hs.Headers),
			Query:   c.query(hs.Query),
			Issued:  hs.Time.UnixMilli(),
			Secure:  hs.Secure,
			Time:    jsDate(hs.Time),
			URL:     utf8cut.Cut(hs.URL, maxValueBytes),
			XDomain: hs.Headers.Get("Origin") != "",
		},
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	if out.Rooms == nil {
		out.Rooms = []string{}
	}
	b, err := json.Marshal(out)
	if err != nil { // socket data the application set that JSON cannot hold
		out.Data = map[string]any{}
		b, _ = json.Marshal(out)
	}
	return b
}

// headers renders request headers as Node has them: lowercase names, one
// string each (repeated values joined with ", "), at most maxListedValues.
func (c *config) headers(h http.Header) map[string]any {
	out := make(map[string]any, min(len(h), maxListedValues))
	for _, name := range sortedKeys(h) {
		if len(out) == maxListedValues {
			break
		}
		k := strings.ToLower(name)
		if c.redactHeader[k] {
			out[k] = redacted
			continue
		}
		out[k] = utf8cut.Cut(strings.Join(h[name], ", "), maxValueBytes)
	}
	return out
}

// query renders the query as Node's parser does: a string, or a list of
// strings for a repeated parameter.
func (c *config) query(q map[string][]string) map[string]any {
	out := make(map[string]any, min(len(q), maxListedValues))
	for _, k := range sortedKeys(q) {
		if len(out) == maxListedValues {
			break
		}
		vs := q[k]
		switch {
		case c.redactQuery[k]:
			out[k] = redacted
		case len(vs) == 1:
			out[k] = utf8cut.Cut(vs[0], maxValueBytes)
		default:
			list := make([]string, 0, min(len(vs), maxListedValues))
			for _, v := range vs[:min(len(vs), maxListedValues)] {
				list = append(list, utf8cut.Cut(v, maxValueBytes))
			}
			out[k] = list
		}
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsDate formats t as JavaScript's Date.prototype.toString does (the form
// Node's handshake.time has).
func jsDate(t time.Time) string {
	return t.Format("Mon Jan 02 2006 15:04:05 GMT-0700 (MST)")
}

// isoTime formats t as JSON.stringify formats a Date, the timestamps of the
// UI's events.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
