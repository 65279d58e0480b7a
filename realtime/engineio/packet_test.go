package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func decodeAll(body []byte) ([]packet, error) {
	return decodeAllMax(body, DefaultMaxPayloadPackets)
}

func decodeAllMax(body []byte, maxPackets int) ([]packet, error) {
	var out []packet
	err := decodePayload(body, maxPackets, func(p packet) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []packet
		wantErr bool
	}{
		{"one message", "4hello", []packet{{typ: '4', data: []byte("hello")}}, false},
		{"empty message", "4", []packet{{typ: '4', data: []byte{}}}, false},
		{"several", "4a\x1e3\x1e4b", []packet{{typ: '4', data: []byte("a")}, {typ: '3', data: []byte{}}, {typ: '4', data: []byte("b")}}, false},
		{"binary", "bAQIDBA==", []packet{{typ: '4', data: []byte{1, 2, 3, 4}, binary: true}}, false},
		{"empty binary", "b", []packet{{typ: '4', data: []byte{}, binary: true}}, false},
		{"close", "1", []packet{{typ: '1', data: []byte{}}}, false},
		{"utf8", "4é€😀", []packet{{typ: '4', data: []byte("é€😀")}}, false},
		{"empty body", "", nil, true},
		{"trailing separator", "4a\x1e", []packet{{typ: '4', data: []byte("a")}}, true},
		{"unknown type", "7x", nil, true},
		{"letter type", "abc", nil, true},
		{"bad base64", "b@@", nil, true},
		{"unpadded base64", "bAQIDBA", nil, true},
		{"invalid UTF-8", "4\xff", nil, true},
		{"invalid UTF-8 in a later packet", "4a\x1e4\xc3", nil, true},
		{"latin1 byte", "4caf\xe9", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAll([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errMalformedPacket) {
				t.Errorf("error %v does not wrap errMalformedPacket", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDecodePayloadPacketLimit: a payload with more packets than the
// limit is refused before any packet is decoded or handed over.
func TestDecodePayloadPacketLimit(t *testing.T) {
	tests := []struct {
		body    string
		max     int
		wantErr error
		want    int
	}{
		{"4a", 1, nil, 1},
		{"4a\x1e4b", 1, errTooManyPackets, 0},
		{"4a\x1e4b\x1e4c", 3, nil, 3},
		{"4a\x1e4b\x1e4c\x1e4d", 3, errTooManyPackets, 0},
		{strings.Repeat("4\x1e", 10_000) + "4", DefaultMaxPayloadPackets, errTooManyPackets, 0},
		{strings.Repeat("4\x1e", 9_999) + "4", DefaultMaxPayloadPackets, nil, 10_000},
		// Over the limit is refused even when a later record is malformed.
		{"4a\x1e4b\x1e9", 2, errTooManyPackets, 0},
		{"4a\x1e9", 2, errMalformedPacket, 1},
	}
	for _, tt := range tests {
		calls := 0
		err := decodePayload([]byte(tt.body), tt.max, func(packet) error { calls++; return nil })
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) || calls != tt.want {
			t.Errorf("%d records, limit %d: %d packets handed over, err %v; want %d, %v",
				strings.Count(tt.body, "\x1e")+1, tt.max, calls, err, tt.want, tt.wantErr)
		}
	}
}

// A handler appending to its data must not overwrite the next packet.
func TestDecodedDataIsCapped(t *testing.T) {
	got, err := decodeAll([]byte("4ab\x1e4cd"))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].data, 'X', 'Y', 'Z')
	if string(got[1].data) != "cd" {
		t.Errorf("second packet overwritten: %q", got[1].data)
	}
}

func TestDecodeFrame(t *testing.T) {
	if p, err := decodeFrame(2, []byte{0, 1}); err != nil || !p.binary || p.typ != typeMessage || !bytes.Equal(p.data, []byte{0, 1}) {
		t.Errorf("binary frame: %v %v", p, err)
	}
	if p, err := decodeFrame(1, []byte("4x")); err != nil || p.binary || string(p.data) != "x" {
		t.Errorf("text frame: %v %v", p, err)
	}
	for _, bad := range []string{"", "x", "9", "b"} {
		if _, err := decodeFrame(1, []byte(bad)); err == nil {
			t.Errorf("text frame %q accepted", bad)
		}
	}
}

func TestAppendPayload(t *testing.T) {
	pkts := []outPacket{
		{typ: typeMessage, msg: TextMessageString("hi")},
		{typ: typePing},
		{typ: typeMessage, msg: BinaryMessage([]byte{1, 2, 3, 4})},
		{typ: typeMessage, msg: TextMessage(nil)},
		{typ: typeClose},
	}
	got := appendPayload(nil, pkts)
	want := "4hi\x1e2\x1ebAQIDBA==\x1e4\x1e1"
	if string(got) != want {
		t.Errorf("payload %q, want %q", got, want)
	}
	if n := payloadSize(pkts); n != len(want) {
		t.Errorf("payloadSize %d, want %d", n, len(want))
	}
}

func TestMessageData(t *testing.T) {
	src := []byte("abc")
	m := TextMessage(src)
	src[0] = 'X'
	if string(m.Data()) != "abc" || m.IsBinary() {
		t.Errorf("text message %q (data must be copied)", m.Data())
	}
	b := BinaryMessage([]byte{7})
	if !b.IsBinary() || !bytes.Equal(b.Data(), []byte{7}) {
		t.Errorf("binary message %v", b.Data())
	}
}

// encodeRecords re-encodes decoded client packets as a polling payload.
func encodeRecords(pkts []packet) []byte {
	var b []byte
	for i, p := range pkts {
		if i > 0 {
			b = append(b, recordSeparator)
		}
		if p.binary {
			b = append(b, binaryPrefix)
			b = base64.StdEncoding.AppendEncode(b, p.data)
			continue
		}
		b = append(b, p.typ)
		b = append(b, p.data...)
	}
	return b
}

// FuzzDecodePayload checks that decoding never panics and that whatever
// decodes re-encodes to a payload that decodes to the same packets.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1e4b\x1ebAQIDBA==", "3", "1", "", "abc", "b", "4\x1e\x1e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := decodeAll(body)
		if err != nil {
			if !errors.Is(err, errMalformedPacket) && !errors.Is(err, errTooManyPackets) {
				t.Fatalf("error %v wraps neither errMalformedPacket nor errTooManyPackets", err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatal("payload that is not UTF-8 accepted")
		}
		if len(pkts) == 0 {
			t.Fatal("no packet and no error")
		}
		again, err := decodeAll(encodeRecords(pkts))
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(pkts) {
			t.Fatalf("round trip changed packets: %v -> %v", pkts, again)
		}
		for _, p := range pkts {
			if p.typ == typeMessage && !p.binary && bytes.IndexByte(p.data, recordSeparator) >= 0 {
				t.Fatal("separator inside a text packet")
			}
		}
	})
}

// manyRecords joins n records made by rec into one payload.
func manyRecords(n int, rec func(i int) string) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, recordSeparator)
		}
		b = append(b, rec(i)...)
	}
	return b
}

