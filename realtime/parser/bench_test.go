package parser

import (
	"encoding/json"
	"testing"
)

func BenchmarkEncodeEvent(b *testing.B) {
	args := []any{"hello world", json.Number("42"), true, map[string]any{"user": "alice", "n": 3}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := EncodeEvent("/chat", 17, "message", args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBinary(b *testing.B) {
	p := &Packet{Type: Event, Namespace: "/", ID: NoID,
		Data: []any{"upload", "name.bin", make([]byte, 1024), map[string]any{"thumb": make([]byte, 64)}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	text := []byte(`2/chat,17["message","hello world",42,true,{"n":3,"user":"alice"}]`)
	var d Decoder
	b.ReportAllocs()
	for b.Loop() {
		if p, err := d.Add(text, false); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	text := []byte(`52-["upload","name.bin",{"_placeholder":true,"num":0},{"thumb":{"_placeholder":true,"num":1}}]`)
	a0, a1 := make([]byte, 1024), make([]byte, 64)
	var d Decoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Add(text, false); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Add(a0, true); err != nil {
			b.Fatal(err)
		}
		if p, err := d.Add(a1, true); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}
