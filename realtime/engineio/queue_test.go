package engineio

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// One polling response carries at most MaxPayload bytes (or a single
// larger packet); the rest comes with the following polls, in order.
func TestPollingResponseBounded(t *testing.T) {
	const maxPayload = 10_000
	backlog := func(t *testing.T, s *Session) []string {
		t.Helper()
		var want []string
		for i := 0; i < 60; i++ {
			var m *Message
			switch {
			case i == 30: // larger than a whole response: goes alone
				m = TextMessageString(fmt.Sprintf("%03d", i) + strings.Repeat("L", 15_000))
			case i%10 == 7:
				m = BinaryMessage(bytes.Repeat([]byte{byte(i)}, 2000))
			default:
				m = TextMessageString(fmt.Sprintf("%03d", i) + strings.Repeat("x", 900+i))
			}
			if err := s.Send(m); err != nil {
				t.Fatal(err)
			}
			want = append(want, string(appendPayload(nil, []outPacket{{typ: typeMessage, msg: m}})))
		}
		return want
	}
	// poll collects records until n have come, checking each response.
	poll := func(t *testing.T, ts *tserver, sid string, n int) (recs []string, polls int) {
		t.Helper()
		for len(recs) < n && polls < 100 {
			code, body := ts.get(sid)
			polls++
			if code != 200 {
				t.Fatalf("poll %d: %d %q", polls, code, body)
			}
			got := strings.Split(body, "\x1e")
			if len(body) > maxPayload && len(got) > 1 {
				t.Errorf("poll %d: %d bytes in %d packets, over MaxPayload %d", polls, len(body), len(got), maxPayload)
			}
			recs = append(recs, got...)
		}
		return recs, polls
	}
	t.Run("open session", func(t *testing.T) {
		ts := newTServer(t, Options{MaxPayload: maxPayload})
		sid := ts.handshake()
		r := ts.session()
		want := backlog(t, r.s)
		got, polls := poll(t, ts, sid, len(want))
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("got %d records in %d polls, want the %d sent in order", len(got), polls, len(want))
		}
		if polls < 8 {
			t.Errorf("%d polls for %d bytes", polls, len(strings.Join(want, "")))
		}
	})
	t.Run("closing session", func(t *testing.T) {
		ts := newTServer(t, Options{MaxPayload: maxPayload})
		sid := ts.handshake()
		r := ts.session()
		want := backlog(t, r.s)
		r.s.Close(ReasonForcedClose)
		got, _ := poll(t, ts, sid, len(want)+1)
		if strings.Join(got, "|") != strings.Join(append(want, "1"), "|") {
			t.Errorf("got %d records, want the %d sent then the close packet", len(got), len(want))
		}
		if code, _ := ts.get(sid); code != 400 {
			t.Errorf("GET after the close packet: %d", code)
		}
		<-r.s.Done()
	})
}
