package parser

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// n is shorthand for a decoded JSON number.
func n(s string) json.Number { return json.Number(s) }

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Packet
	}{
		{"connect main", `0`, Packet{Type: Connect, Namespace: "/", ID: NoID}},
		{"connect main with auth", `0{"token":"123"}`,
			Packet{Type: Connect, Namespace: "/", ID: NoID, Data: map[string]any{"token": "123"}}},
		{"connect custom", `0/custom,`, Packet{Type: Connect, Namespace: "/custom", ID: NoID}},
		{"connect custom with auth", `0/custom,{"token":"abc"}`,
			Packet{Type: Connect, Namespace: "/custom", ID: NoID, Data: map[string]any{"token": "abc"}}},
		{"connect namespace to end of input", `0/random`, Packet{Type: Connect, Namespace: "/random", ID: NoID}},
		{"connect empty object", `0{}`, Packet{Type: Connect, Namespace: "/", ID: NoID, Data: map[string]any{}}},
		{"connect root namespace written out", `0/,`, Packet{Type: Connect, Namespace: "/", ID: NoID}},
		{"disconnect main", `1`, Packet{Type: Disconnect, Namespace: "/", ID: NoID}},
		{"disconnect custom", `1/custom,`, Packet{Type: Disconnect, Namespace: "/custom", ID: NoID}},
		{"disconnect custom without comma", `1/custom`, Packet{Type: Disconnect, Namespace: "/custom", ID: NoID}},
		{"event", `2["message",1,"2",{"3":[true]}]`, Packet{Type: Event, Namespace: "/", ID: NoID,
			Data: []any{"message", n("1"), "2", map[string]any{"3": []any{true}}}}},
		{"event with id", `2456["message-with-ack",1,"2",{"3":[false]}]`, Packet{Type: Event, Namespace: "/", ID: 456,
			Data: []any{"message-with-ack", n("1"), "2", map[string]any{"3": []any{false}}}}},
		{"event on namespace with id", `2/chat,12["ev"]`,
			Packet{Type: Event, Namespace: "/chat", ID: 12, Data: []any{"ev"}}},
		{"event with numeric name", `2[42,"x"]`,
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{n("42"), "x"}}},
		{"event with id 0", `20["a"]`, Packet{Type: Event, Namespace: "/", ID: 0, Data: []any{"a"}}},
		{"event with leading zeros in id", `2007["a"]`, Packet{Type: Event, Namespace: "/", ID: 7, Data: []any{"a"}}},
		{"event with largest id", `29007199254740991["a"]`,
			Packet{Type: Event, Namespace: "/", ID: MaxID, Data: []any{"a"}}},
		{"event with whitespace around JSON", "2 [\"a\"] \n",
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"a"}}},
		{"event name close to reserved", `2["connected"]`,
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"connected"}}},
		{"event big and fractional numbers kept exact", `2["a",12345678901234567890,1.50,-0]`,
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"a", n("12345678901234567890"), n("1.50"), n("-0")}}},
		{"event with unicode namespace", `2/ñ,["a"]`,
			Packet{Type: Event, Namespace: "/ñ", ID: NoID, Data: []any{"a"}}},
		{"event with placeholder-like data stays data", `2["a",{"_placeholder":true,"num":0}]`,
			Packet{Type: Event, Namespace: "/", ID: NoID,
				Data: []any{"a", map[string]any{"_placeholder": true, "num": n("0")}}}},
		{"ack", `3456[1,"2",{"3":[false]}]`, Packet{Type: Ack, Namespace: "/", ID: 456,
			Data: []any{n("1"), "2", map[string]any{"3": []any{false}}}}},
		{"ack empty", `3/custom,1[]`, Packet{Type: Ack, Namespace: "/custom", ID: 1, Data: []any{}}},
		{"connect error object", `4{"message":"Invalid namespace"}`,
			Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: map[string]any{"message": "Invalid namespace"}}},
		{"connect error namespace", `4/random,{"message":"Invalid namespace"}`,
			Packet{Type: ConnectError, Namespace: "/random", ID: NoID, Data: map[string]any{"message": "Invalid namespace"}}},
		{"connect error string", `4"not authorized"`,
			Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: "not authorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Decode(%q)\n got %#v\nwant %#v", tt.in, *got, tt.want)
			}
			// The Decoder must agree with Decode for text-only packets.
			var d Decoder
			got2, err := d.Add([]byte(tt.in), false)
			if err != nil || !reflect.DeepEqual(got2, got) {
				t.Fatalf("Decoder.Add(%q) = %#v, %v; want %#v", tt.in, got2, err, got)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"unknown type digit", `7`},
		{"unknown type letter", `abc`},
		{"unknown type 9", `9["a"]`},
		{"engine.io message not stripped", `4abc`},
		{"connect payload array", `0["a"]`},
		{"connect payload string", `0"a"`},
		{"connect payload null", `0null`},
		{"connect payload number", `0/x,1`},
		{"connect with id", `01{}`},
		{"disconnect with payload", `1{}`},
		{"disconnect with null", `1null`},
		{"disconnect with id", `1/a,1`},
		{"event payload object", `2{}`},
		{"event no payload", `2`},
		{"event namespace no payload", `2/chat,`},
		{"event empty array", `2[]`},
		{"event name null", `2[null]`},
		{"event name bool", `2[true]`},
		{"event name object", `2[{}]`},
		{"event name array", `2[["a"]]`},
		{"event reserved connect", `2["connect"]`},
		{"event reserved connect_error", `2["connect_error"]`},
		{"event reserved disconnect", `2["disconnect"]`},
		{"event reserved disconnecting", `2["disconnecting"]`},
		{"event reserved newListener", `2["newListener"]`},
		{"event reserved removeListener", `2["removeListener"]`},
		{"event bad ack id", `2abc["message"]`},
		{"event ack id above 2^53-1", `29007199254740992["a"]`},
		{"event ack id overflowing int64", `299999999999999999999999["a"]`},
		{"event invalid JSON", `2["a"`},
		{"event trailing garbage", `2["a"]x`},
		{"event two values", `2["a"] ["b"]`},
		{"event whitespace only payload", `2 `},
		{"event comma without namespace", `2,["a"]`},
		{"event namespace swallows payload", `2/chat["a"]`},
		{"ack without id", `3[]`},
		{"ack payload object", `31{}`},
		{"ack payload missing", `31`},
		{"ack payload string", `31"a"`},
		{"connect error missing payload", `4`},
		{"connect error array", `4["a"]`},
		{"connect error number", `41`},
		{"connect error null", `4null`},
		{"connect error with id", `4/x,1{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%q) = %#v, want error", tt.in, p)
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("Decode(%q) error %v does not wrap ErrInvalidPacket", tt.in, err)
			}
			if !strings.HasPrefix(err.Error(), "decoding packet: invalid packet: ") {
				t.Fatalf("error %q lacks the expected prefix", err)
			}
			var d Decoder
			if p, err := d.Add([]byte(tt.in), false); err == nil {
				t.Fatalf("Decoder.Add(%q) = %#v, want error", tt.in, p)
			}
		})
	}
}

// TestDecodeRefusesBinaryTypes checks that Decode, which has no way to take
// attachments, refuses packets that announce some.
func TestDecodeRefusesBinaryTypes(t *testing.T) {
	for _, in := range []string{`51-["a",{"_placeholder":true,"num":0}]`, `61-1[{"_placeholder":true,"num":0}]`} {
		if p, err := Decode([]byte(in)); err == nil || !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("Decode(%q) = %#v, %v; want ErrInvalidPacket", in, p, err)
		}
	}
}

func TestDecoderBinary(t *testing.T) {
	a0, a1, a2 := []byte{1, 2, 3}, []byte{4, 5, 6}, []byte{}
	tests := []struct {
		name string
		text string
		atts [][]byte
		want Packet
	}{
		{"conformance binary event", `52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			[][]byte{a0, a1},
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"message", a0, a1}}},
		{"conformance binary ack", `62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			[][]byte{a0, a1},
			Packet{Type: Ack, Namespace: "/", ID: 789, Data: []any{a0, a1}}},
		{"binary event with id", `52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			[][]byte{a0, a1},
			Packet{Type: Event, Namespace: "/", ID: 789, Data: []any{"message-with-ack", a0, a1}}},
		{"nested in objects and arrays, namespace", `53-/chat,["up",{"file":{"_placeholder":true,"num":2},"parts":[{"_placeholder":true,"num":0},{"k":[{"_placeholder":true,"num":1}]}]}]`,
			[][]byte{a0, a1, a2},
			Packet{Type: Event, Namespace: "/chat", ID: NoID, Data: []any{"up", map[string]any{
				"file":  a2,
				"parts": []any{a0, map[string]any{"k": []any{a1}}},
			}}}},
		{"same attachment twice, one unused", `52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]`,
			[][]byte{a0, a1},
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", a1, a1}}},
		{"placeholder false is data", `51-["x",{"_placeholder":false,"num":0},{"_placeholder":true,"num":0}]`,
			[][]byte{a0},
			Packet{Type: Event, Namespace: "/", ID: NoID,
				Data: []any{"x", map[string]any{"_placeholder": false, "num": n("0")}, a0}}},
		{"ten attachments", `510-["x",` + strings.Repeat(`{"_placeholder":true,"num":0},`, 9) + `{"_placeholder":true,"num":9}]`,
			[][]byte{a0, a0, a0, a0, a0, a0, a0, a0, a0, a1},
			Packet{Type: Event, Namespace: "/", ID: NoID, Data: []any{"x", a0, a0, a0, a0, a0, a0, a0, a0, a0, a1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			p, err := d.Add([]byte(tt.text), false)
			if p != nil || err != nil {
				t.Fatalf("Add(text) = %#v, %v; want nil, nil", p, err)
			}
			for i, a := range tt.atts {
				p, err = d.Add(a, true)
				if err != nil {
					t.Fatalf("Add(attachment %d): %v", i, err)
				}
				if last := i == len(tt.atts)-1; (p != nil) != last {
					t.Fatalf("Add(attachment %d) returned packet %v, want packet only after the last", i, p)
				}
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Fatalf("got %#v\nwant %#v", *p, tt.want)
			}
			if d.Waiting() {
				t.Fatal("decoder still waiting after the last attachment")
			}
			// The decoder is ready for the next packet.
			if p, err := d.Add([]byte(`2["next"]`), false); err != nil || p == nil {
				t.Fatalf("next packet: %v, %v", p, err)
			}
		})
	}
}

