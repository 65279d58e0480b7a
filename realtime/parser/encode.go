package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting the encoder follows, so a []any or map that
// contains itself fails with an error instead of exhausting the stack.
// encoding/json stops cycles at a similar depth.
const maxDepth = 1000

// errTooDeep is returned for data nested deeper than maxDepth.
var errTooDeep = errors.New("data nested too deeply (cycle?)")

// Encode writes p in the Socket.IO v5 text form and returns it with the
// binary attachments that must follow it as separate Engine.IO binary
// messages (attachments is nil when there are none).
//
// For Event, Ack, BinaryEvent and BinaryAck every []byte reachable through
// []any and map[string]any (or a top-level []byte) becomes an attachment in
// order of appearance, and the wire type is BinaryEvent/BinaryAck exactly
// when there is at least one; callers need not pick the binary types
// themselves. Map keys are written sorted, so equal data encodes to equal
// bytes. json.RawMessage values are copied unchanged (after a validity
// check) and never searched for binary data; other types go through
// encoding/json.
//
// Encode refuses packets that the decoder on the other side would refuse:
// an ID on a packet type that cannot carry one, an Ack without ID, a
// Disconnect with data, a reserved event name, data of the wrong shape where
// the shape is visible from the Go type. A nil Ack payload is sent as [].
func Encode(p *Packet) (text []byte, attachments [][]byte, err error) {
	if p == nil {
		return nil, nil, encodeError("nil packet")
	}
	t := p.Type
	nsp := p.Namespace
	if nsp == "" {
		nsp = "/"
	}
	if err := checkHeader(t, nsp, p.ID); err != nil {
		return nil, nil, err
	}
	data := p.Data
	if err := checkData(t, data); err != nil {
		return nil, nil, err
	}
	n := 0
	switch t {
	case Ack, BinaryAck:
		if data == nil {
			data = emptyArray
		}
		fallthrough
	case Event, BinaryEvent:
		n = countBinary(data, 0)
		t = plainType(t)
		if n > 0 {
			t += BinaryEvent - Event
		}
	}
	e := encoder{buf: make([]byte, 0, 64+len(nsp)+32*n), binary: n > 0}
	if n > 0 {
		e.atts = make([][]byte, 0, n)
	}
	e.buf = appendHeader(e.buf, t, n, nsp, p.ID)
	if data != nil {
		if err := e.value(data, 0); err != nil {
			return nil, nil, fmt.Errorf("encoding packet: %w", err)
		}
	}
	return e.buf, e.atts, nil
}

// EncodeEvent encodes the event name with args on namespace nsp, with ack
// id (or NoID). It produces the same bytes as Encode with Data =
// append([]any{name}, args...) without building that slice, because
// emitting events is the hot path of a server.
func EncodeEvent(nsp string, id int64, name string, args []any) (text []byte, attachments [][]byte, err error) {
	if nsp == "" {
		nsp = "/"
	}
	if err := checkHeader(Event, nsp, id); err != nil {
		return nil, nil, err
	}
	if IsReservedEvent(name) {
		return nil, nil, encodeError("reserved event name " + strconv.Quote(name))
	}
	n := 0
	size := 16 + len(nsp) + len(name)
	for _, a := range args {
		n += countBinary(a, 1)
		switch a := a.(type) {
		case string:
			size += len(a) + 3
		case json.RawMessage:
			size += len(a) + 1
		default:
			size += 16
		}
	}
	t := Event
	e := encoder{binary: n > 0}
	if n > 0 {
		t = BinaryEvent
		e.atts = make([][]byte, 0, n)
		size += 30 * n
	}
	e.buf = make([]byte, 0, size)
	e.buf = appendHeader(e.buf, t, n, nsp, id)
	e.buf = append(e.buf, '[')
	e.buf = appendString(e.buf, name)
	for _, a := range args {
		e.buf = append(e.buf, ',')
		if err := e.value(a, 1); err != nil {
			return nil, nil, fmt.Errorf("encoding packet: %w", err)
		}
	}
	e.buf = append(e.buf, ']')
	return e.buf, e.atts, nil
}

// emptyArray is the payload of an Ack sent without values.
var emptyArray = json.RawMessage("[]")

func encodeError(detail string) error {
	return fmt.Errorf("encoding packet: %w: %s", ErrInvalidPacket, detail)
}

// plainType maps BinaryEvent/BinaryAck to Event/Ack and leaves other types.
func plainType(t Type) Type {
	if t == BinaryEvent || t == BinaryAck {
		return t - (BinaryEvent - Event)
	}
	return t
}

// checkHeader validates what goes before the payload.
func checkHeader(t Type, nsp string, id int64) error {
	if !t.Valid() {
		return encodeError("unknown type " + t.String())
	}
	if nsp[0] != '/' {
		return encodeError("namespace " + strconv.Quote(nsp) + " does not start with /")
	}
	if strings.IndexByte(nsp, ',') >= 0 {
		return encodeError("namespace " + strconv.Quote(nsp) + " contains a comma")
	}
	switch {
	case id == NoID:
		if t == Ack || t == BinaryAck {
			return encodeError("ack without id")
		}
	case id < 0 || id > MaxID:
		return encodeError("ack id " + strconv.FormatInt(id, 10) + " out of range")
	case t != Event && t != Ack && t != BinaryEvent && t != BinaryAck:
		return encodeError("ack id on a " + t.String() + " packet")
	}
	return nil
}

