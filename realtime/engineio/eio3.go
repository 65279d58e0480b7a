package engineio

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Engine.IO protocol v3, spoken by socket.io-client 2.x (engine.io-client
// 3.x), accepted when Options.AllowEIO3 is set. It differs from v4 in the
// framing of polling payloads, in binary packets, in JSONP polling and in
// the heartbeat direction (engine.io-protocol, branch v3; Node's
// engine.io lib/parser-v3 and lib/socket.ts):
//
//   - polling text payload: each packet as "<length>:<packet>", the length
//     in UTF-16 code units; a binary packet as "b4<base64>", the length
//     counting the whole record;
//   - polling binary payload (application/octet-stream), used when the
//     handshake had no b64 and a packet is binary: per packet a 0 (text)
//     or 1 (binary) byte, the decimal digits of the length one byte each,
//     0xFF, then the packet (text: type char and UTF-8 data; binary: the
//     type byte 4 and the bytes);
//   - websocket: text frames as in v4; a binary frame starts with the
//     type byte 4; a text frame "b4<base64>" is binary too;
//   - the client pings ("2") and the server answers "3"; the session
//     times out pingInterval+pingTimeout after the last client ping, and
//     other traffic does not count.
//
// A session's protocol is decided at its handshake (EIO "4" is v4,
// anything else v3, as Node does) and never changes.

// eio3 is what a v3 session adds to Session; nil for v4 sessions, so that
// they pay one pointer.
type eio3 struct {
	// pollBinary: polling responses may be binary payloads, because the
	// polling handshake had no b64 (Node fixes supportsBinary per
	// transport at its creation).
	pollBinary bool
	// jsonpHead is "___eio[<j>](" for a JSONP session, nil otherwise.
	jsonpHead []byte
	// wsBase64: the websocket request had b64, so binary packets go as
	// "b4<base64>" text frames. Set before the websocket is used.
	wsBase64 atomic.Bool
}

// isV4 reports whether a request speaks Engine.IO v4; Node takes any
// other EIO value, or none, for v3.
func isV4(q query) bool { return q.Get("EIO") == "4" }

// newEIO3 returns the v3 state of a session opened by handshake request r,
// or nil if r speaks v4. ServeHTTP has already checked j (jsonpIndex).
func newEIO3(r *http.Request) *eio3 {
	q := queryOf(r)
	if isV4(q) {
		return nil
	}
	v := &eio3{}
	if websocket.IsWebSocketUpgrade(r) {
		v.wsBase64.Store(q.Has("b64"))
		return v
	}
	if j, ok := jsonpIndex(q); ok {
		v.jsonpHead = append(append([]byte("___eio["), j...), "]("...)
		return v // JSONP is text only
	}
	v.pollBinary = !q.Has("b64")
	return v
}

// Protocol returns the session's Engine.IO protocol revision, 4 or 3.
func (s *Session) Protocol() int {
	if s.v3 != nil {
		return 3
	}
	return 4
}

// heartbeatV3 is the v3 session timeout: Node arms pingInterval +
// pingTimeout and refreshes it only on a client ping.
func (c *config) heartbeatV3() time.Duration { return c.PingInterval + c.PingTimeout }

// onClientPing answers a v3 client's ping with a pong and moves the
// session deadline. Pongs are control packets, outside the backlog bound:
// a pong is not queued right behind another one still waiting, so a
// client that pings without reading cannot grow the queue (between two
// pongs there is a message, which the backlog bound counts).
func (s *Session) onClientPing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if n := len(s.queue); n == 0 || s.queue[n-1].typ != typePong {
		s.enqueueLocked(typePong)
	}
	s.armLocked(s.cfg.heartbeatV3())
}

