package engineio

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

type otherKey struct{}

func TestHandshakeRecordKeepsOnlyTheKeptValue(t *testing.T) {
	r := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil)
	ctx := context.WithValue(r.Context(), otherKey{}, "dropped")
	ctx, cancel := context.WithCancel(WithKept(ctx, "kept"))
	cancel()
	rec := recordHandshake(r.WithContext(ctx))
	kept := rec.request()
	if got := Kept(kept); got != "kept" || rec.value != "kept" {
		t.Fatalf("Kept = %v, want kept", got)
	}
	if kept.Context().Value(otherKey{}) != nil {
		t.Fatal("another context value was kept")
	}
	if kept.Context().Err() != nil {
		t.Fatal("the kept context is cancelled with the request's")
	}
	if Kept(r) != nil || Kept(nil) != nil {
		t.Fatal("Kept without a value is not nil")
	}
	plain := recordHandshake(r)
	if plain.request().Context() != context.Background() {
		t.Fatal("without a kept value, the context is not the background one")
	}
}

// TestHandshakeRecordRoundTrip: the request rebuilt from the record has
// the handshake's headers (repeated ones in order, empty values kept, a
// value holding ": "), URL, query, host, peer and TLS state, and no body;
// each call builds its own, so changing one changes nothing.
func TestHandshakeRecordRoundTrip(t *testing.T) {
	r := httptest.NewRequest("GET", "https://example.com/socket.io/?EIO=4&transport=websocket&room=a%20b&x=1&x=2", nil)
	r.Header = http.Header{
		"User-Agent":      {"test: agent"},
		"X-Forwarded-For": {"10.0.0.1", "10.0.0.2"},
		"X-Empty":         {""},
		"Cookie":          {"a=b; c=d"},
	}
	r.RemoteAddr = "192.0.2.1:5000"
	r.TLS = &tls.ConnectionState{ServerName: "example.com"}
	rec := recordHandshake(r)
	got := rec.request()
	if !reflect.DeepEqual(got.Header, r.Header) {
		t.Errorf("headers = %v, want %v", got.Header, r.Header)
	}
	if got.URL.Path != "/socket.io/" || got.URL.RawQuery != r.URL.RawQuery {
		t.Errorf("URL = %v", got.URL)
	}
	if q := got.URL.Query(); q.Get("room") != "a b" || len(q["x"]) != 2 {
		t.Errorf("query = %v", q)
	}
	if got.Host != "example.com" || got.RemoteAddr != r.RemoteAddr || got.TLS != r.TLS || got.Method != http.MethodGet {
		t.Errorf("host %q remote %q tls %v method %q", got.Host, got.RemoteAddr, got.TLS, got.Method)
	}
	if got.Body != http.NoBody {
		t.Error("the rebuilt request has a body")
	}
	got.Header.Set("User-Agent", "changed")
	got.URL.RawQuery = ""
	if again := rec.request(); again.Header.Get("User-Agent") != "test: agent" || again.URL.RawQuery == "" {
		t.Error("changing a rebuilt request changed the record")
	}
	if empty := recordHandshake(httptest.NewRequest("GET", "/", nil)); len(empty.request().Header) != 0 {
		t.Errorf("no headers rebuilt as %v", empty.request().Header)
	}
}