// Shapes of JSON values as far as they can be told from a Go value.
const (
	shapeUnknown = iota
	shapeNull
	shapeObject
	shapeArray
	shapeString
	shapeScalar
)

// shapeOf tells the JSON shape of v for the types whose shape is certain.
func shapeOf(v any) int {
	switch v := v.(type) {
	case nil:
		return shapeNull
	case map[string]any:
		return shapeObject
	case []any:
		return shapeArray
	case string:
		return shapeString
	case bool, json.Number, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return shapeScalar
	case json.RawMessage:
		s := bytes.TrimLeft(v, " \t\r\n")
		if len(s) == 0 {
			return shapeNull // encodes as null, like encoding/json
		}
		switch s[0] {
		case '{':
			return shapeObject
		case '[':
			return shapeArray
		case '"':
			return shapeString
		case 'n':
			return shapeNull
		}
		return shapeScalar
	}
	return shapeUnknown
}

// checkData refuses payloads that the receiving decoder would refuse.
func checkData(t Type, data any) error {
	s := shapeOf(data)
	if s == shapeUnknown {
		return nil
	}
	switch t {
	case Connect:
		if data != nil && s != shapeObject {
			return encodeError("CONNECT data must be absent or an object")
		}
	case Disconnect:
		if data != nil {
			return encodeError("DISCONNECT carries no data")
		}
	case ConnectError:
		if s != shapeObject && s != shapeString {
			return encodeError("CONNECT_ERROR data must be an object or a string")
		}
	case Event, BinaryEvent:
		if s != shapeArray {
			return encodeError("EVENT data must be an array")
		}
		if a, ok := data.([]any); ok {
			if len(a) == 0 {
				return encodeError("EVENT data must not be empty")
			}
			switch shapeOf(a[0]) {
			case shapeString:
				if name := a[0].(string); IsReservedEvent(name) {
					return encodeError("reserved event name " + strconv.Quote(name))
				}
			case shapeScalar:
				if _, ok := a[0].(bool); ok {
					return encodeError("event name must be a string or a number")
				}
			case shapeUnknown:
			default:
				return encodeError("event name must be a string or a number")
			}
		}
	case Ack, BinaryAck:
		if data != nil && s != shapeArray {
			return encodeError("ACK data must be an array")
		}
	}
	return nil
}

// appendHeader writes <type>[<n>-][<nsp>,][<id>].
func appendHeader(b []byte, t Type, n int, nsp string, id int64) []byte {
	b = append(b, '0'+byte(t))
	if t == BinaryEvent || t == BinaryAck {
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, '-')
	}
	if nsp != "/" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	if id >= 0 {
		b = strconv.AppendInt(b, id, 10)
	}
	return b
}

// countBinary counts the []byte values that the encoder will turn into
// attachments. It follows exactly the containers encoder.value follows.
func countBinary(v any, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch v := v.(type) {
	case []byte:
		return 1
	case []any:
		n := 0
		for _, x := range v {
			n += countBinary(x, depth+1)
		}
		return n
	case map[string]any:
		n := 0
		for _, x := range v {
			n += countBinary(x, depth+1)
		}
		return n
	}
	return 0
}

// encoder writes JSON for the value types a Socket.IO payload usually holds
// without reflection, and replaces []byte by placeholders when binary is set.
type encoder struct {
	buf    []byte
	atts   [][]byte
	binary bool
}

func (e *encoder) value(v any, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendString(e.buf, x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case json.Number:
		if x == "" {
			x = "0" // as encoding/json does
		}
		if !validNumber(string(x)) {
			return fmt.Errorf("invalid json.Number %q", string(x))
		}
		e.buf = append(e.buf, x...)
	case float64:
		return e.float(x, 64)
	case float32:
		return e.float(float64(x), 32)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case json.RawMessage:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if !json.Valid(x) {
			return errors.New("invalid json.RawMessage")
		}
		e.buf = append(e.buf, x...)
	case []byte:
		if !e.binary {
			return e.fallback(x)
		}
		e.buf = append(e.buf, `{"_placeholder":true,"num":`...)
		e.buf = strconv.AppendInt(e.buf, int64(len(e.atts)), 10)
		e.buf = append(e.buf, '}')
		e.atts = append(e.atts, x)
	case []any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i, item := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(item, depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.object(x, depth)
	default:
		return e.fallback(x)
	}
	return nil
}

// object writes m with its keys sorted.
func (e *encoder) object(m map[string]any, depth int) error {
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, k)
		e.buf = append(e.buf, ':')
		if err := e.value(m[k], depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// float writes f the way encoding/json (and, for the common range,
// JavaScript) prints numbers: plain decimals, exponent form only for very
// small or very large magnitudes.
func (e *encoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("unsupported number %v", f)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 {
		if bits == 64 && (a < 1e-6 || a >= 1e21) ||
			bits == 32 && (float32(a) < 1e-6 || float32(a) >= 1e21) {
			format = 'e'
		}
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, bits)
	if format == 'e' {
		// strconv writes e-07; JSON readers accept it, but e-7 is shorter
		// and what JavaScript prints.
		b := e.buf[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			e.buf = e.buf[:len(e.buf)-1]
		}
	}
	return nil
}

// fallback hands values of other types to encoding/json, without the HTML
// escaping that only matters for JSON embedded in HTML.
func (e *encoder) fallback(v any) error {
	buf := bytes.NewBuffer(e.buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	out := buf.Bytes()
	e.buf = out[:len(out)-1] // Encode ends with a newline
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped, as encoding/json does; HTML characters are
// left alone.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
