package engineio

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Engine.IO v3 (socket.io-client 2.x) against AllowEIO3. Each test names
// the expectation it checks; the framing examples are those of the
// engine.io-protocol v3 README and of Node's lib/parser-v3.

// v3Handshake opens a v3 polling session with query (EIO and transport
// included) and returns its sid.
func (ts *tserver) v3Handshake(query string) string {
	ts.t.Helper()
	code, _, body := ts.do("GET", query, "", nil)
	i := strings.IndexByte(body, ':')
	if code != 200 || i < 0 || !strings.HasPrefix(body[i+1:], "0{") {
		ts.t.Fatalf("v3 handshake %s: %d %q", query, code, body)
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(body[i+2:]), &open); err != nil {
		ts.t.Fatalf("v3 handshake %q: %v", body, err)
	}
	return open.Sid
}

func (ts *tserver) v3Get(sid, extra string) (int, http.Header, string) {
	ts.t.Helper()
	return ts.do("GET", "EIO=3&transport=polling&sid="+sid+extra, "", nil)
}

func (ts *tserver) v3Post(sid, body, contentType string) (int, string) {
	ts.t.Helper()
	code, _, b := ts.do("POST", "EIO=3&transport=polling&sid="+sid, body, http.Header{"Content-Type": {contentType}})
	return code, b
}

// Version pick: with AllowEIO3 a missing, "3", garbage or "5" EIO opens a
// v3 session; without it each is refused with code 5, Node's body.
func TestEIO3VersionPick(t *testing.T) {
	off := newTServer(t, Options{})
	on := newTServer(t, Options{AllowEIO3: true})
	for _, q := range []string{"transport=polling", "EIO=3&transport=polling", "EIO=abc&transport=polling", "EIO=5&transport=polling"} {
		t.Run(q, func(t *testing.T) {
			code, h, body := off.do("GET", q, "", nil)
			if code != 400 || body != `{"code":5,"message":"Unsupported protocol version"}` || h.Get("Content-Type") != "application/json" {
				t.Errorf("allow_eio3 off: %d %q %q", code, h.Get("Content-Type"), body)
			}
			sid := on.v3Handshake(q)
			r := on.session()
			if r.s.Protocol() != 3 || r.s.ID() != sid {
				t.Errorf("protocol %d, sid %q/%q", r.s.Protocol(), r.s.ID(), sid)
			}
		})
	}
	// EIO=4 is still v4 with the option on.
	sid := on.handshake()
	if r := on.session(); r.s.Protocol() != 4 || r.s.ID() != sid {
		t.Errorf("EIO=4 with allow_eio3: protocol %d", r.s.Protocol())
	}
	// Off, the other codes keep Node's order: POST without sid is code 2.
	if code, _, body := off.do("POST", "transport=polling", "x", nil); code != 400 || !strings.Contains(body, `"code":2`) {
		t.Errorf("POST handshake, off: %d %q", code, body)
	}
}

// Later requests keep the session's protocol: an EIO=4 request for a v3
// session, or EIO=3 for a v4 one, is a bad request.
func TestEIO3ProtocolIsFixed(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	ts.session()
	if code, _, body := ts.do("GET", "EIO=4&transport=polling&sid="+sid, "", nil); code != 400 || !strings.Contains(body, `"code":3`) {
		t.Errorf("EIO=4 GET on a v3 session: %d %q", code, body)
	}
	sid4 := ts.handshake()
	ts.session()
	if code, _, body := ts.do("GET", "EIO=3&transport=polling&sid="+sid4, "", nil); code != 400 || !strings.Contains(body, `"code":3`) {
		t.Errorf("EIO=3 GET on a v4 session: %d %q", code, body)
	}
}

