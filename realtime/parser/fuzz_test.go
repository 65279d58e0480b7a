package parser

import (
	"bytes"
	"reflect"
	"testing"
)

// roundTripInputs are valid wire packets (text, then attachments). Each
// must survive decode -> encode -> decode unchanged, and the ones marked
// canonical must also re-encode to the very same bytes.
var roundTripInputs = []struct {
	text      string
	atts      [][]byte
	canonical bool
}{
	{`0`, nil, true},
	{`0{"token":"123"}`, nil, true},
	{`0/custom,`, nil, true},
	{`0/custom,{"token":"abc"}`, nil, true},
	{`0/random`, nil, false},
	{`1`, nil, true},
	{`1/custom,`, nil, true},
	{`1/custom`, nil, false},
	{`2["message",1,"2",{"3":[true]}]`, nil, true},
	{`2456["message-with-ack",1,"2",{"3":[false]}]`, nil, true},
	{`2/chat,12["ev",{"b":1,"a":[null,1.5e300,"\u0000é"]}]`, nil, false},
	{`2[12,"numeric name"]`, nil, true},
	{`2 [ "spaces" ] `, nil, false},
	{`3456[1,"2",{"3":[false]}]`, nil, true},
	{`3/x,0[]`, nil, true},
	{`4{"message":"Invalid namespace"}`, nil, true},
	{`4/random,{"message":"Invalid namespace"}`, nil, true},
	{`4"string reason"`, nil, true},
	{`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{{1, 2, 3}, {4, 5, 6}}, true},
	{`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{{1, 2, 3}, {4, 5, 6}}, true},
	{`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, [][]byte{{1}, {2}}, true},
	{`53-/n,["x",{"a":{"_placeholder":true,"num":0},"b":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]}]`,
		[][]byte{{1}, {}, {3}}, true},
	// Attachments out of order, reused or unused are legal on the wire but
	// re-encode in order of appearance.
	{`52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`, [][]byte{{1}, {2}}, false},
	{`52-["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]`, [][]byte{{1}, {2}}, false},
	{`51-["x"]`, [][]byte{{1}}, false},
}

func TestRoundTrip(t *testing.T) {
	for _, in := range roundTripInputs {
		t.Run(in.text, func(t *testing.T) {
			p, err := decodeAll([]byte(in.text), in.atts)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			text, atts, err := Encode(p)
			if err != nil {
				t.Fatalf("encode %#v: %v", p, err)
			}
			if in.canonical && (string(text) != in.text || !reflect.DeepEqual(atts, in.atts)) {
				t.Fatalf("re-encoded to %s %v, want %s %v", text, atts, in.text, in.atts)
			}
			p2, err := decodeAll(text, atts)
			if err != nil {
				t.Fatalf("decoding re-encoded %s: %v", text, err)
			}
			if !reflect.DeepEqual(p, p2) {
				t.Fatalf("round trip changed the packet\nfirst  %#v\nsecond %#v", p, p2)
			}
		})
	}
}

// FuzzDecode feeds a text message and up to count attachments (alternating
// a0 and a1) through a Decoder. It must never panic, and whatever decodes
// must encode, and decode again to an equal packet.
func FuzzDecode(f *testing.F) {
	for _, in := range roundTripInputs {
		var a0, a1 []byte
		if len(in.atts) > 0 {
			a0 = in.atts[0]
		}
		if len(in.atts) > 1 {
			a1 = in.atts[1]
		}
		f.Add([]byte(in.text), a0, a1, uint8(len(in.atts)))
	}
	f.Fuzz(func(t *testing.T, text, a0, a1 []byte, count uint8) {
		var d Decoder
		p, err := d.Add(text, false)
		for i := 0; err == nil && p == nil && i < int(count%16); i++ {
			a := a0
			if i%2 == 1 {
				a = a1
			}
			p, err = d.Add(a, true)
		}
		if len(text) > 0 && text[0] != '5' && text[0] != '6' {
			// Decode and the Decoder agree on text-only packets.
			q, qerr := Decode(text)
			if (qerr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(p, q)) {
				t.Fatalf("Decode(%q) = %#v, %v; Decoder gave %#v, %v", text, q, qerr, p, err)
			}
		}
		if err != nil || p == nil {
			return
		}
		if p.Type != Connect && p.Type != Disconnect && p.Type != Event && p.Type != Ack && p.Type != ConnectError {
			t.Fatalf("decoded packet has wire-only type %v", p.Type)
		}
		text2, atts2, err := Encode(p)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) = %v (packet %#v)", text, err, p)
		}
		p2, err := decodeAll(text2, atts2)
		if err != nil {
			t.Fatalf("decoding re-encoded %q (from %q): %v", text2, text, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip of %q via %q changed the packet\nfirst  %#v\nsecond %#v", text, text2, p, p2)
		}
		text3, _, err := Encode(p2)
		if err != nil || !bytes.Equal(text2, text3) {
			t.Fatalf("encoding is not stable: %q then %q (%v)", text2, text3, err)
		}
	})
}
