package redisadapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Bounds of what the decoder accepts from the channels. Other nodes are
// trusted to be peers, not to be well written: a message past a bound is
// dropped (logged), never half applied.
const (
	// MaxMessageBytes bounds one message read from Redis. Node's default
	// maxHttpBufferSize is 1e6, so a broadcast of one client's event is
	// far below; fetchSockets answers of many sockets are the large ones.
	MaxMessageBytes = 16 << 20
	// maxDepth bounds the nesting of arrays and maps in a message.
	maxDepth = 64
)

// errMalformed is wrapped by every decoding error.
var errMalformed = errors.New("malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// decodeMsgpack decodes one msgpack value filling all of b into Go values:
// nil, bool, int64, uint64 (above MaxInt64), float64, string, []byte, []any,
// map[string]any (non-string keys are printed), time.Time (timestamp ext
// -1, and notepack's legacy Date, ext 0 of 8 bytes... see decodeExt).
// Lengths are checked against the bytes left before anything is
// allocated, and nesting is bounded.
func decodeMsgpack(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, malformed("empty payload")
	}
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	v, err := decodeValue(d, r, 0)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, malformed("%d trailing bytes", r.Len())
	}
	return v, nil
}

func decodeValue(d *msgpack.Decoder, r *bytes.Reader, depth int) (any, error) {
	if depth > maxDepth {
		return nil, malformed("nested deeper than %d", maxDepth)
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, malformed("truncated: %v", err)
	}
	wrap := func(v any, err error) (any, error) {
		if err != nil {
			return nil, malformed("truncated or invalid value (code %#x): %v", c, err)
		}
		return v, nil
	}
	switch {
	case c == msgpcode.Nil:
		return wrap(nil, d.DecodeNil())
	case c == msgpcode.True || c == msgpcode.False:
		return wrap(d.DecodeBool())
	case msgpcode.IsFixedNum(c), c >= msgpcode.Int8 && c <= msgpcode.Int64,
		c >= msgpcode.Uint8 && c <= msgpcode.Uint32:
		return wrap(d.DecodeInt64())
	case c == msgpcode.Uint64:
		u, err := d.DecodeUint64()
		if err == nil && u <= math.MaxInt64 {
			return int64(u), nil
		}
		return wrap(u, err)
	case c == msgpcode.Float || c == msgpcode.Double:
		return wrap(d.DecodeFloat64())
	case msgpcode.IsString(c):
		n, err := strLen(r, c)
		if err != nil {
			return nil, err
		}
		if n > r.Len() {
			return nil, malformed("string of %d bytes, %d left", n, r.Len())
		}
		return wrap(d.DecodeString())
	case msgpcode.IsBin(c):
		n, err := d.DecodeBytesLen()
		if err != nil {
			return wrap(nil, err)
		}
		if n < 0 || n > r.Len() {
			return nil, malformed("binary of %d bytes, %d left", n, r.Len())
		}
		buf := make([]byte, n)
		return wrap(buf, d.ReadFull(buf))
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return wrap(nil, err)
		}
		if n < 0 || n > r.Len() { // each element takes a byte at least
			return nil, malformed("array of %d, %d bytes left", n, r.Len())
		}
		out := make([]any, 0, n)
		for range n {
			v, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return wrap(nil, err)
		}
		if n < 0 || 2*n > r.Len() {
			return nil, malformed("map of %d, %d bytes left", n, r.Len())
		}
		out := make(map[string]any, n)
		for range n {
			k, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				key = fmt.Sprint(k)
			}
			out[key] = v
		}
		return out, nil
	case msgpcode.IsExt(c):
		return decodeExt(d, r)
	}
	return nil, malformed("unknown msgpack code %#x", c)
}

// strLen reads the length a string header announces without consuming it.
func strLen(r *bytes.Reader, c byte) (int, error) {
	if msgpcode.IsFixedString(c) {
		return int(c & msgpcode.FixedStrMask), nil
	}
	size := map[byte]int{msgpcode.Str8: 1, msgpcode.Str16: 2, msgpcode.Str32: 4}[c]
	if r.Len() < 1+size {
		return 0, malformed("truncated string header")
	}
	hdr := make([]byte, 1+size)
	pos := r.Size() - int64(r.Len())
	if _, err := r.ReadAt(hdr, pos); err != nil {
		return 0, malformed("truncated string header")
	}
	var n uint64
	for _, b := range hdr[1:] {
		n = n<<8 | uint64(b)
	}
	if n > math.MaxInt32 {
		return 0, malformed("string of %d bytes", n)
	}
	return int(n) + size, nil // the header's own bytes are still unread
}