// Polling GET encoding: text framing "<len>:<packet>" with the length in
// UTF-16 units and binary as "b4<base64>" counted whole when the
// handshake had b64; the binary payload of the spec's example otherwise.
func TestEIO3PollingEncoding(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	for _, tc := range []struct {
		name, query, ct, body string
	}{
		{"b64 text framing", "EIO=3&transport=polling&b64=1", contentTypeText, "2:4€10:b4AQIDBA=="},
		{"binary payload", "EIO=3&transport=polling", contentTypeBinary, hex.EncodeToString([]byte{
			0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x05, 0xff, 0x04, 0x01, 0x02, 0x03, 0x04})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := ts.v3Handshake(tc.query)
			r := ts.session()
			if err := r.s.Send(TextMessageString("€"), BinaryMessage([]byte{1, 2, 3, 4})); err != nil {
				t.Fatal(err)
			}
			code, h, body := ts.v3Get(sid, "")
			if tc.ct == contentTypeBinary {
				body = hex.EncodeToString([]byte(body))
			}
			if code != 200 || h.Get("Content-Type") != tc.ct || body != tc.body {
				t.Errorf("GET: %d %q %q, want %q %q", code, h.Get("Content-Type"), body, tc.ct, tc.body)
			}
		})
	}
	// An empty payload is "0:" (Node's encodePayload; this server never
	// answers a GET with nothing, but the encoder keeps Node's form).
	if got := string(appendPayloadV3Text(nil, nil)); got != "0:" {
		t.Errorf("empty payload %q", got)
	}
	// Text only: text framing even without b64; an astral character
	// counts two UTF-16 units.
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	_ = r.s.Send(TextMessageString("a😀"), TextMessageString(""))
	if code, h, body := ts.v3Get(sid, ""); code != 200 || body != "4:4a😀1:4" || h.Get("Content-Type") != contentTypeText {
		t.Errorf("text GET: %d %q %q", code, h.Get("Content-Type"), body)
	}
	// Control packets are framed too: the handshake's open packet above,
	// and a noop when the server lets a GET go.
	ts.srv.ReleasePolls()
	c := ts.asyncGetV3(sid)
	waitFor(t, "GET parked", func() bool { r.s.mu.Lock(); defer r.s.mu.Unlock(); return r.s.getActive })
	ts.srv.ReleasePolls()
	if status, body := waitResult(t, c); status != "200" || body != "1:6" {
		t.Errorf("released GET: %s %q", status, body)
	}
}

func (ts *tserver) asyncGetV3(sid string) <-chan [2]string {
	c := make(chan [2]string, 1)
	go func() {
		code, _, body := ts.do("GET", "EIO=3&transport=polling&sid="+sid, "", nil)
		c <- [2]string{strconv.Itoa(code), body}
	}()
	return c
}

// Polling POST decoding: text framing (zero-length records skipped),
// binary framing as application/octet-stream, "ok" as for v4.
func TestEIO3PollingDecoding(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	if code, body := ts.v3Post(sid, "6:4hello0:10:b4AQIDBA==2:4€", "text/plain;charset=UTF-8"); code != 200 || body != "ok" {
		t.Fatalf("text POST: %d %q", code, body)
	}
	bin := string([]byte{0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x05, 0xff, 0x04, 0x01, 0x02, 0x03, 0x04})
	if code, body := ts.v3Post(sid, bin, "application/octet-stream"); code != 200 || body != "ok" {
		t.Fatalf("binary POST: %d %q", code, body)
	}
	got := r.waitMessages(t, 5)
	want := []string{"t:hello", "b:01020304", "t:€", "t:€", "b:01020304"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

// A bad length (empty, not a number, not matching) is a parse error: 400,
// the session closed, and nothing of the payload delivered.
func TestEIO3PollingBadPayload(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	for _, tc := range []struct{ name, body, ct string }{
		{"empty length", ":4hi", "text/plain"},
		{"not a number", "x:4hi", "text/plain"},
		{"too long", "9:4hi", "text/plain"},
		{"no colon", "3", "text/plain"},
		{"bad record after a good one", "3:4hi1:9", "text/plain"},
		{"huge length", "99999999999999:4", "text/plain"},
		{"binary length past the end", string([]byte{0, 9, 0xff, '4'}), "application/octet-stream"},
		{"binary digit over 9", string([]byte{0, 12, 0xff, '4'}), "application/octet-stream"},
		{"binary kind", string([]byte{7, 1, 0xff, '4'}), "application/octet-stream"},
		{"binary record not a message", string([]byte{1, 2, 0xff, 2, 1}), "application/octet-stream"},
		{"binary no end", string([]byte{0, 1, 1, 1}), "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := ts.v3Handshake("EIO=3&transport=polling")
			r := ts.session()
			if code, body := ts.v3Post(sid, tc.body, tc.ct); code != 400 || !strings.Contains(body, `"code":3`) {
				t.Errorf("POST %q: %d %q", tc.body, code, body)
			}
			if reason := r.waitClose(t); reason != ReasonParseError {
				t.Errorf("OnClose(%q)", reason)
			}
			if msgs := r.messages(); len(msgs) != 0 {
				t.Errorf("delivered %q from a bad payload", msgs)
			}
			if code, _, _ := ts.v3Get(sid, ""); code != 400 {
				t.Errorf("GET after the parse error: %d", code)
			}
		})
	}
}

// A v3 POST is bounded in packets as v4 is.
func TestEIO3PollingPacketLimit(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true, MaxPayloadPackets: 3})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	if code, _ := ts.v3Post(sid, strings.Repeat("2:4a", 4), "text/plain"); code != 400 {
		t.Errorf("4 packets over a limit of 3: %d", code)
	}
	r.waitClose(t)
	if msgs := r.messages(); len(msgs) != 0 {
		t.Errorf("delivered %q", msgs)
	}
}

