package main

import (
	"testing"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    frame
		wantErr bool
	}{
		{name: "open", in: `0{"sid":"x"}`, want: frame{EIO: eioOpen, NSP: "/", AckID: noAck, Data: []byte(`{"sid":"x"}`)}},
		{name: "ping", in: "2", want: frame{EIO: eioPing, NSP: "/", AckID: noAck, Data: []byte{}}},
		{name: "connect reply", in: `40{"sid":"abc"}`, want: frame{EIO: eioMessage, SIO: sioConnect, NSP: "/", AckID: noAck, Data: []byte(`{"sid":"abc"}`)}},
		{name: "event", in: `42["msg",{"t":1}]`, want: frame{EIO: eioMessage, SIO: sioEvent, NSP: "/", AckID: noAck, Data: []byte(`["msg",{"t":1}]`)}},
		{name: "event with ack id", in: `4212["echo",5]`, want: frame{EIO: eioMessage, SIO: sioEvent, NSP: "/", AckID: 12, Data: []byte(`["echo",5]`)}},
		{name: "ack", in: `43456[1,"2"]`, want: frame{EIO: eioMessage, SIO: sioAck, NSP: "/", AckID: 456, Data: []byte(`[1,"2"]`)}},
		{name: "namespace and ack", in: `43/chat,7[]`, want: frame{EIO: eioMessage, SIO: sioAck, NSP: "/chat", AckID: 7, Data: []byte(`[]`)}},
		{name: "namespace to end", in: `41/custom`, want: frame{EIO: eioMessage, SIO: sioDisconnect, NSP: "/custom", AckID: noAck}},
		{name: "binary event", in: `452-["m",{"_placeholder":true,"num":0}]`, want: frame{EIO: eioMessage, SIO: sioBinaryEvent, NSP: "/", AckID: noAck, Data: []byte(`["m",{"_placeholder":true,"num":0}]`)}},
		{name: "binary ack", in: `461-9[{"_placeholder":true,"num":0}]`, want: frame{EIO: eioMessage, SIO: sioBinaryAck, NSP: "/", AckID: 9, Data: []byte(`[{"_placeholder":true,"num":0}]`)}},
		{name: "empty", in: "", wantErr: true},
		{name: "unknown eio type", in: "9", wantErr: true},
		{name: "unknown sio type", in: "49[]", wantErr: true},
		{name: "empty message", in: "4", wantErr: true},
		{name: "binary without count", in: `45["m"]`, wantErr: true},
		{name: "ack id overflow", in: `4399999999999999999999[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFrame(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.EIO != tt.want.EIO || got.SIO != tt.want.SIO || got.NSP != tt.want.NSP ||
				got.AckID != tt.want.AckID || string(got.Data) != string(tt.want.Data) {
				t.Errorf("parseFrame(%q) = %+v (data %q), want %+v (data %q)", tt.in, got, got.Data, tt.want, tt.want.Data)
			}
		})
	}
}

func TestEventIs(t *testing.T) {
	tests := []struct {
		data string
		name string
		want bool
	}{
		{`["msg",{}]`, "msg", true},
		{`["msg"]`, "msg", true},
		{`["msgs",1]`, "msg", false},
		{`["ms"]`, "msg", false},
		{`{"msg":1}`, "msg", false},
		{`[]`, "msg", false},
		{``, "msg", false},
	}
	for _, tt := range tests {
		if got := eventIs([]byte(tt.data), tt.name); got != tt.want {
			t.Errorf("eventIs(%q, %q) = %v, want %v", tt.data, tt.name, got, tt.want)
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	const nanos = int64(1767225600123456789)
	pad := makePad(100)
	payload := appendStampPayload(nil, nanos, pad)
	frameBytes := appendEmit(nil, noAck, "publish", []byte(`"r1"`), payload)
	want := `42["publish","r1",{"t":1767225600123456789,"pad":"` + pad + `"}]`
	if string(frameBytes) != want {
		t.Fatalf("appendEmit = %s, want %s", frameBytes, want)
	}
	// A server may re-encode the object with sorted keys; the stamp must still be found.
	for _, delivered := range []string{
		`42["msg",{"t":1767225600123456789,"pad":"` + pad + `"}]`,
		`42["msg",{"pad":"` + pad + `","t":1767225600123456789}]`,
	} {
		f, err := parseFrame([]byte(delivered))
		if err != nil {
			t.Fatal(err)
		}
		if !eventIs(f.Data, "msg") {
			t.Fatalf("eventIs(%s) = false", f.Data)
		}
		got, ok := findStamp(f.Data)
		if !ok || got != nanos {
			t.Errorf("findStamp(%s) = %d, %v; want %d", delivered, got, ok, nanos)
		}
	}
	if _, ok := findStamp([]byte(`["msg",{"pad":"x"}]`)); ok {
		t.Error("findStamp found a stamp in a payload without one")
	}
}

func TestAppendEmitWithAck(t *testing.T) {
	got := appendEmit(nil, 42, "echo", []byte("123"), []byte(`"ab"`))
	if want := `4242["echo",123,"ab"]`; string(got) != want {
		t.Fatalf("appendEmit = %s, want %s", got, want)
	}
	f, err := parseFrame(got)
	if err != nil {
		t.Fatal(err)
	}
	if f.AckID != 42 || !eventIs(f.Data, "echo") {
		t.Errorf("round trip: ack id %d, data %s", f.AckID, f.Data)
	}
	// The ack the server sends back repeats the args.
	ack, err := parseFrame([]byte(`4342[123,"ab"]`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := leadingInt(ack.Data[1:]); !ok || v != 123 {
		t.Errorf("leadingInt(ack) = %d, %v", v, ok)
	}
}

func TestMakePadNeedsNoEscaping(t *testing.T) {
	pad := makePad(500)
	if len(pad) != 500 {
		t.Fatalf("len = %d", len(pad))
	}
	for i := 0; i < len(pad); i++ {
		c := pad[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			t.Fatalf("pad byte %d is %q", i, c)
		}
	}
}
