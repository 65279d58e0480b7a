//go:build live

package integration

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"
	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// compressionConfig: permessage-deflate on, polling compression on (the
// default), Caddy's encode in the same site (it must leave the module's
// responses alone), a long welcome (over the 1 KiB threshold) and a short
// announcement (under it).
func compressionConfig(sc siteConfig, long string) string {
	return fmt.Sprintf(`{
%s}

:%d {
	root * testdata/www
	encode gzip
	socketio {
		max_payload 100KB
		compression {
			websocket on
		}
		join room-{socketio.query.room}
		announce joined "short"
		emit welcome "%s"
		relay chat
	}
	file_server
}
`, adminOptions(sc.AdminPort), sc.Port, long)
}

// frameTap is a TCP proxy in front of Caddy that parses the WebSocket
// frames Caddy sends and records, per frame, its length and whether RSV1
// (compressed, RFC 7692) was set.
type frameTap struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frames []tapFrame
	ext    string // Sec-WebSocket-Extensions of the 101
}

type tapFrame struct {
	compressed bool
	opcode     byte
	length     uint64
}

func startTap(t *testing.T, target string) *frameTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &frameTap{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tp.serve(c)
			}()
		}
	}()
	return tp
}

func (tp *frameTap) serve(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", tp.target, clientWait)
	if err != nil {
		return
	}
	defer server.Close()
	// The whole exchange is bounded, so a stuck peer cannot hold the
	// test's cleanup.
	deadline := time.Now().Add(time.Minute)
	_ = client.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)
	go func() {
		_, _ = io.Copy(server, client)
		server.Close()
	}()
	br := bufio.NewReader(io.TeeReader(server, client))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, br)
		return
	}
	tp.mu.Lock()
	tp.ext = resp.Header.Get("Sec-WebSocket-Extensions")
	tp.mu.Unlock()
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return
		}
		tp.mu.Lock()
		tp.frames = append(tp.frames, tapFrame{compressed: h[0]&0x40 != 0, opcode: h[0] & 0x0f, length: n})
		tp.mu.Unlock()
	}
}

func (tp *frameTap) snapshot() (string, []tapFrame) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.ext, append([]tapFrame(nil), tp.frames...)
}