// Heartbeat: the client pings, the server answers a bare 3; the session
// times out pingInterval+pingTimeout after the last client ping, and
// messages do not move that deadline; a client pong is an error.
func TestEIO3Heartbeat(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{AllowEIO3: true, PingInterval: interval, PingTimeout: timeout, clock: fc})
	sid := ts.v3Handshake("EIO=3&transport=polling&b64=1")
	r := ts.session()
	for i := 0; i < 3; i++ {
		fc.advance(interval)
		ts.v3Post(sid, "1:2", "text/plain")
		if code, _, body := ts.v3Get(sid, ""); code != 200 || body != "1:3" {
			t.Fatalf("round %d: pong %d %q", i, code, body)
		}
	}
	// The server never pings: nothing is queued after an interval.
	fc.advance(interval)
	if n := queued(r.s); n != 0 {
		t.Fatalf("%d packets queued without a client ping", n)
	}
	// Messages do not count.
	ts.v3Post(sid, "2:4a", "text/plain")
	r.waitMessages(t, 1)
	fc.advance(timeout - time.Nanosecond)
	if closedYet(r.s) {
		t.Fatal("closed before pingInterval+pingTimeout")
	}
	fc.advance(time.Nanosecond)
	if reason := closedNow(t, r); reason != ReasonPingTimeout {
		t.Errorf("OnClose(%q)", reason)
	}

	sid = ts.v3Handshake("EIO=3&transport=polling&b64=1")
	r = ts.session()
	ts.v3Post(sid, "1:3", "text/plain")
	if reason := r.waitClose(t); reason != ReasonParseError {
		t.Errorf("client pong: OnClose(%q)", reason)
	}
}

