package engineio

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// len is the number of sessions in the heap.
func (b *beats) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.heap)
}

// checkBeats fails unless b is a min-heap on due whose sessions know
// their slots, and the timer is armed for the earliest deadline (or
// stopped when the heap is empty).
func checkBeats(t *testing.T, b *beats, fc *fakeClock) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, e := range b.heap {
		if int(e.s.hbSlot) != i+1 {
			t.Fatalf("slot %d holds a session that thinks it is at %d", i+1, e.s.hbSlot)
		}
		if p := (i - 1) / 2; i > 0 && b.heap[p].due > e.due {
			t.Fatalf("heap order broken at %d: parent due %v, child %v", i, b.heap[p].due, e.due)
		}
	}
	armed := 0
	fc.mu.Lock()
	for tm := range fc.armed {
		if b.timer != nil && tm == b.timer.(*fakeTimer) {
			armed++
			if want := b.heap[0].due - stampOf(fc.now); tm.d != want {
				t.Errorf("timer armed for %v, the earliest deadline is in %v", tm.d, want)
			}
		}
	}
	fc.mu.Unlock()
	if want := min(len(b.heap), 1); armed != want {
		t.Fatalf("%d timers armed for %d sessions", armed, len(b.heap))
	}
}

// The heap under random moves and removals: each session is in it once,
// in due order, the timer follows the earliest, and an emptied heap stops
// its timer and lets go of its storage.
func TestBeatsHeap(t *testing.T) {
	fc := newFakeClock()
	b := &beats{clock: fc}
	now := stampOf(fc.Now())
	rng := rand.New(rand.NewPCG(1, 2))
	sessions := make([]*Session, 300)
	for i := range sessions {
		sessions[i] = &Session{}
	}
	for step := range 5000 {
		s := sessions[rng.IntN(len(sessions))]
		if rng.IntN(4) == 0 {
			b.remove(s)
			if s.hbSlot != 0 {
				t.Fatalf("step %d: a removed session kept slot %d", step, s.hbSlot)
			}
		} else {
			b.set(s, now+time.Duration(1+rng.IntN(1000))*time.Millisecond)
		}
		checkBeats(t, b, fc)
	}
	in := 0
	for _, s := range sessions {
		if s.hbSlot != 0 {
			in++
		}
	}
	if n := b.len(); n != in {
		t.Fatalf("heap holds %d, %d sessions have a slot", n, in)
	}
	for _, s := range sessions {
		b.remove(s)
	}
	checkBeats(t, b, fc)
	if b.heap != nil {
		t.Errorf("an empty heap kept %d slots of storage", cap(b.heap))
	}
}

// Sessions that connect at different times are each pinged exactly one
// interval after their own start, in one pass of the heap's one timer,
// and a session leaves the heap when it closes.
func TestHeartbeatManySessions(t *testing.T) {
	const interval, timeout = 25 * time.Second, 20 * time.Second
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc})
	const n = 3 * beatBatch // more than one batch is due at once
	var rs []*recorder
	var sids []string
	for i := range n {
		if i == n/2 {
			fc.advance(time.Second) // the second half starts a second later
		}
		sids = append(sids, ts.handshake())
		rs = append(rs, ts.session())
	}
	beats := ts.srv.cfg.Load().beats
	if got := beats.len(); got != n {
		t.Fatalf("%d sessions in the heap, want %d", got, n)
	}
	fc.advance(interval - time.Second - time.Nanosecond) // the clock is a second past the first half's start
	for i, r := range rs {
		if awaitingPong(r.s) {
			t.Fatalf("session %d pinged early", i)
		}
	}
	fc.advance(time.Nanosecond)
	for i, r := range rs {
		if got, want := awaitingPong(r.s), i < n/2; got != want {
			t.Fatalf("session %d: pinged %v at its first half's deadline", i, got)
		}
	}
	fc.advance(time.Second)
	for i, r := range rs {
		if !awaitingPong(r.s) {
			t.Fatalf("session %d not pinged at its deadline", i)
		}
	}
	// Half answer; the others time out and leave the heap.
	for i := 0; i < n; i += 2 {
		if code, body := ts.get(sids[i]); code != 200 || body != "2" {
			t.Fatalf("session %d: GET %d %q", i, code, body)
		}
		if code, _ := ts.post(sids[i], "3"); code != 200 {
			t.Fatalf("session %d: pong POST %d", i, code)
		}
	}
	fc.advance(timeout)
	for i, r := range rs {
		if got, want := closedYet(r.s), i%2 == 1; got != want {
			t.Fatalf("session %d: closed %v after the pong deadline", i, got)
		}
	}
	for i := 1; i < n; i += 2 {
		if reason := rs[i].waitClose(t); reason != ReasonPingTimeout {
			t.Fatalf("session %d: OnClose(%q)", i, reason)
		}
	}
	if got := beats.len(); got != n/2 {
		t.Fatalf("%d sessions in the heap, want the %d open ones", got, n/2)
	}
	for _, r := range rs {
		r.s.Close(ReasonForcedClose)
	}
	if got := beats.len(); got != 0 {
		t.Fatalf("%d closed sessions left in the heap", got)
	}
	checkBeats(t, beats, fc)
}

