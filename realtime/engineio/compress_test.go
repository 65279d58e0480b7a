package engineio

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Polling responses: gzip or deflate as Accept-Encoding prefers, from the
// threshold up; smaller bodies, the POST's "ok", and everything with
// DisablePolling go as they are.
func TestPollingCompression(t *testing.T) {
	big := strings.Repeat("x", DefaultCompressionThreshold)
	for _, tc := range []struct {
		name, accept, want string
		msg                string
		opts               Options
	}{
		{"gzip", "gzip, deflate, br", "gzip", big, Options{}},
		{"deflate only", "deflate", "deflate", big, Options{}},
		{"deflate preferred by q", "gzip;q=0.5, deflate", "deflate", big, Options{}},
		{"gzip refused", "gzip;q=0, *;q=0.1", "deflate", big, Options{}},
		{"wildcard", "*", "gzip", big, Options{}},
		{"none accepted", "br, zstd", "", big, Options{}},
		{"no header", "", "", big, Options{}},
		{"under the threshold", "gzip", "", big[:DefaultCompressionThreshold-8], Options{}},
		{"disabled", "gzip", "", big, Options{Compression: Compression{DisablePolling: true}}},
		{"own threshold", "gzip", "gzip", "yyyyyyyyyyyy", Options{Compression: Compression{Threshold: 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTServer(t, tc.opts)
			sid := ts.handshake()
			r := ts.session()
			_ = r.s.Send(TextMessageString(tc.msg))
			hdr := http.Header{}
			if tc.accept != "" {
				hdr.Set("Accept-Encoding", tc.accept)
			}
			code, h, body := ts.do("GET", "EIO=4&transport=polling&sid="+sid, "", hdr)
			if code != 200 || h.Get("Content-Encoding") != tc.want {
				t.Fatalf("GET: %d, Content-Encoding %q, want %q", code, h.Get("Content-Encoding"), tc.want)
			}
			got := inflate(t, tc.want, body)
			if got != "4"+tc.msg {
				t.Errorf("body %q..., want 4%q...", cut(got), cut(tc.msg))
			}
			if tc.want != "" && len(got) >= DefaultCompressionThreshold && len(body) >= len(got) {
				t.Errorf("compressed %d bytes into %d", len(got), len(body))
			}
			code, h, body = ts.do("POST", "EIO=4&transport=polling&sid="+sid, "4"+tc.msg, hdr)
			if code != 200 || body != "ok" || h.Get("Content-Encoding") != "" {
				t.Errorf("POST: %d %q, Content-Encoding %q", code, body, h.Get("Content-Encoding"))
			}
		})
	}
}

func cut(s string) string { return s[:min(len(s), 16)] }

func inflate(t *testing.T, enc, body string) string {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "":
		return body
	case "gzip":
		r, err = gzip.NewReader(strings.NewReader(body))
	case "deflate":
		r, err = zlib.NewReader(strings.NewReader(body))
	}
	if err != nil {
		t.Fatalf("%s reader: %v", enc, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflating %s: %v", enc, err)
	}
	return string(b)
}

// A v3 binary payload is compressed as well.
func TestPollingCompressionEIO3Binary(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	_ = r.s.Send(BinaryMessage(make([]byte, 4096)))
	code, h, body := ts.do("GET", "EIO=3&transport=polling&sid="+sid, "", http.Header{"Accept-Encoding": {"gzip"}})
	if code != 200 || h.Get("Content-Encoding") != "gzip" || h.Get("Content-Type") != contentTypeBinary {
		t.Fatalf("GET: %d %q %q", code, h.Get("Content-Encoding"), h.Get("Content-Type"))
	}
	if got := inflate(t, "gzip", body); len(got) != 4096+7 || got[:7] != "\x01\x04\x00\x09\x07\xff\x04" {
		t.Errorf("inflated %d bytes, head %x", len(got), got[:min(len(got), 8)])
	}
}

// rawWS is a websocket client that reads frame headers itself, to see
// whether the server set RSV1 (compressed, RFC 7692).
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
	ext  string // the Sec-WebSocket-Extensions the server answered
}

func dialRawWS(t *testing.T, ts *tserver, query, extensions string) *rawWS {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ts.hs.Listener.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	req := "GET /engine.io/?" + query + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 16) // small: TestIdleMemoryCompression counts the server's heap
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &rawWS{conn: conn, br: br, ext: resp.Header.Get("Sec-WebSocket-Extensions")}
}