func queued(s *Session) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// WebSocket: text frames as v4; binary out is the type byte 4 and the
// bytes, or a "b4<base64>" text frame when the request had b64; binary in
// starts with the type byte; a "b4" text frame is binary too; the client
// pings.
func TestEIO3WebSocket(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	for _, b64 := range []bool{false, true} {
		q := "EIO=3&transport=websocket"
		if b64 {
			q += "&b64=1"
		}
		c := ts.mustDial(q)
		if _, open := read(t, c); !strings.HasPrefix(open, `0{"sid":`) {
			t.Fatalf("open frame %q", open)
		}
		r := ts.session()
		if r.s.Protocol() != 3 {
			t.Fatal("not a v3 session")
		}
		send(t, c, "4hello")
		expectText(t, c, "4hello")
		if err := c.WriteMessage(websocket.BinaryMessage, []byte{4, 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		mt, got := read(t, c)
		if b64 {
			if mt != websocket.TextMessage || got != "b4AQID" {
				t.Errorf("b64: echo (%d) %q", mt, got)
			}
		} else if mt != websocket.BinaryMessage || got != "\x04\x01\x02\x03" {
			t.Errorf("binary: echo (%d) %x", mt, got)
		}
		send(t, c, "b4BAU=")
		if _, got := read(t, c); !strings.HasSuffix(got, "\x04\x05") && got != "b4BAU=" {
			t.Errorf("b4 text frame echoed as %q", got)
		}
		send(t, c, "2")
		expectText(t, c, "3")
		if strings.Join(r.messages(), " ") != "t:hello b:010203 b:0405" {
			t.Errorf("delivered %q", r.messages())
		}
		// A binary frame that is not a message packet is a parse error.
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{2, 1})
		if reason := r.waitClose(t); reason != ReasonParseError {
			t.Errorf("OnClose(%q)", reason)
		}
	}
}

// Upgrade: 2probe/3probe/5 unchanged; b64 is fixed by the websocket
// request, not the polling handshake; the pending GET ends with a framed
// noop.
func TestEIO3Upgrade(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	sid := ts.v3Handshake("EIO=3&transport=polling&b64=1")
	r := ts.session()
	get := ts.asyncGetV3(sid)
	waitFor(t, "GET parked", func() bool { r.s.mu.Lock(); defer r.s.mu.Unlock(); return r.s.getActive })
	c := ts.mustDial("EIO=3&transport=websocket&sid=" + sid)
	send(t, c, "2probe")
	expectText(t, c, "3probe")
	if status, body := waitResult(t, get); status != "200" || body != "1:6" {
		t.Errorf("pending GET: %s %q", status, body)
	}
	send(t, c, "5")
	waitFor(t, "upgrade", func() bool { return r.s.Transport() == TransportWebSocket })
	_ = r.s.Send(BinaryMessage([]byte{9}))
	if mt, got := read(t, c); mt != websocket.BinaryMessage || got != "\x04\x09" {
		t.Errorf("binary after upgrade without b64 on the websocket: (%d) %x", mt, got)
	}
	if code, _, _ := ts.v3Get(sid, ""); code != 400 {
		t.Errorf("polling after upgrade: %d", code)
	}
}

// JSONP: ___eio[<j>]("<payload>"); on GETs, the payload a JSON string so
// that nothing in it can end the call or the script; POSTs as the form
// field d with the client's newline escaping undone.
func TestEIO3JSONP(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	ref := http.Header{"Referer": {ts.hs.URL + "/page.html"}}
	code, h, body := ts.do("GET", "EIO=3&transport=polling&j=3", "", ref)
	if code != 200 || !strings.HasPrefix(body, `___eio[3]("`) || !strings.HasSuffix(body, `");`) || h.Get("Content-Type") != contentTypeText {
		t.Fatalf("JSONP handshake: %d %q %q", code, h.Get("Content-Type"), body)
	}
	var payload string
	if err := json.Unmarshal([]byte(body[len(`___eio[3](`):len(body)-2]), &payload); err != nil {
		t.Fatalf("JSONP body %q is not a JSON string: %v", body, err)
	}
	i := strings.IndexByte(payload, ':')
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(payload[i+2:]), &open); err != nil {
		t.Fatal(err)
	}
	r := ts.session()
	hostile := "\");alert(1)//</script><script>x\u2028\u2029\\"
	_ = r.s.Send(TextMessageString(hostile), BinaryMessage([]byte{1}))
	code, _, body = ts.v3Get(open.Sid, "&j=3")
	if code != 200 {
		t.Fatalf("GET %d", code)
	}
	inner := body[len(`___eio[3](`) : len(body)-2]
	for _, bad := range []string{"</script", "\u2028", "\u2029"} {
		if strings.Contains(inner, bad) {
			t.Errorf("JSONP body carries %q raw: %q", bad, body)
		}
	}
	if err := json.Unmarshal([]byte(inner), &payload); err != nil {
		t.Fatalf("not a JSON string: %q", inner)
	}
	want := "35:4" + hostile + "6:b4AQ=="
	if payload != want {
		t.Errorf("payload %q, want %q", payload, want)
	}
	// POST: d=<payload>, \n is a newline and \\n a backslash-n.
	form := "d=" + urlEncode(`7:4a\nb\\nc`)
	if code, _ := ts.v3Post(open.Sid, form, "application/x-www-form-urlencoded"); code != 200 {
		t.Fatalf("JSONP POST: %d", code)
	}
	if got := r.waitMessages(t, 1); got[0] != "t:a\nb\\nc" {
		t.Errorf("JSONP POST delivered %q", got)
	}
	if code, _ := ts.v3Post(open.Sid, "x=1", "application/x-www-form-urlencoded"); code != 400 {
		t.Errorf("JSONP POST without d: %d", code)
	}
}

func urlEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// The hostile JSONP cases: an index that is not a number is refused
// (it would be written into the script), and a JSONP handshake from no
// origin, or from one the origins list does not allow, is refused (a
// script tag reads across origins with the page's cookies, unseen by CORS).
func TestEIO3JSONPHostile(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	self := http.Header{"Referer": {ts.hs.URL + "/"}}
	for _, j := range []string{"alert(1)", "1);alert(1", "", "1234567890", "-1", "1e3"} {
		code, _, body := ts.do("GET", "EIO=3&transport=polling&j="+urlEncode(j), "", self)
		if code != 400 || strings.Contains(body, "alert") {
			t.Errorf("j=%q: %d %q", j, code, body)
		}
	}
	for name, hdr := range map[string]http.Header{
		"no origin":        nil,
		"foreign referer":  {"Referer": {"https://evil.example/x"}},
		"foreign origin":   {"Origin": {"https://evil.example"}},
		"non-http referer": {"Referer": {"file:///x"}},
		"garbage referer":  {"Referer": {"::"}},
	} {
		if code, _, body := ts.do("GET", "EIO=3&transport=polling&j=0", "", hdr); code != 403 || strings.Contains(body, "___eio") {
			t.Errorf("%s: %d %q", name, code, body)
		}
	}
	if n := ts.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions opened by refused handshakes", n)
	}
	// With "*" any page may: the same as CORS with "*".
	any := newTServer(t, Options{AllowEIO3: true, AllowedOrigins: []string{"*"}})
	if code, _, _ := any.do("GET", "EIO=3&transport=polling&j=0", "", http.Header{"Referer": {"https://elsewhere.example/"}}); code != 200 {
		t.Errorf("origins *: %d", code)
	}
	// Without AllowEIO3, j means nothing on v4 and is code 5 on v3.
	off := newTServer(t, Options{})
	if code, _, body := off.do("GET", "EIO=3&transport=polling&j=0", "", self); code != 400 || !strings.Contains(body, `"code":5`) {
		t.Errorf("allow_eio3 off: %d %q", code, body)
	}
}

// Fuzz-style table for the text and binary decoders: whatever the input,
// no panic, and an error is errMalformedPacket.
func TestEIO3DecodersNoPanic(t *testing.T) {
	v := &eio3{}
	for _, in := range []string{"", ":", "0:", "1:", "1:b", "2:b4", "3:b4=", "1:\xff", "01:4", "2:4😀", "3:4😀",
		"\x00", "\x00\xff", "\x01\xff", "\x01\x00\xff", "\x00\x01\xff"} {
		for _, bin := range []bool{false, true} {
			_ = v.decodePayloadV3([]byte(in), bin, 100, func(packet) error { return nil })
		}
		_, _ = decodeFrameV3(websocket.TextMessage, []byte(in))
		_, _ = decodeFrameV3(websocket.BinaryMessage, []byte(in))
	}
}

