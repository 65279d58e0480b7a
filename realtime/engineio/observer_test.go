package engineio

import (
	"sync"
	"testing"
)

// countingObserver records what an Observer is told.
type countingObserver struct {
	mu                   sync.Mutex
	opens                map[string]int
	refused              map[int]int
	closes               map[string]int
	inPackets, inBytes   int
	outPackets, outBytes int
}

func newCountingObserver() *countingObserver {
	return &countingObserver{opens: map[string]int{}, refused: map[int]int{}, closes: map[string]int{}}
}

func (c *countingObserver) observer() Observer {
	lock := func(f func()) { c.mu.Lock(); f(); c.mu.Unlock() }
	return Observer{
		OnOpen:     func(t string) { lock(func() { c.opens[t]++ }) },
		OnRefused:  func(code int) { lock(func() { c.refused[code]++ }) },
		OnReceived: func(n int) { lock(func() { c.inPackets++; c.inBytes += n }) },
		OnSent:     func(p, n int) { lock(func() { c.outPackets += p; c.outBytes += n }) },
		OnClose:    func(r string) { lock(func() { c.closes[r]++ }) },
	}
}

func (c *countingObserver) snapshot() countingObserver {
	c.mu.Lock()
	defer c.mu.Unlock()
	return countingObserver{opens: c.opens, refused: c.refused, closes: c.closes,
		inPackets: c.inPackets, inBytes: c.inBytes, outPackets: c.outPackets, outBytes: c.outBytes}
}

func TestObserverCounts(t *testing.T) {
	obs := newCountingObserver()
	ts := newTServer(t, Options{Observer: obs.observer()})

	// Refused handshakes, by code; a refused request with a sid is not a
	// handshake.
	ts.do("GET", "EIO=4&transport=flash", "", nil)
	ts.do("POST", "EIO=4&transport=polling", "x", nil)
	ts.do("GET", "EIO=3&transport=polling", "", nil)
	ts.do("GET", "EIO=4&transport=polling&sid=nope", "", nil)

	// A polling session echoes two messages: 2 in, 2 out, 5 bytes each way.
	sid := ts.handshake()
	r := ts.session()
	if code, _ := ts.post(sid, "4hello\x1e4ab"); code != 200 {
		t.Fatalf("post: %d", code)
	}
	r.waitMessages(t, 2)
	r.s.Close("forced close")
	r.waitClose(t)

	// And one over websocket.
	c := ts.mustDial("EIO=4&transport=websocket")
	defer c.Close()
	ts.session()

	waitFor(t, "counts", func() bool {
		s := obs.snapshot()
		return s.opens[TransportWebSocket] == 1 && s.closes["forced close"] == 1
	})
	s := obs.snapshot()
	if s.opens[TransportPolling] != 1 || s.opens[TransportWebSocket] != 1 {
		t.Errorf("opens %v", s.opens)
	}
	if s.refused[errTransportUnknown.code] != 1 || s.refused[errBadHandshakeMethod.code] != 1 ||
		s.refused[errUnsupportedProtocol.code] != 1 || len(s.refused) != 3 {
		t.Errorf("refused %v", s.refused)
	}
	if s.inPackets != 2 || s.inBytes != 7 || s.outPackets != 2 || s.outBytes != 7 {
		t.Errorf("in %d packets %d bytes, out %d packets %d bytes; want 2, 7, 2, 7",
			s.inPackets, s.inBytes, s.outPackets, s.outBytes)
	}
}