// decodeExt reads an extension value as notepack writes and reads them: -1
// is the msgpack timestamp (a Date), 0 with 8 bytes is notepack's legacy
// Date (int64 ms), any other 0 is a legacy ArrayBuffer (bytes), and other
// types come out as [type, bytes] like notepack's decoder gives them.
func decodeExt(d *msgpack.Decoder, r *bytes.Reader) (any, error) {
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return nil, malformed("truncated extension: %v", err)
	}
	if n < 0 || n > r.Len() {
		return nil, malformed("extension of %d bytes, %d left", n, r.Len())
	}
	buf := make([]byte, n)
	if err := d.ReadFull(buf); err != nil {
		return nil, malformed("truncated extension: %v", err)
	}
	switch {
	case id == -1:
		switch n {
		case 4:
			return time.Unix(int64(binary.BigEndian.Uint32(buf)), 0).UTC(), nil
		case 8:
			v := binary.BigEndian.Uint64(buf)
			return time.Unix(int64(v&0x3ffffffff), int64(v>>34)).UTC(), nil
		case 12:
			ns := binary.BigEndian.Uint32(buf)
			secs := int64(binary.BigEndian.Uint64(buf[4:]))
			return time.Unix(secs, int64(ns)).UTC(), nil
		}
		return nil, malformed("timestamp of %d bytes", n)
	case id == 0 && n == 8:
		ms := int64(binary.BigEndian.Uint64(buf))
		return time.UnixMilli(ms).UTC(), nil
	case id == 0:
		return buf, nil
	}
	return []any{int64(id), buf}, nil
}

// decodePayload decodes a request or response: JSON when it starts with
// "{" (as Node's adapter decides), msgpack otherwise. JSON numbers stay
// json.Number.
func decodePayload(b []byte) (map[string]any, error) {
	var v any
	if len(b) > 0 && b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, malformed("invalid JSON: %v", err)
		}
		if dec.More() {
			return nil, malformed("trailing data after the JSON object")
		}
	} else {
		var err error
		if v, err = decodeMsgpack(b); err != nil {
			return nil, err
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("not an object but %T", v)
	}
	return m, nil
}

// encodeMsgpack writes v as notepack does: smallest integers, float64 for
// non-integers, bin for bytes, timestamps for times, struct fields by their
// JSON names.
func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(normalize(v, 0)); err != nil {
		return nil, fmt.Errorf("encoding msgpack: %w", err)
	}
	return buf.Bytes(), nil
}

// normalize turns the values an application or a client gave (JSON
// numbers, its own types) into ones msgpack writes as Node would read them.
// []byte, times and the plain JSON types are kept; anything else goes
// through its JSON encoding.
func normalize(v any, depth int) any {
	if depth > maxDepth {
		return nil
	}
	switch x := v.(type) {
	case nil, bool, string, []byte, time.Time,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return x
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e, depth+1)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if dec.Decode(&out) != nil {
		return nil
	}
	return normalize(out, depth+1)
}

// forClients turns decoded values into what a Socket.IO client receives
// as Node sends it: a time becomes its ISO string (Node hands a Date to
// JSON.stringify), bytes stay binary attachments, and an extension
// pair stays a list.
func forClients(v any, depth int) any {
	if depth > maxDepth {
		return nil
	}
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z")
	case []any:
		for i, e := range x {
			x[i] = forClients(e, depth+1)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = forClients(e, depth+1)
		}
		return x
	}
	return v
}

// strings reads a list of strings; ok is false when the value is neither
// missing nor such a list.
func stringList(v any) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			// A numeric room name, as a JS Set may hold: its text.
			switch n := e.(type) {
			case json.Number:
				s = n.String()
			case int64:
				s = strconv.FormatInt(n, 10)
			default:
				return nil, false
			}
		}
		out = append(out, s)
	}
	return out, true
}

// intOf reads an integer field (JSON number or msgpack int).
func intOf(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return 0, false
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	}
	return 0, false
}
