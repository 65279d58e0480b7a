package realtime

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

func placeholders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,{"_placeholder":true,"num":%d}`, i)
	}
	return b.String()
}

// TestAttachmentTimeout: a binary header announcing 10 attachments of
// which one comes closes the connection once AttachmentTimeout passed; a
// complete binary packet disarms the timer.
func TestAttachmentTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	var seen atomic.Int64
	_, ts := newTestServerWith(t, func(o *Options) { o.AttachmentTimeout = timeout }, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			s.OnAny(func(_ *Socket, _ string, _ []any, ack AckFunc) {
				seen.Add(1)
				if ack != nil {
					_ = ack("ok")
				}
			})
		})
	})
	// Complete packets, then more than the timeout of silence: still open.
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	for range 3 {
		c.Send(`452-1["x"` + placeholders(2) + `]`)
		c.SendBinary([]byte{1})
		c.SendBinary([]byte{2})
		c.Expect(`431["ok"]`)
	}
	c.Quiet(2 * timeout) // pings are answered by the client, nothing else comes
	c.Send(`421["x"]`)
	c.Expect(`431["ok"]`)

	// Ten announced, one sent.
	c.Send(`4510-["x"` + placeholders(10) + `]`)
	start := time.Now()
	c.SendBinary([]byte{1, 2, 3})
	c.ExpectClosed(clientWait)
	if d := time.Since(start); d < timeout-50*time.Millisecond || d > timeout+2*time.Second {
		t.Fatalf("closed after %v, want about %v", d, timeout)
	}
	if n := seen.Load(); n != 4 {
		t.Fatalf("handlers saw %d events, want the 4 complete ones", n)
	}
}

// TestAttachmentBytesBound: attachments over the total bound (here the
// engine's MaxPayload) close the connection at once, without waiting for
// the attachment timeout.
func TestAttachmentBytesBound(t *testing.T) {
	const maxPayload = 100_000
	var seen atomic.Int64
	_, ts := newTestServerWith(t, func(o *Options) { o.Engine.MaxPayload = maxPayload }, func(s *Server) {
		s.Of("/").OnConnection(func(s *Socket) {
			s.OnAny(func(_ *Socket, _ string, _ []any, ack AckFunc) {
				seen.Add(1)
				if ack != nil {
					_ = ack("ok")
				}
			})
		})
	})
	c := dialRaw(t, ts, "")
	c.Send("40")
	c.ExpectPrefix("40{")
	// Just at the bound: accepted.
	c.Send(`452-1["x"` + placeholders(2) + `]`)
	c.SendBinary(bytes.Repeat([]byte{7}, maxPayload/2))
	c.SendBinary(bytes.Repeat([]byte{8}, maxPayload/2))
	c.Expect(`431["ok"]`)
	// Over it by the second of three attachments.
	c.Send(`453-["x"` + placeholders(3) + `]`)
	start := time.Now()
	c.SendBinary(bytes.Repeat([]byte{1}, 60_000))
	c.SendBinary(bytes.Repeat([]byte{2}, 60_000))
	c.ExpectClosed(clientWait)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closed after %v, want at once", d)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("handlers saw %d events, want 1", n)
	}
}

// TestAttachmentOptions: the attachment bound follows the engine's payload
// limit unless set.
func TestAttachmentOptions(t *testing.T) {
	for _, tt := range []struct {
		in   Options
		want int64
	}{
		{Options{}, engineio.DefaultMaxPayload},
		{Options{Engine: engineio.Options{MaxPayload: 5000}}, 5000},
		{Options{Engine: engineio.Options{MaxPayload: 5000}, MaxAttachmentBytes: 42}, 42},
	} {
		o := tt.in.withDefaults()
		if o.MaxAttachmentBytes != tt.want || o.AttachmentTimeout != DefaultAttachmentTimeout {
			t.Errorf("%+v: bound %d, timeout %v; want %d, %v", tt.in, o.MaxAttachmentBytes, o.AttachmentTimeout, tt.want, DefaultAttachmentTimeout)
		}
	}
}