// next reads one unfragmented server frame: its RSV1 bit and payload.
func (c *rawWS) next(t *testing.T) (compressed bool, opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		t.Fatalf("reading frame header: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<24 {
		t.Fatalf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	return h[0]&0x40 != 0, h[0] & 0x0f, payload
}

// permessage-deflate, when enabled and offered, is negotiated in
// no-context-takeover mode; frames from the threshold up are compressed,
// smaller ones are not; without the option nothing is negotiated.
func TestWebSocketCompressionThreshold(t *testing.T) {
	ts := newTServer(t, Options{Compression: Compression{WebSocket: true}})
	c := dialRawWS(t, ts, "EIO=4&transport=websocket", "permessage-deflate; client_max_window_bits")
	if !strings.Contains(c.ext, "permessage-deflate") || !strings.Contains(c.ext, "server_no_context_takeover") {
		t.Fatalf("negotiated %q", c.ext)
	}
	if z, _, p := c.next(t); z || !strings.HasPrefix(string(p), "0{") {
		t.Errorf("open packet: compressed %v, %q", z, p)
	}
	r := ts.session()
	big := strings.Repeat("a", DefaultCompressionThreshold)
	_ = r.s.Send(TextMessageString(big[:DefaultCompressionThreshold-2]), TextMessageString(big))
	if z, _, p := c.next(t); z || len(p) != DefaultCompressionThreshold-1 {
		t.Errorf("frame under the threshold: compressed %v, %d bytes", z, len(p))
	}
	z, op, p := c.next(t)
	if !z || op != 1 {
		t.Fatalf("frame at the threshold: compressed %v, opcode %d", z, op)
	}
	got, err := io.ReadAll(inflateWS(p))
	if err != nil || string(got) != "4"+big {
		t.Errorf("inflated %d bytes (%v)", len(got), err)
	}

	off := newTServer(t, Options{})
	c = dialRawWS(t, off, "EIO=4&transport=websocket", "permessage-deflate")
	if c.ext != "" {
		t.Errorf("compression off, negotiated %q", c.ext)
	}
}

// inflateWS reads a permessage-deflate payload (RFC 7692 7.2.2: the
// sender dropped the empty block's tail).
func inflateWS(p []byte) io.Reader {
	return flate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
}

// A deflate bomb: a frame small on the wire that inflates past
// MaxPayload is closed with 1009 and the session closed, before it is
// read in full; other sessions are untouched.
func TestWebSocketDeflateBomb(t *testing.T) {
	const maxPayload = 100_000
	ts := newTServer(t, Options{MaxPayload: maxPayload, Compression: Compression{WebSocket: true}})
	d := websocket.Dialer{HandshakeTimeout: testTimeout, EnableCompression: true}
	u := "ws" + strings.TrimPrefix(ts.url, "http") + "?EIO=4&transport=websocket"
	other, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	read(t, other)
	ts.session()

	bomb, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bomb.Close()
	if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatal("compression not negotiated")
	}
	read(t, bomb)
	r := ts.session()
	// 5 MB of one letter: some KB on the wire, well under MaxPayload,
	// so only the inflated size can stop it.
	payload := append([]byte{'4'}, bytes.Repeat([]byte("a"), 5_000_000)...)
	var wire bytes.Buffer
	fw, _ := flate.NewWriter(&wire, flate.BestSpeed)
	_, _ = fw.Write(payload)
	_ = fw.Close()
	if wire.Len() >= maxPayload {
		t.Fatalf("the bomb is %d bytes compressed, not under MaxPayload", wire.Len())
	}
	_ = bomb.SetWriteDeadline(time.Now().Add(testTimeout))
	bomb.EnableWriteCompression(true)
	_ = bomb.WriteMessage(websocket.TextMessage, payload)
	err = expectClosed(t, bomb)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("bomb closed with %v, want 1009", err)
	}
	if reason := r.waitClose(t); reason != ReasonTransportError {
		t.Errorf("OnClose(%q)", reason)
	}
	if msgs := r.messages(); len(msgs) != 0 {
		t.Errorf("delivered %d messages from the bomb", len(msgs))
	}
	// A frame that inflates to exactly MaxPayload is fine; the other
	// session still echoes.
	if err := other.WriteMessage(websocket.TextMessage, append([]byte{'4'}, bytes.Repeat([]byte("b"), maxPayload-1)...)); err != nil {
		t.Fatal(err)
	}
	if _, got := read(t, other); len(got) != maxPayload {
		t.Errorf("echo of a MaxPayload frame: %d bytes", len(got))
	}
}

// TestIdleMemoryCompression measures the heap an idle websocket session
// holds on the server with and without permessage-deflate, after one
// compressed message each way. Without context takeover gorilla keeps no
// window per connection, so compression must not make an idle connection
// heavier. The clients are raw sockets with a 16-byte read buffer, so the
// figure is the server's (go test -v -run TestIdleMemoryCompression
// ./realtime/engineio/ logs it).
func TestIdleMemoryCompression(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections")
	}
	const n = 1000
	perConn := map[bool]float64{}
	for _, compress := range []bool{false, true} {
		ts := newTServer(t, Options{Compression: Compression{WebSocket: compress}})
		offer := ""
		if compress {
			offer = "permessage-deflate; client_max_window_bits"
		}
		msg := append([]byte{'4'}, bytes.Repeat([]byte("z"), 2*DefaultCompressionThreshold)...)
		frame := clientFrame(msg, compress)
		before := heapInUse()
		conns := make([]net.Conn, 0, n)
		for i := 0; i < n; i++ {
			c := dialRawWS(t, ts, "EIO=4&transport=websocket", offer)
			c.next(t) // open packet
			r := ts.session()
			if _, err := c.conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if z, _, _ := c.next(t); z != compress {
				t.Fatalf("echo compressed %v", z)
			}
			r.waitMessages(t, 1)
			_ = c.conn.SetDeadline(time.Time{})
			conns = append(conns, c.conn)
		}
		// Let the writers go idle (writerLinger), as on an idle server.
		time.Sleep(writerLinger + 500*time.Millisecond) // waits out a real timer on purpose
		perConn[compress] = (float64(heapInUse()) - float64(before)) / n
		for _, c := range conns {
			c.Close()
		}
		ts.srv.Close()
	}
	t.Logf("server heap and stacks per idle websocket session: %.0f B without compression, %.0f B with permessage-deflate", perConn[false], perConn[true])
	if perConn[true] > perConn[false]+2048 {
		t.Errorf("compression adds %.0f B per idle connection", perConn[true]-perConn[false])
	}
}

// clientFrame builds a masked client text frame of p, compressed (RSV1,
// RFC 7692) when compress is set.
func clientFrame(p []byte, compress bool) []byte {
	head := byte(0x81)
	if compress {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestSpeed)
		_, _ = fw.Write(p)
		_ = fw.Flush()
		p = bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
		head |= 0x40
	}
	f := []byte{head}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, c := range p {
		f = append(f, c^mask[i%4])
	}
	return f
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse // the reader goroutine's stack is part of a connection
}
