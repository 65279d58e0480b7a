package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Engine.IO v4 packet types: one ASCII digit before the data.
const (
	typeOpen    byte = '0'
	typeClose   byte = '1'
	typePing    byte = '2'
	typePong    byte = '3'
	typeMessage byte = '4'
	typeUpgrade byte = '5'
	typeNoop    byte = '6'
)

// recordSeparator joins packets in a polling payload (Engine.IO v4).
const recordSeparator byte = 0x1e

// binaryPrefix starts a base64 binary message in a polling payload.
const binaryPrefix byte = 'b'

// errMalformedPacket is the cause of every decoding failure; a client
// sending one has its session closed with reason "parse error".
var errMalformedPacket = errors.New("malformed packet")

// errTooManyPackets: a polling payload over Options.MaxPayloadPackets.
var errTooManyPackets = errors.New("too many packets")

// packet is one decoded client packet. data never includes the type byte
// and has its capacity capped so that a handler appending to it cannot
// overwrite the next packet of the same payload.
type packet struct {
	typ    byte
	data   []byte
	binary bool
}

// decodePacket decodes one polling record: "<type><data>" or "b<base64>".
func decodePacket(rec []byte) (packet, error) {
	if len(rec) == 0 {
		return packet{}, fmt.Errorf("decoding packet: empty record: %w", errMalformedPacket)
	}
	if rec[0] == binaryPrefix {
		enc := rec[1:]
		dst := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, err := base64.StdEncoding.Decode(dst, enc)
		if err != nil {
			return packet{}, fmt.Errorf("decoding binary packet: %w: %v", errMalformedPacket, err)
		}
		return packet{typ: typeMessage, data: dst[:n:n], binary: true}, nil
	}
	if rec[0] < typeOpen || rec[0] > typeNoop {
		return packet{}, fmt.Errorf("decoding packet: unknown type %q: %w", rec[0], errMalformedPacket)
	}
	return packet{typ: rec[0], data: rec[1:len(rec):len(rec)]}, nil
}

// decodePayload calls fn for each packet of a polling payload, in order.
// A payload that is not UTF-8 or holds more than maxPackets packets is
// refused before fn is called (errMalformedPacket, errTooManyPackets).
// Otherwise it stops at the first malformed record (packets before it
// have been handed to fn, as Node does) or at the first error fn returns.
func decodePayload(body []byte, maxPackets int, fn func(packet) error) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("decoding payload: invalid UTF-8: %w", errMalformedPacket)
	}
	if !atMostRecords(body, maxPackets) {
		return fmt.Errorf("decoding payload: more than %d packets: %w", maxPackets, errTooManyPackets)
	}
	for {
		rec := body
		i := bytes.IndexByte(body, recordSeparator)
		if i >= 0 {
			rec = body[:i]
		}
		p, err := decodePacket(rec)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		if i < 0 {
			return nil
		}
		body = body[i+1:]
	}
}

// atMostRecords reports whether a payload holds at most max records; it
// looks at no more than max separators.
func atMostRecords(body []byte, max int) bool {
	for n := 1; ; n++ {
		if n > max {
			return false
		}
		i := bytes.IndexByte(body, recordSeparator)
		if i < 0 {
			return true
		}
		body = body[i+1:]
	}
}

// decodeFrame decodes one websocket message: a text frame is
// "<type><data>", a binary frame is the raw bytes of a message packet.
func decodeFrame(messageType int, p []byte) (packet, error) {
	if messageType == websocket.BinaryMessage {
		return packet{typ: typeMessage, data: p, binary: true}, nil
	}
	if len(p) == 0 || p[0] < typeOpen || p[0] > typeNoop {
		return packet{}, fmt.Errorf("decoding frame: %w", errMalformedPacket)
	}
	return packet{typ: p[0], data: p[1:len(p):len(p)]}, nil
}

// outPacket is one queued outgoing packet: a message, or a control packet
// without data (ping, noop, close) when msg is nil.
type outPacket struct {
	typ byte
	msg *Message
}

// appendPayload appends the polling encoding of pkts to dst.
func appendPayload(dst []byte, pkts []outPacket) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		switch {
		case p.msg == nil:
			dst = append(dst, p.typ)
		case p.msg.binary:
			dst = append(dst, binaryPrefix)
			dst = base64.StdEncoding.AppendEncode(dst, p.msg.frame)
		default:
			dst = append(dst, p.msg.frame...)
		}
	}
	return dst
}

// encodedSize is the length of one packet's record in a polling payload.
func encodedSize(p outPacket) int {
	switch {
	case p.msg == nil:
		return 1
	case p.msg.binary:
		return 1 + base64.StdEncoding.EncodedLen(len(p.msg.frame))
	default:
		return len(p.msg.frame)
	}
}

// Message is one Engine.IO message packet, immutable once built and safe
// to share between sessions: a broadcast builds one Message and sends the
// same pointer to every member, so the bytes are encoded once.
type Message struct {
	// frame is the websocket payload: '4'+text for a text message (also
	// its polling record), the raw bytes for a binary one.
	frame  []byte
	binary bool
	// prepared is non-nil for a shared message: its websocket frame is
	// built once, on first use, and written as is to every session.
	prepared *preparedFrame
}

type preparedFrame struct {
	once sync.Once
	pm   *websocket.PreparedMessage
	err  error

	wireOnce sync.Once
	wire     []byte // the frame as a direct write sends it (direct.go)
}

// TextMessage builds a text message. The websocket frame "4"+data is built
// here, once. data is copied.
func TextMessage(data []byte) *Message {
	frame := make([]byte, 1+len(data))
	frame[0] = typeMessage
	copy(frame[1:], data)
	return &Message{frame: frame}
}

// TextMessageString is TextMessage for a string.
func TextMessageString(data string) *Message {
	frame := make([]byte, 1+len(data))
	frame[0] = typeMessage
	copy(frame[1:], data)
	return &Message{frame: frame}
}

// BinaryMessage builds a binary message. It takes ownership of data: the
// caller must not modify it afterwards.
func BinaryMessage(data []byte) *Message {
	return &Message{frame: data, binary: true}
}

// Shared returns a copy of m (same bytes) marked as sent to many
// sessions: its websocket frame is prepared once (gorilla PreparedMessage)
// and the same frame bytes are written to every websocket session. For a
// message sent to one session the plain m is cheaper.
func (m *Message) Shared() *Message {
	if m.prepared != nil {
		return m
	}
	return &Message{frame: m.frame, binary: m.binary, prepared: &preparedFrame{}}
}

// Data returns the message payload without the packet type. The caller
// must not modify it.
func (m *Message) Data() []byte {
	if m.binary {
		return m.frame
	}
	return m.frame[1:]
}

// IsBinary reports whether m is a binary message.
func (m *Message) IsBinary() bool { return m.binary }

func (m *Message) wsType() int {
	if m.binary {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

// writeTo writes m as one websocket frame.
func (m *Message) writeTo(c *websocket.Conn) error {
	if m.prepared == nil {
		return c.WriteMessage(m.wsType(), m.frame)
	}
	pf := m.prepared
	pf.once.Do(func() {
		pf.pm, pf.err = websocket.NewPreparedMessage(m.wsType(), m.frame)
	})
	if pf.err != nil {
		return fmt.Errorf("preparing frame: %w", pf.err)
	}
	return c.WritePreparedMessage(pf.pm)
}