// utf16Len is the length of UTF-8 text in UTF-16 code units, the length
// JavaScript strings have. A byte that is not UTF-8 counts as one unit.
func utf16Len(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// v3Record appends the v3 string form of one packet: its type char and
// data, or "b4<base64>" for a binary message.
func v3Record(dst []byte, p outPacket) []byte {
	switch {
	case p.msg == nil:
		return append(dst, p.typ)
	case p.msg.binary:
		dst = append(dst, binaryPrefix, typeMessage)
		return base64.StdEncoding.AppendEncode(dst, p.msg.frame)
	default:
		return append(dst, p.msg.frame...)
	}
}

// appendPayloadV3Text appends the v3 text encoding of pkts:
// "<length>:<record>" each, the length in UTF-16 units.
func appendPayloadV3Text(dst []byte, pkts []outPacket) []byte {
	if len(pkts) == 0 {
		return append(dst, "0:"...)
	}
	var rec []byte
	for _, p := range pkts {
		rec = v3Record(rec[:0], p)
		dst = strconv.AppendInt(dst, int64(utf16Len(rec)), 10)
		dst = append(dst, ':')
		dst = append(dst, rec...)
	}
	return dst
}

// Record kinds in a v3 binary payload.
const (
	v3StringRecord byte = 0
	v3BinaryRecord byte = 1
	v3LengthEnd    byte = 0xff
)

// appendPayloadV3Binary appends the v3 binary encoding of pkts.
func appendPayloadV3Binary(dst []byte, pkts []outPacket) []byte {
	for _, p := range pkts {
		if p.msg != nil && p.msg.binary {
			dst = appendV3Length(append(dst, v3BinaryRecord), 1+len(p.msg.frame))
			dst = append(dst, typeMessage-'0')
			dst = append(dst, p.msg.frame...)
			continue
		}
		n := 1
		if p.msg != nil {
			n = len(p.msg.frame)
		}
		dst = appendV3Length(append(dst, v3StringRecord), n)
		dst = v3Record(dst, p)
	}
	return dst
}

// appendV3Length appends n as one byte per decimal digit, then 0xFF.
func appendV3Length(dst []byte, n int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(n), 10)
	for i := start; i < len(dst); i++ {
		dst[i] -= '0'
	}
	return append(dst, v3LengthEnd)
}

func hasBinary(pkts []outPacket) bool {
	for _, p := range pkts {
		if p.msg != nil && p.msg.binary {
			return true
		}
	}
	return false
}

// maxV3LengthDigits bounds the length prefix of a v3 record: MaxPayload
// is far below ten digits.
const maxV3LengthDigits = 10

// decodePacketV3 decodes one v3 string record: "<type><data>", or
// "b<type><base64>" for binary.
func decodePacketV3(rec []byte) (packet, error) {
	if len(rec) >= 2 && rec[0] == binaryPrefix {
		if rec[1] != typeMessage {
			return packet{}, fmt.Errorf("decoding v3 binary packet: type %q: %w", rec[1], errMalformedPacket)
		}
		enc := rec[2:]
		dst := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(dst, enc)
		if err != nil {
			return packet{}, fmt.Errorf("decoding v3 binary packet: %w: %v", errMalformedPacket, err)
		}
		return packet{typ: typeMessage, data: dst[:n:n], binary: true}, nil
	}
	if len(rec) == 0 || rec[0] < typeOpen || rec[0] > typeNoop {
		return packet{}, fmt.Errorf("decoding v3 packet: %w", errMalformedPacket)
	}
	return packet{typ: rec[0], data: rec[1:len(rec):len(rec)]}, nil
}

