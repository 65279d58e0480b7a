package redisadapter

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// offlineAdapter is the Adapter of "/" on a Cluster that never connects:
// what it would publish is dropped ("unavailable"), so the decoder and the
// handlers run alone.
func offlineAdapter(tb testing.TB) *Adapter {
	tb.Helper()
	c := &Cluster{
		opts:     Options{Key: DefaultKey, RequestTimeout: DefaultRequestTimeout},
		uid:      "self00",
		log:      zap.NewNop(),
		pubq:     make(chan publication, 1),
		nsps:     map[string][]*Adapter{},
		patterns: map[string]string{},
		channels: map[string]string{},
		pending:  map[string]*pending{},
		ctx:      context.Background(),
		closed:   true, // nothing to unsubscribe from
	}
	var a *Adapter
	srv := realtime.NewServer(realtime.Options{NewAdapter: func(n *realtime.Namespace) realtime.Adapter {
		a = &Adapter{MemoryAdapter: realtime.NewMemoryAdapter(n), c: c, nsp: n, name: n.Name()}
		a.initChannels()
		return a
	}})
	tb.Cleanup(srv.Close)
	return a
}

// FuzzDecode feeds arbitrary bytes to every channel's handler: nothing may
// panic, whatever the message (seeds: captures of Node 8.3 and the emitter,
// and known crashers of stock Node).
func FuzzDecode(f *testing.F) {
	seeds := []string{
		"\x93\xa6Oid-XH\x83\xa4type\x02\xa4data\x92\xa6toroom\xa1x\xa3nsp\xa1/\x83\xa5rooms\x91\xa5room1\xa6except\x90\xa5flags\x80",
		"\x93\xa7emitter\x83\xa4type\x02\xa4data\x93\xabfromEmitter\x01\xc4\x01\x09\xa3nsp\xa1/\x83\xa5rooms\x91\xa5room1\xa5flags\x80\xa6except\x90",
		"\x93\xa6Oid-XH\x83\xa4type\x02\xa4data\x92\xa4date\xd6\xff\x00\x00\x00\x01\xa3nsp\xa1/\x80",
		`{"uid":"Oid-XH","requestId":"dGN8oi","type":5,"opts":{"rooms":["room1"],"except":[]}}`,
		`{"uid":"Oid-XH","requestId":"abc","type":1}`,
		`{"type":2,"opts":{"rooms":[],"except":[]},"rooms":["room9"]}`,
		`{"type":4,"opts":{"rooms":["room1"],"except":[]},"close":false}`,
		`{"uid":"emitter","type":6,"data":["emsse",7]}`,
		`{"uid":"Oid-XH","requestId":"r6","type":6,"data":["sse-ack",2]}`,
		"\x85\xa3uid\xa6Oid-XH\xa9requestId\xa6ecfbiE\xa4type\x07\xa6packet\x83\xa4type\x02\xa4data\x92\xa5ackme\xa1q\xa3nsp\xa1/\xa4opts\x83\xa5rooms\x90\xa6except\x90\xa5flags\x81\xa7timeout\xcd\x03\xe8",
		"\x83\xa4type\x09\xa9requestId\xa6ecfbiE\xa6packet\xaback-from-cB",
		`{"type":5,"requestId":"x"}`, `{"type":2,"opts":{"rooms":5}}`, "\x81\xa4type\x07", "",
		"\x93\xa1x\x05\xc0", "\xdd\xff\xff\xff\xff", "\xc6\xff\xff\xff\xff", "\xdb\xff\xff\xff\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	a := offlineAdapter(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		a.onBroadcast(a.base, b)
		a.onRequest(b)
		a.onResponse(b)
		if v, err := decodeMsgpack(b); err == nil {
			if _, err := encodeMsgpack(v); err != nil {
				t.Fatalf("decoded value %#v does not encode: %v", v, err)
			}
		}
	})
}