// What a client sends cannot grow the heap: a v3 client that floods pings
// moves its one deadline, it does not add more.
func TestHeartbeatPingFloodHoldsOneSlot(t *testing.T) {
	fc := newFakeClock()
	ts := newTServer(t, Options{AllowEIO3: true, PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, clock: fc})
	sid := ts.v3Handshake("EIO=3&transport=polling")
	r := ts.session()
	for range 20 {
		if code, body := ts.v3Post(sid, strings.Repeat("1:2", 50), "text/plain"); code != 200 {
			t.Fatalf("POST %d %q", code, body)
		}
		fc.advance(time.Second)
	}
	if got := ts.srv.cfg.Load().beats.len(); got != 1 {
		t.Fatalf("one session holds %d heap slots", got)
	}
	if closedYet(r.s) {
		t.Fatal("a pinging client was closed")
	}
}

// A ping timeout's OnClose runs on a goroutine of its own: one that
// blocks does not hold back the heartbeat of the sessions due after it.
func TestHeartbeatSlowOnCloseHoldsNoOneBack(t *testing.T) {
	const interval, timeout = time.Second, time.Second
	fc := newFakeClock()
	slow := &blockingHandler{started: make(chan string, 1), release: make(chan struct{})}
	var release sync.Once
	defer release.Do(func() { close(slow.release) })
	sessions := make(chan *Session, 2)
	first := true
	ts := newTServer(t, Options{PingInterval: interval, PingTimeout: timeout, clock: fc,
		OnSession: func(s *Session) {
			if first {
				s.SetHandler(slow)
				first = false
			} else {
				s.SetHandler(newRecorder(s, false))
			}
			sessions <- s
		}})
	ts.handshake()
	a := <-sessions
	fc.advance(time.Millisecond)
	ts.handshake()
	b := <-sessions

	advanced := make(chan struct{})
	go func() {
		defer close(advanced)
		fc.advance(interval + timeout + time.Millisecond)
	}()
	select {
	case <-advanced:
	case <-time.After(testTimeout):
		t.Fatal("the clock's advance is stuck behind a blocking OnClose")
	}
	if reason := <-slow.started; reason != ReasonPingTimeout {
		t.Fatalf("OnClose(%q)", reason)
	}
	if !closedYet(a) || !closedYet(b) {
		t.Fatalf("closed: first %v, second %v; both pongs were overdue", closedYet(a), closedYet(b))
	}
	release.Do(func() { close(slow.release) })
	for _, s := range []*Session{a, b} {
		select {
		case <-s.Done():
		case <-time.After(testTimeout):
			t.Fatal("a timed-out session did not finish")
		}
	}
	if got := ts.srv.cfg.Load().beats.len(); got != 0 {
		t.Fatalf("%d sessions in the heap", got)
	}
}

// A reload gives new sessions a new heap; the old config's sessions keep
// theirs, which stops its timer once they have gone.
func TestHeartbeatAcrossSetOptions(t *testing.T) {
	fc := newFakeClock()
	ts := newTServer(t, Options{PingInterval: 10 * time.Second, clock: fc})
	ts.handshake()
	old := ts.session()
	oldBeats := ts.srv.cfg.Load().beats
	ts.srv.SetOptions(Options{PingInterval: 5 * time.Second, PingTimeout: 5 * time.Second, clock: fc, OnSession: ts.srv.cfg.Load().OnSession})
	ts.handshake()
	young := ts.session()
	newBeats := ts.srv.cfg.Load().beats
	if oldBeats == newBeats || oldBeats.len() != 1 || newBeats.len() != 1 {
		t.Fatalf("heaps: old %d, new %d (same: %v)", oldBeats.len(), newBeats.len(), oldBeats == newBeats)
	}
	fc.advance(5 * time.Second)
	if !awaitingPong(young.s) || awaitingPong(old.s) {
		t.Fatalf("after 5s: new session pinged %v, old %v", awaitingPong(young.s), awaitingPong(old.s))
	}
	old.s.Close(ReasonForcedClose)
	if n := oldBeats.len(); n != 0 {
		t.Fatalf("old heap: %d sessions after its last one closed", n)
	}
	checkBeats(t, oldBeats, fc) // and its timer is stopped
	fc.advance(5 * time.Second)
	if !closedYet(young.s) {
		t.Fatal("the new session's pong deadline passed and it stayed open")
	}
}
