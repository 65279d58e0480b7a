package emitapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// FuzzAPIRequest feeds arbitrary bodies to every endpoint of the API, on a
// server without sockets: no input may panic, and every answer is a JSON
// object with a known status, an error message whenever it is not 200.
// Seeds are in testdata/fuzz/FuzzAPIRequest.
func FuzzAPIRequest(f *testing.F) {
	srv := realtime.NewServer(realtime.Options{Logger: zap.NewNop()})
	f.Cleanup(srv.Close)
	srv.Of("/chat")
	h := New(srv, Options{MaxBody: 4096})
	f.Fuzz(func(t *testing.T, route string, body []byte) {
		if _, err := decodeRequest(route, body); err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("decode error %T %v is not an *apiError", err, err)
			}
		}
		method := routes[route]
		if method == "" {
			method = http.MethodPost
		}
		target := "/api/" + route
		if method == http.MethodGet {
			// GET endpoints read the query: let the body be one.
			target += "?" + string(body)
		}
		r, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer %q is not a JSON object: %v", rec.Body.Bytes(), err)
		}
		switch rec.Code {
		case http.StatusOK:
			if _, ok := out["error"]; ok {
				t.Fatalf("200 with an error: %v", out)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("%d without an error message: %v", rec.Code, out)
			}
		default:
			t.Fatalf("status %d for route %q body %q: %v", rec.Code, route, body, out)
		}
	})
}
