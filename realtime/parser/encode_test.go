package parser

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEncode(t *testing.T) {
	a0, a1, a2 := []byte{1, 2, 3}, []byte{4, 5, 6}, []byte{7}
	tests := []struct {
		name string
		in   Packet
		text string
		atts [][]byte
	}{
		{"connect main", Packet{Type: Connect, Namespace: "/", ID: NoID}, `0`, nil},
		{"connect empty namespace means main", Packet{Type: Connect, ID: NoID}, `0`, nil},
		{"connect reply", Packet{Type: Connect, Namespace: "/", ID: NoID, Data: map[string]any{"sid": "abc"}},
			`0{"sid":"abc"}`, nil},
		{"connect custom", Packet{Type: Connect, Namespace: "/custom", ID: NoID, Data: map[string]any{"sid": "abc"}},
			`0/custom,{"sid":"abc"}`, nil},
		{"connect custom no data", Packet{Type: Connect, Namespace: "/custom", ID: NoID}, `0/custom,`, nil},
		{"disconnect main", Packet{Type: Disconnect, Namespace: "/", ID: NoID}, `1`, nil},
		{"disconnect custom", Packet{Type: Disconnect, Namespace: "/custom", ID: NoID}, `1/custom,`, nil},
		{"event", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"ev", 1, "2"}}, `2["ev",1,"2"]`, nil},
		{"event namespace id", Packet{Type: Event, Namespace: "/chat", ID: 12, Data: []any{"ev"}}, `2/chat,12["ev"]`, nil},
		{"event echo of decoded values", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"message-back", json.Number("1"), "2", map[string]any{"3": []any{true}}}},
			`2["message-back",1,"2",{"3":[true]}]`, nil},
		{"event keys sorted", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"ev", map[string]any{"b": 1, "a": nil, "c": false, "aa": 1.5}}},
			`2["ev",{"a":null,"aa":1.5,"b":1,"c":false}]`, nil},
		{"event numeric name", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{7}}, `2[7]`, nil},
		{"event number formats", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"n", 0.1, 1e21, 1e-7, float32(0.5), int8(-3), uint64(math.MaxUint64), -0.0, 123456789.0}},
			`2["n",0.1,1e+21,1e-7,0.5,-3,18446744073709551615,0,123456789]`, nil},
		{"event string escapes", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"s", "q\"b\\n\n\r\t\b\f\x01<>&\u2028\u2029é\xff"}},
			`2["s","q\"b\\n\n\r\t\b\f\u0001<>&\u2028\u2029é\ufffd"]`, nil},
		{"event raw message passed through", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"r", json.RawMessage(`{"z":1, "a":[2]}`)}},
			`2["r",{"z":1, "a":[2]}]`, nil},
		{"event whole payload raw", Packet{Type: Event, Namespace: "/", ID: 3,
			Data: json.RawMessage(`["pre","encoded"]`)},
			`23["pre","encoded"]`, nil},
		{"event struct through encoding/json", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"s", struct {
				A string `json:"a"`
				B []int
			}{"<x>", []int{1}}}},
			`2["s",{"a":"<x>","B":[1]}]`, nil},
		{"event time through encoding/json", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"t", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
			`2["t","2024-01-02T03:04:05Z"]`, nil},
		{"event nil containers", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"x", []any(nil), map[string]any(nil), json.RawMessage(nil)}},
			`2["x",null,null,null]`, nil},
		{"ack", Packet{Type: Ack, Namespace: "/", ID: 456, Data: []any{json.Number("1"), "2"}}, `3456[1,"2"]`, nil},
		{"ack nil data", Packet{Type: Ack, Namespace: "/x", ID: 0}, `3/x,0[]`, nil},
		{"connect error", Packet{Type: ConnectError, Namespace: "/random", ID: NoID,
			Data: map[string]any{"message": "Invalid namespace"}},
			`4/random,{"message":"Invalid namespace"}`, nil},
		{"connect error string", Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: "nope"}, `4"nope"`, nil},
		{"connect error with data", Packet{Type: ConnectError, Namespace: "/", ID: NoID,
			Data: map[string]any{"message": "refused", "data": map[string]any{"code": 7}}},
			`4{"data":{"code":7},"message":"refused"}`, nil},
		{"binary event conformance", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"message-back", a0, a1}},
			`52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{a0, a1}},
		{"binary ack conformance", Packet{Type: Ack, Namespace: "/", ID: 789, Data: []any{a0, a1}},
			`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{a0, a1}},
		{"binary type requested without binary data", Packet{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: []any{"x"}},
			`2["x"]`, nil},
		{"binary ack type requested without data", Packet{Type: BinaryAck, Namespace: "/", ID: 1}, `31[]`, nil},
		{"binary nested order of appearance", Packet{Type: BinaryEvent, Namespace: "/chat", ID: 4,
			Data: []any{"up", map[string]any{"z": a2, "a": []any{a0, map[string]any{"k": a1}}}}},
			`53-/chat,4["up",{"a":[{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1}}],"z":{"_placeholder":true,"num":2}}]`,
			[][]byte{a0, a1, a2}},
		{"binary empty attachment", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"e", []byte{}}},
			`51-["e",{"_placeholder":true,"num":0}]`, [][]byte{{}}},
		{"bytes in connect are base64", Packet{Type: Connect, Namespace: "/", ID: NoID,
			Data: map[string]any{"k": []byte{1, 2, 3}}},
			`0{"k":"AQID"}`, nil},
		{"bytes inside a raw message are not searched", Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"r", json.RawMessage(`"AQID"`)}},
			`2["r","AQID"]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, atts, err := Encode(&tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(text) != tt.text {
				t.Fatalf("text\n got %s\nwant %s", text, tt.text)
			}
			if !reflect.DeepEqual(atts, tt.atts) {
				t.Fatalf("attachments = %v, want %v", atts, tt.atts)
			}
			// Whatever we encode, our decoder takes.
			if _, err := decodeAll(text, atts); err != nil {
				t.Fatalf("decoding our own output %s: %v", text, err)
			}
		})
	}
}

func TestEncodeInvalid(t *testing.T) {
	self := []any{"x", nil}
	self[1] = self
	tests := []struct {
		name string
		in   Packet
	}{
		{"unknown type", Packet{Type: 7, Namespace: "/", ID: NoID}},
		{"namespace without slash", Packet{Type: Connect, Namespace: "chat", ID: NoID}},
		{"namespace with comma", Packet{Type: Connect, Namespace: "/a,b", ID: NoID}},
		{"id on connect", Packet{Type: Connect, Namespace: "/", ID: 1}},
		{"id on disconnect", Packet{Type: Disconnect, Namespace: "/", ID: 1}},
		{"id on connect error", Packet{Type: ConnectError, Namespace: "/", ID: 1, Data: "x"}},
		{"negative id", Packet{Type: Event, Namespace: "/", ID: -2, Data: []any{"x"}}},
		{"id too large", Packet{Type: Event, Namespace: "/", ID: MaxID + 1, Data: []any{"x"}}},
		{"ack without id", Packet{Type: Ack, Namespace: "/", ID: NoID, Data: []any{}}},
		{"ack object", Packet{Type: Ack, Namespace: "/", ID: 1, Data: map[string]any{}}},
		{"ack raw null", Packet{Type: Ack, Namespace: "/", ID: 1, Data: json.RawMessage(`null`)}},
		{"disconnect with data", Packet{Type: Disconnect, Namespace: "/", ID: NoID, Data: map[string]any{}}},
		{"connect with array", Packet{Type: Connect, Namespace: "/", ID: NoID, Data: []any{}}},
		{"connect with raw null", Packet{Type: Connect, Namespace: "/", ID: NoID, Data: json.RawMessage(`null`)}},
		{"connect error nil", Packet{Type: ConnectError, Namespace: "/", ID: NoID}},
		{"connect error array", Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: []any{"x"}}},
		{"event nil", Packet{Type: Event, Namespace: "/", ID: NoID}},
		{"event empty", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{}}},
		{"event object", Packet{Type: Event, Namespace: "/", ID: NoID, Data: map[string]any{}}},
		{"event raw object", Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`{}`)}},
		{"event reserved name", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"disconnect"}}},
		{"event bool name", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{true}}},
		{"event nil name", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{nil}}},
		{"event NaN", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", math.NaN()}}},
		{"event Inf", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", math.Inf(1)}}},
		{"event invalid json.Number", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", json.Number("1x")}}},
		{"event invalid raw", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", json.RawMessage(`{`)}}},
		{"event unsupported type", Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", make(chan int)}}},
		{"event cycle", Packet{Type: Event, Namespace: "/", ID: NoID, Data: self}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, _, err := Encode(&tt.in)
			if err == nil {
				t.Fatalf("Encode = %s, want error", text)
			}
			if !strings.HasPrefix(err.Error(), "encoding packet: ") {
				t.Fatalf("error %q lacks the expected prefix", err)
			}
		})
	}
	if _, _, err := Encode(nil); !errors.Is(err, ErrInvalidPacket) {
		t.Fatalf("Encode(nil): err = %v", err)
	}
}

func TestEncodeEvent(t *testing.T) {
	a0, a1 := []byte{1}, []byte{2, 3}
	tests := []struct {
		name string
		nsp  string
		id   int64
		ev   string
		args []any
	}{
		{"no args", "/", NoID, "ping", nil},
		{"empty namespace", "", NoID, "ping", nil},
		{"args", "/", NoID, "message-back", []any{json.Number("1"), "2", map[string]any{"3": []any{true}}}},
		{"namespace and id", "/chat", 99, "ev", []any{1.5, nil, "x\ny"}},
		{"binary", "/", NoID, "file", []any{a0, map[string]any{"more": []any{a1}}}},
		{"binary with id and namespace", "/up", 5, "file", []any{"name", a0}},
		{"raw arg", "/", NoID, "r", []any{json.RawMessage(`[1,2]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, atts, err := EncodeEvent(tt.nsp, tt.id, tt.ev, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			wantText, wantAtts, err := Encode(&Packet{Type: Event, Namespace: tt.nsp, ID: tt.id,
				Data: append([]any{tt.ev}, tt.args...)})
			if err != nil {
				t.Fatal(err)
			}
			if string(text) != string(wantText) || !reflect.DeepEqual(atts, wantAtts) {
				t.Fatalf("EncodeEvent = %s %v\nEncode      = %s %v", text, atts, wantText, wantAtts)
			}
		})
	}
	for _, bad := range []struct {
		nsp  string
		id   int64
		name string
		args []any
	}{
		{"/", NoID, "connect", nil},
		{"/", NoID, "removeListener", nil},
		{"nsp", NoID, "x", nil},
		{"/", -5, "x", nil},
		{"/", NoID, "x", []any{math.NaN()}},
	} {
		if text, _, err := EncodeEvent(bad.nsp, bad.id, bad.name, bad.args); err == nil {
			t.Errorf("EncodeEvent(%q, %d, %q, %v) = %s, want error", bad.nsp, bad.id, bad.name, bad.args, text)
		}
	}
}

