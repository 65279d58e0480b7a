package engineio

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// queryKeys are the keys the engine reads, and one it does not.
var queryKeys = []string{"EIO", "transport", "sid", "j", "b64", "t", ""}

// sameAsParseQuery fails t unless query answers Get and Has for every
// key as url.Values does for the raw query.
func sameAsParseQuery(t *testing.T, raw string) {
	t.Helper()
	want, _ := url.ParseQuery(raw) // what r.URL.Query() gives: the pairs it could parse
	r := &http.Request{URL: &url.URL{RawQuery: raw}}
	q := queryOf(r)
	for _, k := range queryKeys {
		if got, w := q.Get(k), want.Get(k); got != w {
			t.Fatalf("%q: Get(%q) = %q, url.Values says %q", raw, k, got, w)
		}
		if got, w := q.Has(k), want.Has(k); got != w {
			t.Fatalf("%q: Has(%q) = %v, url.Values says %v", raw, k, got, w)
		}
	}
	if got, w := SessionID(r), want.Get("sid"); got != w {
		t.Fatalf("%q: SessionID = %q, want %q", raw, got, w)
	}
}

// TestQuery: the engine's query reader answers as url.ParseQuery does,
// for the queries clients send and for hostile ones (repeated keys,
// escapes, separators ParseQuery refuses, a key with no value, a query
// past the scan's bound).
func TestQuery(t *testing.T) {
	for _, raw := range []string{
		"",
		"EIO=4&transport=websocket",
		"EIO=4&transport=polling&t=PZx1&sid=abc-_123",
		"EIO=3&transport=polling&j=0&b64=1",
		"EIO=4&EIO=3",         // the first one counts
		"sid&EIO=4",           // a key without '='
		"sid=&transport=x",    // an empty value
		"&&EIO=4&&",           // empty pairs
		"=4&EIO",              // an empty key
		"EIO=4;transport=web", // ParseQuery drops the pair with ';'
		"transport=web%73ocket&EIO=%34",
		"transport=web+socket",
		"sid=%zz&sid=ok", // a bad escape: that pair is dropped
		"tr%61nsport=polling",
		"EIO=4&" + strings.Repeat("x=1&", maxPlainParams) + "sid=late",
		"EIO=4&" + strings.Repeat("x=1&", 10001) + "sid=over-parsequery-limit",
	} {
		sameAsParseQuery(t, raw)
	}
}

// FuzzQuery: for any raw query, the engine's reader and url.ParseQuery
// agree on every key the engine reads.
func FuzzQuery(f *testing.F) {
	f.Add("EIO=4&transport=websocket&sid=abc")
	f.Add("EIO=3&j=1&b64&sid=%41")
	f.Add("a;b=1&sid=2")
	f.Fuzz(func(t *testing.T, raw string) {
		sameAsParseQuery(t, raw)
	})
}
