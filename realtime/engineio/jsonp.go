package engineio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// JSONP polling (Engine.IO v3 only): a "j" query parameter makes a polling
// session answer its GETs with a script, ___eio[<j>]("<payload>");, that
// the page loads with a script tag, and take its POSTs as a form field d.
// engine.io-client 3.x uses it with forceJSONP or where XHR cannot cross
// origins (Node: lib/transports/polling-jsonp.ts).
//
// Two things keep it from being a hole. The index j is written into the
// script, so it must be a number: anything else is refused (Node strips
// the non-digits instead; the result is the same for a real client, which
// only sends its counter). And a script tag is a cross-origin read that
// sends the page's cookies without an Origin header, which the CORS check
// cannot see: a JSONP handshake must carry an Origin, or else a Referer,
// whose origin Options.AllowedOrigins accepts.

// maxJSONPIndexDigits bounds j; engine.io-client counts its JSONP
// transports from 0.
const maxJSONPIndexDigits = 9

// jsonpIndex returns the j parameter and whether the request asks for
// JSONP. ok is true for any j present; the caller refuses one that is not
// 1 to maxJSONPIndexDigits digits (validJSONPIndex).
func jsonpIndex(q query) (string, bool) {
	if !q.Has("j") {
		return "", false
	}
	return q.Get("j"), true
}

func validJSONPIndex(j string) bool {
	return len(j) <= maxJSONPIndexDigits && allDigits([]byte(j))
}

// jsonpOrigin is the origin a JSONP request comes from: its Origin header,
// or else the scheme://host of its Referer (a script tag sends no Origin).
func jsonpOrigin(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	u, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// jsonpAllowed applies AllowedOrigins to a JSONP handshake; one without
// any origin is refused, as no browser page loads a script that way.
func (c *config) jsonpAllowed(r *http.Request) bool {
	o := jsonpOrigin(r)
	return o != "" && c.originAllowed(r, o)
}

// jsonpBody wraps a text payload in the JSONP callback. The payload goes
// in as a JSON string (encoding/json escapes quotes, backslashes, control
// characters, <, >, & and U+2028/U+2029), so it can neither end the call
// nor the script it is in.
func jsonpBody(head, payload []byte) []byte {
	js, err := json.Marshal(string(payload))
	if err != nil { // a string always marshals
		js = []byte(`""`)
	}
	b := make([]byte, 0, len(head)+len(js)+2)
	b = append(b, head...)
	b = append(b, js...)
	return append(b, ");"...)
}

// jsonpData extracts the payload of a JSONP POST: the form field d, with
// the client's newline escaping undone (the client sends a newline as \n
// and a literal backslash-n as \\n).
func jsonpData(body []byte) ([]byte, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("decoding JSONP body: %w: %v", errMalformedPacket, err)
	}
	if !form.Has("d") {
		return nil, fmt.Errorf("decoding JSONP body: no d field: %w", errMalformedPacket)
	}
	return unescapeJSONPNewlines([]byte(form.Get("d"))), nil
}

// unescapeJSONPNewlines turns \n into a newline and \\n into \n, as Node
// does (two regular expressions, applied in that order).
func unescapeJSONPNewlines(d []byte) []byte {
	if !bytes.Contains(d, []byte(`\n`)) {
		return d
	}
	out := make([]byte, 0, len(d))
	for i := 0; i < len(d); i++ {
		switch {
		case d[i] == '\\' && i+2 < len(d) && d[i+1] == '\\' && d[i+2] == 'n':
			out = append(out, '\\', 'n')
			i += 2
		case d[i] == '\\' && i+1 < len(d) && d[i+1] == 'n':
			out = append(out, '\n')
			i++
		default:
			out = append(out, d[i])
		}
	}
	return out
}