func TestDecoderBinaryInvalid(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"zero attachments", `50-["x"]`},
		{"no count", `5-["x",{"_placeholder":true,"num":0}]`},
		{"no dash", `51["x",{"_placeholder":true,"num":0}]`},
		{"count not a number", `5a-["x"]`},
		{"count only", `51`},
		{"count above default max", `511-["x"]`},
		{"huge count", `5999999999999999999999-["x"]`},
		{"num out of range", `51-["x",{"_placeholder":true,"num":1}]`},
		{"num negative", `51-["x",{"_placeholder":true,"num":-1}]`},
		{"num fractional", `51-["x",{"_placeholder":true,"num":0.5}]`},
		{"num exponent", `51-["x",{"_placeholder":true,"num":0e0}]`},
		{"num string", `51-["x",{"_placeholder":true,"num":"0"}]`},
		{"num missing", `51-["x",{"_placeholder":true}]`},
		{"extra key", `51-["x",{"_placeholder":true,"num":0,"x":1}]`},
		{"nested bad placeholder", `51-["x",{"a":[{"_placeholder":true,"num":5}]}]`},
		{"binary ack without id", `61-[{"_placeholder":true,"num":0}]`},
		{"binary event object", `51-{"a":{"_placeholder":true,"num":0}}`},
		{"binary event reserved", `51-["disconnect",{"_placeholder":true,"num":0}]`},
		{"binary event no payload", `51-`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			p, err := d.Add([]byte(tt.text), false)
			if err == nil || !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("Add(%q) = %#v, %v; want ErrInvalidPacket", tt.text, p, err)
			}
			if d.Waiting() {
				t.Fatal("decoder waits for attachments after an error")
			}
		})
	}
}