// eachV3Text calls fn for each record of a v3 text payload; zero-length
// records are skipped, as Node does. A bad length is errMalformedPacket.
func eachV3Text(body []byte, fn func(rec []byte) error) error {
	if len(body) == 0 {
		return fmt.Errorf("decoding v3 payload: empty: %w", errMalformedPacket)
	}
	for len(body) > 0 {
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || colon > maxV3LengthDigits {
			return fmt.Errorf("decoding v3 payload: bad length: %w", errMalformedPacket)
		}
		n, err := strconv.Atoi(string(body[:colon]))
		if err != nil || n < 0 || !allDigits(body[:colon]) {
			return fmt.Errorf("decoding v3 payload: bad length: %w", errMalformedPacket)
		}
		body = body[colon+1:]
		// Take n UTF-16 units.
		i, units := 0, 0
		for units < n && i < len(body) {
			r, size := utf8.DecodeRune(body[i:])
			if r >= 0x10000 {
				units += 2
			} else {
				units++
			}
			i += size
		}
		if units != n {
			return fmt.Errorf("decoding v3 payload: length %d does not match: %w", n, errMalformedPacket)
		}
		rec := body[:i:i]
		body = body[i:]
		if len(rec) == 0 {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// eachV3Binary calls fn for each packet of a v3 binary payload.
func eachV3Binary(body []byte, fn func(packet) error) error {
	for len(body) > 0 {
		kind := body[0]
		if kind != v3StringRecord && kind != v3BinaryRecord {
			return fmt.Errorf("decoding v3 binary payload: record kind %d: %w", kind, errMalformedPacket)
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != v3LengthEnd; i++ {
			if body[i] > 9 || i > maxV3LengthDigits {
				return fmt.Errorf("decoding v3 binary payload: bad length: %w", errMalformedPacket)
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i == len(body) || n > len(body)-i-1 {
			return fmt.Errorf("decoding v3 binary payload: bad length: %w", errMalformedPacket)
		}
		rec := body[i+1 : i+1+n : i+1+n]
		body = body[i+1+n:]
		var p packet
		if kind == v3BinaryRecord {
			if n == 0 || rec[0] != typeMessage-'0' {
				return fmt.Errorf("decoding v3 binary payload: binary record not a message: %w", errMalformedPacket)
			}
			p = packet{typ: typeMessage, data: rec[1:], binary: true}
		} else {
			if !utf8.Valid(rec) {
				return fmt.Errorf("decoding v3 binary payload: invalid UTF-8: %w", errMalformedPacket)
			}
			var err error
			if p, err = decodePacketV3(rec); err != nil {
				return err
			}
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// decodePayloadV3 calls fn for each packet of a v3 polling POST body. The
// whole body is checked first (framing, packet count), so a bad or
// oversized payload delivers nothing.
func (v *eio3) decodePayloadV3(body []byte, binaryBody bool, maxPackets int, fn func(packet) error) error {
	if v.jsonpHead != nil && !binaryBody {
		var err error
		if body, err = jsonpData(body); err != nil {
			return err
		}
	}
	count := 0
	countFn := func(packet) error {
		count++
		if count > maxPackets {
			return fmt.Errorf("decoding payload: more than %d packets: %w", maxPackets, errTooManyPackets)
		}
		return nil
	}
	if binaryBody {
		if err := eachV3Binary(body, countFn); err != nil {
			return err
		}
		return eachV3Binary(body, fn)
	}
	if !utf8.Valid(body) {
		return fmt.Errorf("decoding payload: invalid UTF-8: %w", errMalformedPacket)
	}
	check := func(rec []byte) error {
		if _, err := decodePacketV3(rec); err != nil {
			return err
		}
		return countFn(packet{})
	}
	if err := eachV3Text(body, check); err != nil {
		return err
	}
	return eachV3Text(body, func(rec []byte) error {
		p, err := decodePacketV3(rec)
		if err != nil {
			return err
		}
		return fn(p)
	})
}

// encodePoll builds a v3 polling response body and its content type.
func (v *eio3) encodePoll(pkts []outPacket, size int) ([]byte, string) {
	if v.jsonpHead != nil {
		return jsonpBody(v.jsonpHead, appendPayloadV3Text(make([]byte, 0, size+8*len(pkts)), pkts)), contentTypeText
	}
	if v.pollBinary && hasBinary(pkts) {
		return appendPayloadV3Binary(make([]byte, 0, size+8*len(pkts)), pkts), contentTypeBinary
	}
	return appendPayloadV3Text(make([]byte, 0, size+8*len(pkts)), pkts), contentTypeText
}

// decodeFrameV3 decodes one v3 websocket message.
func decodeFrameV3(messageType int, p []byte) (packet, error) {
	if messageType == websocket.BinaryMessage {
		if len(p) == 0 || p[0] != typeMessage-'0' {
			return packet{}, fmt.Errorf("decoding v3 binary frame: %w", errMalformedPacket)
		}
		return packet{typ: typeMessage, data: p[1:], binary: true}, nil
	}
	return decodePacketV3(p)
}

// writeBinaryV3 writes a binary message to a v3 websocket: the type byte
// and the bytes in a binary frame, or "b4<base64>" in a text frame when
// the websocket request had b64.
func (v *eio3) writeBinaryV3(c *websocket.Conn, m *Message) error {
	if v.wsBase64.Load() {
		b := make([]byte, 0, 2+base64.StdEncoding.EncodedLen(len(m.frame)))
		b = append(b, binaryPrefix, typeMessage)
		return c.WriteMessage(websocket.TextMessage, base64.StdEncoding.AppendEncode(b, m.frame))
	}
	w, err := c.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{typeMessage - '0'}); err != nil {
		_ = w.Close()
		return err
	}
	if _, err := w.Write(m.frame); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// decodeFrame decodes a websocket message in the session's protocol.
func (s *Session) decodeFrame(messageType int, p []byte) (packet, error) {
	if s.v3 != nil {
		return decodeFrameV3(messageType, p)
	}
	return decodeFrame(messageType, p)
}
