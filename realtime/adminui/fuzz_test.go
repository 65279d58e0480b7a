package adminui

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// FuzzActions feeds each action arguments an admin could send (any JSON
// array, as the parser decodes it: numbers as json.Number) and the view's
// size estimate the same values: neither panics nor runs unbounded.
func FuzzActions(f *testing.F) {
	for _, seed := range []string{
		`["/","vip","abc"]`,
		`["/",true,"room"]`,
		`["/",null,"news",1,{"a":[1,2]}]`,
		`["/nope","x"]`,
		`[1,2,3]`,
		`[]`,
		`["/",""]`,
		`["/","connect"]`,
		`["/",null,"disconnect"]`,
	} {
		f.Add([]byte(seed))
	}
	srv := realtime.NewServer(realtime.Options{Engine: engineOpts()})
	f.Cleanup(srv.Close)
	u := New(srv, nil)
	if err := u.Configure(&Config{Username: testUser, PasswordHash: testHash}); err != nil {
		f.Fatal(err)
	}
	actions := []func(*realtime.Namespace, []any) error{u.emit, u.join, u.leave, u.disconnect}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var args []any
		if dec.Decode(&args) != nil {
			return
		}
		for _, do := range actions {
			_ = u.run(do, args)
		}
		if n := argsSize(args, MaxViewArgsBytes); n < 0 {
			t.Fatalf("argsSize %d", n)
		}
	})
}

func engineOpts() (o engineio.Options) {
	o.PingInterval = time.Minute
	return o
}
