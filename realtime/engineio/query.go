package engineio

import (
	"net/http"
	"net/url"
	"strings"
)

// query reads the few keys the engine takes from a request's query (EIO,
// transport, sid, j, b64) without the map url.ParseQuery builds: every
// handshake and every polling request read it, and the map, its slices
// and its strings were a twentieth of what a connect allocated. A query
// that needs decoding (an escape, a '+', a ';' that ParseQuery refuses)
// or that has more parameters than a client sends goes through
// url.ParseQuery after all, so that every answer is the one
// url.Values.Get gives.
type query struct {
	raw    string
	parsed url.Values // ParseQuery's map, when raw is not plain
	slow   bool       // parsed holds the answers (it may be empty)
}

// maxPlainParams bounds the parameters a plain query is scanned for; a
// longer one is parsed (and ParseQuery's own limit applies).
const maxPlainParams = 32

func queryOf(r *http.Request) query {
	raw := r.URL.RawQuery
	if strings.ContainsAny(raw, "%+;") || strings.Count(raw, "&") >= maxPlainParams {
		return query{parsed: r.URL.Query(), slow: true}
	}
	return query{raw: raw}
}

// lookup is the first value of key, and whether key is there at all.
func (q query) lookup(key string) (string, bool) {
	if q.slow {
		vs := q.parsed[key]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	for rest := q.raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue // ParseQuery skips empty pairs
		}
		if k, v, _ := strings.Cut(pair, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// Get is url.Values.Get.
func (q query) Get(key string) string {
	v, _ := q.lookup(key)
	return v
}

// Has is url.Values.Has.
func (q query) Has(key string) bool {
	_, ok := q.lookup(key)
	return ok
}

// SessionID is the sid a request's query names (url.Values.Get's
// answer): "" for a handshake, which opens a session.
func SessionID(r *http.Request) string { return queryOf(r).Get("sid") }
