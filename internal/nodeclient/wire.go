package nodeclient

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
)

// binKey marks a binary value in the driver's JSON: {"$bin":"<base64>"}. JSON
// has no bytes type, and the clients must see real Buffers so that they
// send BINARY_EVENT/BINARY_ACK packets.
const binKey = "$bin"

// toWire rewrites a Go value for the driver: every []byte, at any depth in
// slices, arrays and string-keyed maps, becomes {"$bin": base64}. Other values
// are left for encoding/json (a []byte inside a struct is therefore sent as a
// plain base64 string, not as binary).
func toWire(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return map[string]any{binKey: base64.StdEncoding.EncodeToString(x)}
	case json.RawMessage:
		return x
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = toWire(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toWire(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return v
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return toWire(b)
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = toWire(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String || rv.IsNil() {
			return v
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[it.Key().String()] = toWire(it.Value().Interface())
		}
		return out
	}
	return v
}

// fromWire is the inverse of toWire for values decoded by encoding/json:
// {"$bin": base64} objects become []byte. Numbers stay float64.
func fromWire(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = fromWire(x[i])
		}
		return x
	case map[string]any:
		if s, ok := x[binKey].(string); ok && len(x) == 1 {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return b
			}
		}
		for k, e := range x {
			x[k] = fromWire(e)
		}
		return x
	}
	return v
}

// argsFromWire converts a decoded args array; nil stays an empty list so
// callers can index without checking.
func argsFromWire(args []any) []any {
	if args == nil {
		return []any{}
	}
	for i := range args {
		args[i] = fromWire(args[i])
	}
	return args
}