// TestEncodeStringsMatchEncodingJSON checks the hand-written string writer
// against encoding/json on awkward input: both must decode to the same
// string.
func TestEncodeStringsMatchEncodingJSON(t *testing.T) {
	inputs := []string{"", "plain", "\x00\x1f\x7f", "\"\\/", "日本語", "\xed\xa0\x80", "a\xc3", "\u2028x\u2029",
		"<script>&amp;</script>", "\U0001F600", string([]byte{0xff, 0xfe, 'a'})}
	for _, s := range inputs {
		ours := appendString(nil, s)
		var fromOurs, fromStd string
		if err := json.Unmarshal(ours, &fromOurs); err != nil {
			t.Fatalf("our encoding of %q is not JSON: %s: %v", s, ours, err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &fromStd); err != nil {
			t.Fatal(err)
		}
		if fromOurs != fromStd {
			t.Errorf("%q: ours decodes to %q, encoding/json to %q", s, fromOurs, fromStd)
		}
	}
}

func TestValidNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-12", "1.5", "0.0", "1e5", "1E+5", "1e-05", "-0.5e10"} {
		if !validNumber(s) {
			t.Errorf("validNumber(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.5.5", "NaN", "1 "} {
		if validNumber(s) {
			t.Errorf("validNumber(%q) = true", s)
		}
	}
}

// decodeAll feeds text and attachments through a fresh Decoder.
func decodeAll(text []byte, atts [][]byte) (*Packet, error) {
	var d Decoder
	p, err := d.Add(text, false)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if p != nil {
			return nil, errors.New("packet complete before its attachments")
		}
		if p, err = d.Add(a, true); err != nil {
			return nil, err
		}
	}
	if p == nil {
		return nil, errors.New("packet incomplete after its attachments")
	}
	return p, nil
}