func samePackets(a, b []packet) bool {
	return slices.EqualFunc(a, b, func(p, q packet) bool {
		return p.typ == q.typ && p.binary == q.binary && bytes.Equal(p.data, q.data)
	})
}

// FuzzDecodePayloadMany feeds the decoder payloads of many packets against
// a packet limit (limit+1, so from 1 to 65536): a payload over the limit,
// or not UTF-8, is refused before a single packet is handed over; any
// other decodes exactly as without a limit, never handing over more
// packets than the limit. Seeds in testdata/fuzz/FuzzDecodePayloadMany
// sit at and just over the limits, the default one included.
func FuzzDecodePayloadMany(f *testing.F) {
	f.Add(manyRecords(100, func(i int) string { return "4" + strconv.Itoa(i) }), uint16(99))
	f.Add(manyRecords(101, func(i int) string { return "4" + strconv.Itoa(i) }), uint16(99))
	f.Add(manyRecords(64, func(int) string { return "bAQIDBA==" }), uint16(63))
	f.Add(manyRecords(64, func(int) string { return "" }), uint16(1000))
	f.Fuzz(func(t *testing.T, body []byte, limit uint16) {
		maxPackets := int(limit) + 1
		records := bytes.Count(body, []byte{recordSeparator}) + 1
		var got []packet
		err := decodePayload(body, maxPackets, func(p packet) error {
			got = append(got, p)
			if len(got) > maxPackets {
				t.Fatalf("packet %d handed over, limit %d", len(got), maxPackets)
			}
			return nil
		})
		switch {
		case !utf8.Valid(body):
			if !errors.Is(err, errMalformedPacket) || len(got) != 0 {
				t.Fatalf("payload not UTF-8: %d packets, err %v", len(got), err)
			}
		case records > maxPackets:
			if !errors.Is(err, errTooManyPackets) || len(got) != 0 {
				t.Fatalf("%d records, limit %d: %d packets, err %v", records, maxPackets, len(got), err)
			}
		default:
			want, wantErr := decodeAllMax(body, math.MaxInt)
			if (err == nil) != (wantErr == nil) || !samePackets(got, want) {
				t.Fatalf("with limit %d: %v, %v; without: %v, %v", maxPackets, got, err, want, wantErr)
			}
			if err == nil && len(got) != records {
				t.Fatalf("%d records decoded to %d packets", records, len(got))
			}
		}
	})
}

func benchPackets() []outPacket {
	var pkts []outPacket
	for i := 0; i < 16; i++ {
		pkts = append(pkts, outPacket{typ: typeMessage, msg: TextMessageString(`2["chat",{"user":"someone","text":"` + strings.Repeat("x", 80) + `"}]`)})
	}
	pkts = append(pkts, outPacket{typ: typeMessage, msg: BinaryMessage(bytes.Repeat([]byte{1, 2, 3}, 100))})
	return pkts
}

func BenchmarkEncodePayload(b *testing.B) {
	pkts := benchPackets()
	b.SetBytes(int64(payloadSize(pkts)))
	b.ReportAllocs()
	for b.Loop() {
		_ = appendPayload(make([]byte, 0, payloadSize(pkts)), pkts)
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	body := appendPayload(nil, benchPackets())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		_ = decodePayload(body, DefaultMaxPayloadPackets, func(packet) error { n++; return nil })
	}
}

// payloadSize is the exact length appendPayload will produce, so the
// response is built with one allocation.
func payloadSize(pkts []outPacket) int {
	n := 0
	for i, p := range pkts {
		if i > 0 {
			n++
		}
		n += encodedSize(p)
	}
	return n
}