// FuzzDecodePayloadV3 checks the v3 polling decoders (text framing, binary
// framing, JSONP form): never a panic, errors wrap errMalformedPacket or
// errTooManyPackets, nothing is handed over from a payload that fails, and
// what decodes re-encodes (text, and binary framing) to the same packets.
func FuzzDecodePayloadV3(f *testing.F) {
	for _, s := range []string{"6:4hello", "2:4€10:b4AQIDBA==", "0:", "1:2", "3:4😀", "x:4", "6:2probe"} {
		f.Add([]byte(s), false, false)
	}
	f.Add([]byte{0x00, 0x04, 0xff, 0x34, 0xe2, 0x82, 0xac, 0x01, 0x05, 0xff, 0x04, 0x01, 0x02, 0x03, 0x04}, true, false)
	f.Add([]byte(`d=7%3A4a%5Cnb%5C%5Cnc`), false, true)
	f.Fuzz(func(t *testing.T, body []byte, binaryBody, jsonp bool) {
		v := &eio3{}
		if jsonp {
			v.jsonpHead = []byte("___eio[0](")
		}
		var pkts []packet
		err := v.decodePayloadV3(body, binaryBody, 100, func(p packet) error {
			pkts = append(pkts, p)
			return nil
		})
		if err != nil {
			if !errors.Is(err, errMalformedPacket) && !errors.Is(err, errTooManyPackets) {
				t.Fatalf("error %v wraps neither errMalformedPacket nor errTooManyPackets", err)
			}
			if len(pkts) > 0 {
				t.Fatalf("%d packets handed over from a payload that failed", len(pkts))
			}
			return
		}
		out := make([]outPacket, 0, len(pkts))
		for _, p := range pkts {
			if p.binary {
				out = append(out, outPacket{typ: typeMessage, msg: BinaryMessage(p.data)})
				continue
			}
			out = append(out, outPacket{typ: p.typ, msg: &Message{frame: append([]byte{p.typ}, p.data...)}})
		}
		plain := &eio3{}
		for _, bin := range []bool{false, true} {
			var enc []byte
			if bin {
				enc = appendPayloadV3Binary(nil, out)
			} else {
				enc = appendPayloadV3Text(nil, out)
			}
			var again []packet
			if err := plain.decodePayloadV3(enc, bin, 100, func(p packet) error {
				again = append(again, p)
				return nil
			}); err != nil && len(out) > 0 {
				t.Fatalf("re-encoded payload (binary %v) %q does not decode: %v", bin, enc, err)
			}
			if len(out) > 0 && !samePackets(pkts, again) {
				t.Fatalf("round trip (binary %v) changed packets: %v -> %v", bin, pkts, again)
			}
		}
	})
}

// The hostile heartbeat: a v3 client that pings without reading cannot
// grow the queue, pongs are not stacked (one POST of many pings, many
// websocket pings): at most one pong waits; the deadline still moves.
func TestEIO3PingFlood(t *testing.T) {
	ts := newTServer(t, Options{AllowEIO3: true})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	if code, _ := ts.v3Post(sid, strings.Repeat("1:2", 5000), "text/plain"); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	if n := queued(r.s); n != 1 {
		t.Errorf("%d packets queued after 5000 pings, want one pong", n)
	}
	if code, _, body := ts.v3Get(sid, ""); code != 200 || body != "1:3" {
		t.Errorf("GET: %d %q", code, body)
	}
	// Between messages, a pong each: what a real client does.
	_ = r.s.Send(TextMessageString("a"))
	ts.v3Post(sid, "1:2", "text/plain")
	_ = r.s.Send(TextMessageString("b"))
	ts.v3Post(sid, "1:2", "text/plain")
	if code, _, body := ts.v3Get(sid, ""); code != 200 || body != "2:4a1:32:4b1:3" {
		t.Errorf("GET: %d %q", code, body)
	}
}

// A binary POST body belongs to v3: on a v4 session it is a bad request
// that closes the session, with AllowEIO3 on or off (Node: 400).
func TestEIO4BinaryPostRefused(t *testing.T) {
	for _, allow := range []bool{false, true} {
		ts := newTServer(t, Options{AllowEIO3: allow})
		sid := ts.handshake()
		r := ts.session()
		code, _, body := ts.do("POST", "EIO=4&transport=polling&sid="+sid, "\x00\x02\xff4a", http.Header{"Content-Type": {"application/octet-stream"}})
		if code != 400 || !strings.Contains(body, `"code":3`) {
			t.Errorf("allow_eio3 %v: %d %q", allow, code, body)
		}
		if reason := r.waitClose(t); reason != ReasonTransportError {
			t.Errorf("OnClose(%q)", reason)
		}
	}
}
