package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Decoder reassembles Socket.IO packets from the Engine.IO messages of one
// connection: a text message, then as many binary messages as it announced.
// It keeps state between calls, so it is not safe for concurrent use; give
// each connection its own.
type Decoder struct {
	// MaxAttachments is the largest attachment count a packet may announce.
	// Default (0): DefaultMaxAttachments.
	MaxAttachments int
	// MaxAttachmentBytes bounds the total size of one packet's attachments:
	// the attachment that goes over it is an error. Default (0): no bound
	// beyond what the transport puts on each message.
	MaxAttachmentBytes int64

	pending *Packet  // binary packet waiting for attachments, or nil
	want    int      // attachments pending needs
	size    int64    // bytes of the attachments received so far
	atts    [][]byte // attachments received so far
	slots   []slot   // where the attachments go in pending.Data
}

// slot is one placeholder position: an index of arr, or a key of obj.
type slot struct {
	arr []any
	obj map[string]any
	key string
	idx int
	num int
}

// Add feeds one Engine.IO message: text (binary false) or an attachment
// (binary true). It returns the packet once it is complete, nil and nil
// while attachments are still due, or an error wrapping ErrInvalidPacket
// after which the connection must be closed (the Decoder is reset).
//
// Add keeps binary slices in the returned packet without copying them; the
// caller must not reuse them. Text is not retained.
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, decodeError("binary message while no binary packet is pending")
		}
		d.size += int64(len(data))
		if limit := d.MaxAttachmentBytes; limit > 0 && d.size > limit {
			size := d.size
			d.Reset()
			return nil, decodeError("attachments of %d bytes or more, above the bound of %d", size, limit)
		}
		d.atts = append(d.atts, data)
		if len(d.atts) < d.want {
			return nil, nil
		}
		p := d.pending
		for _, s := range d.slots {
			if s.obj != nil {
				s.obj[s.key] = d.atts[s.num]
			} else {
				s.arr[s.idx] = d.atts[s.num]
			}
		}
		d.Reset()
		return p, nil
	}
	if d.pending != nil {
		missing := d.want - len(d.atts)
		d.Reset()
		return nil, decodeError("text message while %d attachment(s) are pending", missing)
	}
	limit := d.MaxAttachments
	if limit <= 0 {
		limit = DefaultMaxAttachments
	}
	p, n, err := parse(data, limit)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return p, nil
	}
	if err := d.collect(p.Data, n); err != nil {
		d.Reset()
		return nil, err
	}
	d.pending = p
	d.want = n
	return nil, nil
}

// Reset drops a partly received packet, for instance when the connection
// changes hands, and releases what it referenced.
func (d *Decoder) Reset() {
	d.pending = nil
	d.want = 0
	d.size = 0
	clear(d.atts)
	d.atts = d.atts[:0]
	clear(d.slots)
	d.slots = d.slots[:0]
}

// Waiting reports whether the Decoder holds a binary packet that still
// waits for attachments.
func (d *Decoder) Waiting() bool { return d.pending != nil }

// Decode parses one text packet. Packets that announce attachments are
// refused: they need a Decoder.
func Decode(text []byte) (*Packet, error) {
	if len(text) > 0 && (text[0] == '0'+byte(BinaryEvent) || text[0] == '0'+byte(BinaryAck)) {
		return nil, decodeError("packet announces attachments")
	}
	p, _, err := parse(text, DefaultMaxAttachments)
	return p, err
}