func TestDecoderSequence(t *testing.T) {
	t.Run("binary when not waiting", func(t *testing.T) {
		var d Decoder
		if _, err := d.Add([]byte{1}, true); !errors.Is(err, ErrInvalidPacket) {
			t.Fatalf("err = %v, want ErrInvalidPacket", err)
		}
	})
	t.Run("binary after complete packet", func(t *testing.T) {
		var d Decoder
		if _, err := d.Add([]byte(`51-["x",{"_placeholder":true,"num":0}]`), false); err != nil {
			t.Fatal(err)
		}
		if p, err := d.Add([]byte{1}, true); err != nil || p == nil {
			t.Fatalf("attachment: %v, %v", p, err)
		}
		if _, err := d.Add([]byte{2}, true); !errors.Is(err, ErrInvalidPacket) {
			t.Fatalf("extra attachment: err = %v, want ErrInvalidPacket", err)
		}
	})
	t.Run("text while waiting", func(t *testing.T) {
		var d Decoder
		if _, err := d.Add([]byte(`52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Add([]byte{1}, true); err != nil {
			t.Fatal(err)
		}
		_, err := d.Add([]byte(`2["x"]`), false)
		if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), "1 attachment") {
			t.Fatalf("err = %v, want ErrInvalidPacket naming 1 pending attachment", err)
		}
		if d.Waiting() {
			t.Fatal("still waiting after error")
		}
	})
	t.Run("reset drops pending packet", func(t *testing.T) {
		var d Decoder
		if _, err := d.Add([]byte(`51-["x",{"_placeholder":true,"num":0}]`), false); err != nil {
			t.Fatal(err)
		}
		if !d.Waiting() {
			t.Fatal("not waiting after a binary header")
		}
		d.Reset()
		if d.Waiting() {
			t.Fatal("waiting after Reset")
		}
		if p, err := d.Add([]byte(`2["y"]`), false); err != nil || p == nil {
			t.Fatalf("after Reset: %v, %v", p, err)
		}
	})
	t.Run("max attachments configurable", func(t *testing.T) {
		d := Decoder{MaxAttachments: 2}
		if _, err := d.Add([]byte(`53-["x"]`), false); !errors.Is(err, ErrInvalidPacket) {
			t.Fatalf("3 attachments with max 2: err = %v", err)
		}
		d = Decoder{MaxAttachments: 20}
		text := `511-["x"` + strings.Repeat(`,{"_placeholder":true,"num":3}`, 1) + `]`
		if p, err := d.Add([]byte(text), false); p != nil || err != nil {
			t.Fatalf("11 attachments with max 20: %v, %v", p, err)
		}
		var p *Packet
		for i := range 11 {
			var err error
			if p, err = d.Add([]byte{byte(i)}, true); err != nil {
				t.Fatal(err)
			}
		}
		if p == nil || !reflect.DeepEqual(p.Data, []any{"x", []byte{3}}) {
			t.Fatalf("got %#v", p)
		}
	})
	t.Run("attachment bytes bounded", func(t *testing.T) {
		d := Decoder{MaxAttachmentBytes: 10}
		header := []byte(`53-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]`)
		// At the bound, twice: the count starts again with each packet.
		for range 2 {
			if _, err := d.Add(header, false); err != nil {
				t.Fatal(err)
			}
			for i, a := range [][]byte{make([]byte, 4), make([]byte, 6), {}} {
				p, err := d.Add(a, true)
				if err != nil || (p != nil) != (i == 2) {
					t.Fatalf("attachment %d at the bound: %v, %v", i, p, err)
				}
			}
		}
		if _, err := d.Add(header, false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Add(make([]byte, 4), true); err != nil {
			t.Fatal(err)
		}
		_, err := d.Add(make([]byte, 7), true)
		if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), "above the bound of 10") {
			t.Fatalf("over the bound: err = %v", err)
		}
		if d.Waiting() {
			t.Fatal("still waiting after the error")
		}
		if p, err := d.Add([]byte(`2["y"]`), false); err != nil || p == nil {
			t.Fatalf("after the error: %v, %v", p, err)
		}
	})
}

func TestTypeString(t *testing.T) {
	want := []string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK", "Type(7)"}
	for i, w := range want {
		if got := Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
}

func TestIsReservedEvent(t *testing.T) {
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = false", name)
		}
	}
	for _, name := range []string{"", "message", "Connect", "connection", "error", "newlistener"} {
		if IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = true", name)
		}
	}
}
