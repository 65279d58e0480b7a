package socketio

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Tests of compression.go and of allow_eio3 through the module: the
// options reach the engine, and off stays Node's refusal.

func TestModuleAllowEIO3(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := tutorialHandler("eio3-" + map[bool]string{false: "off", true: "on"}[on])
		h.Auth = nil
		h.AllowEIO3 = on
		base, _, _ := serveObserved(t, h)
		resp, err := http.Get(base + "?EIO=3&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case on && (resp.StatusCode != 200 || !strings.Contains(string(body), `:0{"sid":`)):
			t.Errorf("allow_eio3 on: %d %q", resp.StatusCode, body)
		case !on && (resp.StatusCode != 400 || string(body) != `{"code":5,"message":"Unsupported protocol version"}`):
			t.Errorf("allow_eio3 off: %d %q", resp.StatusCode, body)
		}
	}
}

func TestModuleCompression(t *testing.T) {
	h := tutorialHandler("compression")
	h.Auth = nil
	h.Compression = &Compression{WebSocket: true, Polling: new(bool), Threshold: 10}
	_, wsBase, _ := serveObserved(t, h)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	c, resp, err := d.Dial(wsBase+"?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Errorf("compression websocket on: negotiated %q", ext)
	}
	if o := h.serverOptions().Engine.Compression; !o.WebSocket || !o.DisablePolling || o.Threshold != 10 {
		t.Errorf("engine compression options %+v", o)
	}
	if o := (&Handler{}).serverOptions().Engine.Compression; o.WebSocket || o.DisablePolling {
		t.Errorf("defaults: %+v, want websocket off and polling on", o)
	}
}