func decodeError(format string, args ...any) error {
	return fmt.Errorf("decoding packet: %w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

// collect validates the placeholders in v and records where they are, so
// that the attachments can be put in place without walking the data again.
func (d *Decoder) collect(v any, n int) error {
	switch v := v.(type) {
	case []any:
		for i, x := range v {
			num, ok, err := placeholder(x, n)
			if err != nil {
				return err
			}
			if ok {
				d.slots = append(d.slots, slot{arr: v, idx: i, num: num})
				continue
			}
			if err := d.collect(x, n); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, x := range v {
			num, ok, err := placeholder(x, n)
			if err != nil {
				return err
			}
			if ok {
				d.slots = append(d.slots, slot{obj: v, key: k, num: num})
				continue
			}
			if err := d.collect(x, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// placeholder reports whether v is an attachment placeholder and which
// attachment it names. An object whose _placeholder is true must be exactly
// {"_placeholder":true,"num":<0..n-1>}; one whose _placeholder is anything
// else is ordinary data, as in Node.
func placeholder(v any, n int) (num int, ok bool, err error) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return 0, false, nil
	}
	if flag, _ := m["_placeholder"].(bool); !flag {
		return 0, false, nil
	}
	raw, has := m["num"].(json.Number)
	if !has || len(m) != 2 {
		return 0, false, decodeError("malformed attachment placeholder")
	}
	i, perr := strconv.ParseInt(string(raw), 10, 64)
	if perr != nil || i < 0 || i >= int64(n) {
		return 0, false, decodeError("attachment placeholder num %q out of range 0..%d", string(raw), n-1)
	}
	return int(i), true, nil
}

// parse reads one text packet and returns it with its attachment count.
func parse(s []byte, maxAttachments int) (*Packet, int, error) {
	if len(s) == 0 {
		return nil, 0, decodeError("empty packet")
	}
	if s[0] < '0' || s[0] > '0'+byte(BinaryAck) {
		return nil, 0, decodeError("unknown packet type %q", s[0])
	}
	t := Type(s[0] - '0')
	i := 1

	n := 0
	if t == BinaryEvent || t == BinaryAck {
		start := i
		for i < len(s) && isDigit(s[i]) {
			n = n*10 + int(s[i]-'0')
			if n > maxAttachments {
				return nil, 0, decodeError("more than %d attachments", maxAttachments)
			}
			i++
		}
		if i == start || i == len(s) || s[i] != '-' {
			return nil, 0, decodeError("malformed attachment count")
		}
		if n < 1 {
			return nil, 0, decodeError("attachment count 0")
		}
		i++
	}

	nsp := "/"
	if i < len(s) && s[i] == '/' {
		if j := bytes.IndexByte(s[i:], ','); j >= 0 {
			nsp = string(s[i : i+j])
			i += j + 1
		} else {
			nsp = string(s[i:])
			i = len(s)
		}
	}

	id := NoID
	if i < len(s) && isDigit(s[i]) {
		var v int64
		for i < len(s) && isDigit(s[i]) {
			v = v*10 + int64(s[i]-'0')
			if v > MaxID {
				return nil, 0, decodeError("ack id above %d", MaxID)
			}
			i++
		}
		id = v
	}

	var data any
	payload := s[i:]
	if len(payload) > 0 {
		var err error
		if data, err = parseJSON(payload); err != nil {
			return nil, 0, decodeError("payload is not JSON: %v", err)
		}
	}

	if err := validate(t, id, data, len(payload) > 0); err != nil {
		return nil, 0, err
	}
	return &Packet{Type: plainType(t), Namespace: nsp, ID: id, Data: data}, n, nil
}

// validate applies socket.io-parser's rules for which payload each type
// may carry, plus the id rules: only events and acks carry one, acks must.
func validate(t Type, id int64, data any, present bool) error {
	switch t {
	case Connect, Disconnect, ConnectError:
		if id != NoID {
			return decodeError("ack id on a %s packet", t)
		}
	case Ack, BinaryAck:
		if id == NoID {
			return decodeError("%s without ack id", t)
		}
	}
	switch t {
	case Connect:
		if _, ok := data.(map[string]any); present && !ok {
			return decodeError("CONNECT payload must be an object")
		}
	case Disconnect:
		if present {
			return decodeError("DISCONNECT carries no payload")
		}
	case ConnectError:
		switch data.(type) {
		case string, map[string]any:
		default:
			return decodeError("CONNECT_ERROR payload must be a string or an object")
		}
	case Event, BinaryEvent:
		a, ok := data.([]any)
		if !ok || len(a) == 0 {
			return decodeError("%s payload must be a non-empty array", t)
		}
		switch name := a[0].(type) {
		case json.Number:
		case string:
			if IsReservedEvent(name) {
				return decodeError("reserved event name %q", name)
			}
		default:
			return decodeError("event name must be a string or a number")
		}
	case Ack, BinaryAck:
		if _, ok := data.([]any); !ok {
			return decodeError("%s payload must be an array", t)
		}
	}
	return nil
}
