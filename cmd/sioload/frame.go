package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Engine.IO v4 packet types, the first byte of every text frame.
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioNoop    = '6'
)

// Socket.IO v5 packet types, the first byte of an Engine.IO message payload.
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// noAck marks a packet that carries no ack id; ids on the wire are never negative.
const noAck = -1

// frame is one decoded text frame. Data aliases the frame bytes, so a frame is
// only valid until the reader reuses its buffer.
type frame struct {
	EIO   byte   // Engine.IO packet type
	SIO   byte   // Socket.IO packet type when EIO is eioMessage, else 0
	NSP   string // namespace, "/" when absent
	AckID int64  // ack id or noAck
	Data  []byte // JSON after the header (may be empty)
}

var errEmptyFrame = errors.New("empty frame")

// parseFrame decodes an Engine.IO v4 text frame and, for message packets, the
// Socket.IO v5 header <type>[<n>-][<nsp>,][<ackId>]<json>. It checks only what
// the load tool relies on; the server under test is not being validated here.
func parseFrame(b []byte) (frame, error) {
	f := frame{AckID: noAck, NSP: "/"}
	if len(b) == 0 {
		return f, errEmptyFrame
	}
	f.EIO = b[0]
	if f.EIO < eioOpen || f.EIO > eioNoop {
		return f, fmt.Errorf("parsing frame: unknown engine.io type %q", f.EIO)
	}
	if f.EIO != eioMessage {
		f.Data = b[1:]
		return f, nil
	}
	rest := b[1:]
	if len(rest) == 0 {
		return f, fmt.Errorf("parsing frame: empty socket.io packet")
	}
	f.SIO = rest[0]
	if f.SIO < sioConnect || f.SIO > sioBinaryAck {
		return f, fmt.Errorf("parsing frame: unknown socket.io type %q", f.SIO)
	}
	rest = rest[1:]
	if f.SIO == sioBinaryEvent || f.SIO == sioBinaryAck {
		i := bytes.IndexByte(rest, '-')
		if i <= 0 {
			return f, fmt.Errorf("parsing frame: binary packet without attachment count")
		}
		if _, err := strconv.Atoi(string(rest[:i])); err != nil {
			return f, fmt.Errorf("parsing frame: attachment count: %w", err)
		}
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			f.NSP = string(rest)
			return f, nil
		}
		f.NSP = string(rest[:i])
		rest = rest[i+1:]
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 0 {
		id, err := strconv.ParseInt(string(rest[:n]), 10, 64)
		if err != nil {
			return f, fmt.Errorf("parsing frame: ack id: %w", err)
		}
		f.AckID = id
		rest = rest[n:]
	}
	f.Data = rest
	return f, nil
}

// eventIs reports whether an EVENT payload ["name",...] names the given event.
// It compares bytes so the hot receive path does not decode JSON.
func eventIs(data []byte, name string) bool {
	// `["` + name + `"` followed by `,` or `]`.
	if len(data) < len(name)+4 || data[0] != '[' || data[1] != '"' {
		return false
	}
	if string(data[2:2+len(name)]) != name || data[2+len(name)] != '"' {
		return false
	}
	c := data[3+len(name)]
	return c == ',' || c == ']'
}

// timeKey is the payload field that carries the publisher's send time.
var timeKey = []byte(`"t":`)

// findStamp returns the integer after the first "t": in b. Payloads are built by
// this tool ({"t":<unix nanos>,"pad":"xxx..."}) and the pad never contains a
// quote, so the first match is the stamp whatever key order the server
// re-encodes the object with.
func findStamp(b []byte) (int64, bool) {
	i := bytes.Index(b, timeKey)
	if i < 0 {
		return 0, false
	}
	return leadingInt(b[i+len(timeKey):])
}

// leadingInt parses the decimal integer at the start of b (spaces allowed
// before it), as in the ack payload [<nanos>,...].
func leadingInt(b []byte) (int64, bool) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 19 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n > 0
}

// appendEmit appends the text frame 42[<ackID>]["name",<args...>]; args are
// already-encoded JSON values. A negative ackID emits without an ack.
func appendEmit(dst []byte, ackID int64, name string, args ...[]byte) []byte {
	dst = append(dst, eioMessage, sioEvent)
	if ackID >= 0 {
		dst = strconv.AppendInt(dst, ackID, 10)
	}
	dst = append(dst, '[')
	dst = strconv.AppendQuote(dst, name)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

// appendStampPayload appends {"t":<nanos>,"pad":"<pad>"}; pad must be plain
// ASCII without quotes or backslashes (see makePad).
func appendStampPayload(dst []byte, nanos int64, pad string) []byte {
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, `,"pad":"`...)
	dst = append(dst, pad...)
	return append(dst, `"}`...)
}

// makePad returns n filler bytes that need no JSON escaping.
func makePad(n int) string {
	if n <= 0 {
		return ""
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}