// TestCompressionLive: socket.io-client 4.8 (which offers
// permessage-deflate by default) through a frame tap in front of a real
// Caddy with compression { websocket on }: the extension is negotiated,
// frames from 1 KiB up arrive compressed and smaller ones do not; a
// deflate bomb from a raw gorilla client is closed with 1009 while the
// other client carries on; a held long poll is answered gzip-compressed
// by the module and Caddy's encode leaves it alone.
func TestCompressionLive(t *testing.T) {
	t.Parallel()
	testkit.CaddyBinary(t)
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	long := strings.Repeat("compressible text ", 120) // about 2 KiB
	c := startCaddyConfig(t, sc, compressionConfig(sc, long))
	tap := startTap(t, fmt.Sprintf("127.0.0.1:%d", sc.Port))
	drv := nodeclient.Start(t)

	cl := drv.Connect("deflate", "4", "http://"+tap.ln.Addr().String(), map[string]any{
		"reconnection": false, "transports": []string{"websocket"}, "query": map[string]any{"room": "z"},
	})
	t.Cleanup(cl.Disconnect)
	if _, err := cl.WaitConnect(clientWait); err != nil {
		t.Fatalf("%v\n%s", err, c.Log)
	}
	if args, err := cl.WaitEvent("welcome", clientWait); err != nil || args[0] != long {
		t.Fatalf("welcome %d args (%v)", len(args), err)
	}
	if args, err := cl.WaitEvent("joined", clientWait); err != nil || args[0] != "short" {
		t.Fatalf("joined %v (%v)", args, err)
	}
	ext, frames := tap.snapshot()
	if !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("negotiated %q", ext)
	}
	var big, small int
	for _, f := range frames {
		switch {
		case f.compressed && f.length < uint64(len(long)):
			big++ // the welcome: compressed, and smaller than its text
		case !f.compressed && f.length < 1024:
			small++ // open packet, CONNECT reply, announcement
		default:
			t.Errorf("frame %+v: compressed under the threshold, or big and not compressed", f)
		}
	}
	if big != 1 || small < 3 {
		t.Errorf("%d compressed and %d small uncompressed frames, want 1 and at least 3: %+v", big, small, frames)
	}

	t.Run("deflate bomb", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: clientWait, EnableCompression: true}
		ws, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket", sc.Port), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
			t.Fatal("not negotiated")
		}
		_ = ws.SetReadDeadline(time.Now().Add(clientWait))
		if _, _, err := ws.ReadMessage(); err != nil { // open packet
			t.Fatal(err)
		}
		// 10 MB that deflate to a few KB: under max_payload on the wire.
		payload := append([]byte(`42["chat","`), bytes.Repeat([]byte("a"), 10_000_000)...)
		var wire bytes.Buffer
		fw, _ := flate.NewWriter(&wire, flate.BestSpeed)
		_, _ = fw.Write(payload)
		_ = fw.Close()
		if wire.Len() >= 100_000 {
			t.Fatalf("bomb is %d bytes on the wire", wire.Len())
		}
		_ = ws.SetWriteDeadline(time.Now().Add(clientWait))
		_ = ws.WriteMessage(websocket.TextMessage, payload)
		var ce *websocket.CloseError
		for i := 0; i < 100; i++ {
			if _, _, err = ws.ReadMessage(); err != nil {
				break
			}
		}
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("bomb: %v, want close 1009", err)
		}
		// The other client still works.
		cl2 := drv.Connect("after-bomb", "4", c.BaseURL, map[string]any{"reconnection": false,
			"transports": []string{"websocket"}, "query": map[string]any{"room": "z"}})
		t.Cleanup(cl2.Disconnect)
		if _, err := cl2.WaitConnect(clientWait); err != nil {
			t.Fatal(err)
		}
		cl2.Emit("chat", "after the bomb")
		if args, err := cl.WaitEvent("chat", clientWait); err != nil || args[0] != "after the bomb" {
			t.Errorf("relay after the bomb: %v (%v)", args, err)
		}
	})

	t.Run("held long poll", func(t *testing.T) {
		base := fmt.Sprintf("http://127.0.0.1:%d/socket.io/?EIO=4&transport=polling", sc.Port)
		hc := &http.Client{Timeout: clientWait, Transport: &http.Transport{DisableCompression: true}}
		get := func(u string) (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}
		_, body := get(base + "&room=z")
		var open struct{ Sid string }
		if err := json.Unmarshal(body[1:], &open); err != nil {
			t.Fatalf("handshake %q", body)
		}
		post := func(payload string) {
			resp, err := hc.Post(base+"&sid="+open.Sid, "text/plain;charset=UTF-8", strings.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		post("40")
		// Drain the CONNECT reply, the welcome and the announcement.
		drained := ""
		for i := 0; i < 10 && !(strings.Contains(drained, `"joined"`) && strings.Contains(drained, `"welcome"`)); i++ {
			resp, b := get(base + "&sid=" + open.Sid)
			drained += inflateIf(t, resp, b)
		}
		if !strings.Contains(drained, `"joined"`) || !strings.Contains(drained, `"welcome"`) {
			t.Fatalf("polling socket got %q", cutText(drained))
		}
		// Now a GET waits; a relayed message over the threshold answers it.
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		held := make(chan [2]string, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"&sid="+open.Sid, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := hc.Do(req)
			if err != nil {
				held <- [2]string{"", err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			held <- [2]string{resp.Header.Get("Content-Encoding"), string(b)}
		}()
		time.Sleep(300 * time.Millisecond) // lets the GET park on purpose: nothing signals it
		cl.Emit("chat", long)
		r := <-held
		if r[0] != "gzip" {
			t.Fatalf("held GET: Content-Encoding %q (%q)", r[0], r[1])
		}
		zr, err := gzip.NewReader(strings.NewReader(r[1]))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("not one gzip stream (double encoding?): %v", err)
		}
		if want := `42["chat","` + long + `"]`; string(plain) != want {
			t.Errorf("held GET body %q..., want %q...", cutText(string(plain)), cutText(want))
		}
	})
}

func inflateIf(t *testing.T, resp *http.Response, b []byte) string {
	t.Helper()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return string(b)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func cutText(s string) string { return s[:min(len(s), 40)] }
