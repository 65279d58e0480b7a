// Package parser encodes and decodes Socket.IO v5 packets, the layer that
// rides inside Engine.IO message packets.
//
// A packet is written as
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// and binary values travel as separate Engine.IO binary messages that follow
// the text part, referenced from the JSON by {"_placeholder":true,"num":i}.
// The decoder applies the same validation as the Node reference parser
// (socket.io-parser 4.2.x) so that a client that Node would drop is dropped
// here too.
package parser

import (
	"errors"
	"strconv"
)

// Type is the Socket.IO packet type, the first character of every packet.
type Type byte

// Packet types of Socket.IO protocol v5.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

// String returns the protocol name of the type so logs read like the spec.
func (t Type) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the seven packet types of protocol v5.
func (t Type) Valid() bool { return t <= BinaryAck }

// NoID is the Packet.ID of a packet that carries no acknowledgement id.
const NoID int64 = -1

// MaxID is the largest ack id accepted. JavaScript peers hold ids in a
// float64, so anything above 2^53-1 could not be answered exactly.
const MaxID int64 = 1<<53 - 1

// DefaultMaxAttachments is the Decoder's attachment limit when
// Decoder.MaxAttachments is zero. Each attachment is buffered until the last
// one arrives, so the limit bounds the memory one packet can pin.
const DefaultMaxAttachments = 10

// Packet is one Socket.IO packet with its binary attachments merged back into
// Data.
type Packet struct {
	Type Type
	// Namespace is "/" for the main namespace (an empty string is read as "/"
	// when encoding).
	Namespace string
	// ID is the acknowledgement id, or NoID.
	ID int64
	// Data is the payload as Go values. Decoded packets hold what
	// encoding/json produces with UseNumber (map[string]any, []any, string,
	// json.Number, bool, nil) with attachments as []byte wherever a
	// placeholder stood:
	//   - Connect: nil or map[string]any (the auth object);
	//   - Disconnect: nil;
	//   - ConnectError: map[string]any or string;
	//   - Event, Ack: []any.
	// The decoder reports BinaryEvent and BinaryAck packets as Event and Ack
	// (as Node does): the wire type only says that attachments follow, and
	// Encode picks it again from the []byte values it finds.
	Data any
}

// ErrInvalidPacket is wrapped by every error about malformed input, so
// callers can tell a protocol violation (close the connection) from other
// failures with errors.Is.
var ErrInvalidPacket = errors.New("invalid packet")

// reservedEvents are event names with a meaning of their own in Node's
// EventEmitter and Socket.IO; a client may not emit them.
var reservedEvents = [...]string{
	"connect",
	"connect_error",
	"disconnect",
	"disconnecting",
	"newListener",
	"removeListener",
}

// IsReservedEvent reports whether name is one of the event names a client
// may not emit (connect, connect_error, disconnect, disconnecting,
// newListener, removeListener). The decoder refuses such events, and servers
// should refuse to emit them too.
func IsReservedEvent(name string) bool {
	for _, r := range reservedEvents {
		if name == r {
			return true
		}
	}
	return false
}
