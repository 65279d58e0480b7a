package adminui

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// TestLoginPerIP: one client IP gets LoginPerIPBurst attempts, then is
// refused without a comparison, even with the right password.
func TestLoginPerIP(t *testing.T) {
	f := newFixture(t, Config{}, realtime.Options{})
	for i := range LoginPerIPBurst {
		c := f.dial(t, nil)
		if got := connectAdmin(t, c, `{"username":"admin","password":"nope"}`); got != `44/admin,{"message":"invalid credentials"}` {
			t.Fatalf("attempt %d: %q", i+1, got)
		}
	}
	c := f.dial(t, nil)
	if got := connectAdmin(t, c, `{"username":"admin","password":"s3cret-pass"}`); got != `44/admin,{"message":"too many login attempts, try again later"}` {
		t.Fatalf("attempt over the rate: %q", got)
	}
}

// TestLoginCPUBudget: once bcrypt has used the budget, logins are refused
// at once until it refills at LoginCPUShare; a fake clock makes each
// comparison take 500 ms.
func TestLoginCPUBudget(t *testing.T) {
	c, err := newConfig(Config{Username: testUser, PasswordHash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	l := newLogin()
	var mu sync.Mutex
	clock := time.Unix(1e9, 0)
	l.last = clock
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	compare := l.compare
	l.compare = func(hash, password []byte) error {
		mu.Lock()
		clock = clock.Add(500 * time.Millisecond)
		mu.Unlock()
		return compare(hash, password)
	}
	ok := 0
	for i := range 20 {
		// A new address each time: the per-IP rate is not what is tested.
		err := l.verify(c, "10.0.0."+strconv.Itoa(i)+":1", testUser, testPass)
		if err == nil {
			ok++
		} else if err != errTooManyLogins {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// A budget of LoginBurst (5 s) pays for 10 comparisons of 500 ms;
	// each refills 125 ms (LoginCPUShare of it) for the next, which buys
	// four more (the last overdraws the budget); then logins are refused.
	if ok != 14 {
		t.Errorf("%d logins within the budget, want 14", ok)
	}
	// The budget refills at LoginCPUShare: 2 s later, one more.
	mu.Lock()
	clock = clock.Add(2 * time.Second)
	mu.Unlock()
	if err := l.verify(c, "10.0.1.1:1", testUser, testPass); err != nil {
		t.Errorf("after the refill: %v", err)
	}
}

// TestSlowAdmin: an admin that stops reading while the hub is busy is
// dropped by the engine's send bound; the server holds no more for it and
// the application's sockets are unaffected.
func TestSlowAdmin(t *testing.T) {
	f := newFixture(t, Config{}, realtime.Options{Engine: engineio.Options{
		MaxBufferedBytes: 64 << 10, MaxBufferedBytesHard: 256 << 10, SlowClientGrace: 200 * time.Millisecond,
	}})
	f.ui.events.mu.Lock()
	f.ui.events.rate, f.ui.events.burst = 1e9, 1e9 // every event shown: the test is the send bound
	f.ui.events.mu.Unlock()
	admin := loginOK(t, f)
	next(t, admin, "server_stats")
	// From now on the admin reads nothing: testkit's reader stops reading
	// the socket once its queue is full.
	user := f.dial(t, nil)
	user.ConnectSocket("")
	big := strings.Repeat("x", 8<<10)
	deadline := time.Now().Add(10 * time.Second)
	ns, _ := f.srv.Namespace("/admin")
	for ns.Len() > 0 && time.Now().Before(deadline) {
		for range 20 {
			user.Send(`42["ping","` + big + `"]`)
			user.Read() // the echo: the user keeps up
		}
	}
	if n := ns.Len(); n != 0 {
		t.Fatalf("the stalled admin is still connected (%d)", n)
	}
	user.Send(`42["ping","still here"]`)
	user.Expect(`42["pong","still here"]`)
}

// TestNotWatchingWithoutAdmin: the UI watches the server only while an
// admin is connected: its stats goroutine ends with the last admin, and
// a disabled UI refuses its namespace as unknown.
func TestNotWatchingWithoutAdmin(t *testing.T) {
	g := testkit.TrackGoroutines("adminui.(*UI).statsLoop")
	f := newFixture(t, Config{}, realtime.Options{})
	admin := loginOK(t, f)
	next(t, admin, "server_stats")
	// One loop; an earlier test's may still be on its way out.
	for deadline := time.Now().Add(2 * time.Second); len(g.New()) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("stats loop goroutines %q, want 1", g.New())
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.ui.mu.Lock()
	watching := f.ui.stop != nil
	f.ui.mu.Unlock()
	if !watching {
		t.Fatal("not watching with an admin connected")
	}
	admin.Send("41/admin,")
	g.Check(t, 2*time.Second)
	f.ui.mu.Lock()
	watching = f.ui.stop != nil
	f.ui.mu.Unlock()
	if watching {
		t.Error("still watching after the last admin left")
	}

	if err := f.ui.Configure(nil); err != nil {
		t.Fatal(err)
	}
	c := f.dial(t, nil)
	if got := connectAdmin(t, c, `{"username":"admin","password":"s3cret-pass"}`); got != `44/admin,{"message":"Invalid namespace"}` {
		t.Errorf("disabled UI: %q", got)
	}
}

// TestReconfigure: new credentials disconnect the admins and forget their
// sessions; a new read-only flag disconnects them but keeps the sessions.
func TestReconfigure(t *testing.T) {
	f := newFixture(t, Config{}, realtime.Options{})
	admin := loginOK(t, f)
	sid := next(t, admin, "session").str(t, 0)
	if err := f.ui.Configure(&Config{Username: testUser, PasswordHash: testHash, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	readUntil(t, admin, "41/admin,")
	c := f.dial(t, nil)
	if got := connectAdmin(t, c, `{"sessionId":"`+sid+`"}`); !strings.HasPrefix(got, `40/admin,`) {
		t.Fatalf("session after a read-only change: %q", got)
	}
	if err := f.ui.Configure(&Config{Username: "other", PasswordHash: testHash}); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "41/admin,")
	c2 := f.dial(t, nil)
	if got := connectAdmin(t, c2, `{"sessionId":"`+sid+`"}`); got != `44/admin,{"message":"invalid credentials"}` {
		t.Fatalf("session after new credentials: %q", got)
	}
	if err := f.ui.Configure(&Config{Username: "x", PasswordHash: "not-a-hash"}); err == nil {
		t.Error("a bad hash was accepted")
	}
}

// TestViewBounds: a client's large event is shown with a note instead of
// its arguments, and a flood of events is shown only within the budget.
func TestViewBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{}, realtime.Options{})
	admin := loginOK(t, f)
	next(t, admin, "server_stats")
	user := f.dial(t, nil)
	user.ConnectSocket("")
	user.Send(`42["blob","` + strings.Repeat("y", MaxViewArgsBytes+1) + `"]`)
	var data []any
	next(t, admin, "event_received").arg(t, 2, &data)
	if len(data) != 2 || data[0] != "blob" || !strings.Contains(data[1].(string), "not shown") {
		t.Errorf("large event shown as %.80v", data)
	}

	const sent = 3 * ViewEventBurst
	for i := range sent {
		user.Send(`42["tick",` + strconv.Itoa(i) + `]`)
	}
	user.Send(`42["ping","end"]`)
	user.Expect(`42["pong","end"]`)
	shown := 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		fr, err := admin.Recv(300 * time.Millisecond)
		if err != nil {
			break
		}
		if e, ok := parseEvent(fr.Data, "/admin"); ok && e.name == "event_received" {
			shown++
		}
	}
	if shown >= sent || shown < ViewEventBurst/2 {
		t.Errorf("%d of %d events shown, want about the burst (%d)", shown, sent, ViewEventBurst)
	}
}

// readUntil reads frames until one equal to want, within 5 s (the stats
// keep coming meanwhile).
func readUntil(t *testing.T, c *testkit.WS, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f, err := c.Recv(time.Until(deadline))
		if err != nil {
			break
		}
		if f.Data == want {
			return
		}
	}
	t.Fatalf("no %q within 5 s", want)
}

// TestReconfigureDuringLogin: a login that was checked against the old
// credentials while a reload changed them is not let in under the new
// ones (the swap and the admission are ordered by the UI's lock).
func TestReconfigureDuringLogin(t *testing.T) {
	f := newFixture(t, Config{}, realtime.Options{})
	inCompare, proceed := make(chan struct{}), make(chan struct{})
	compare := f.ui.login.compare
	f.ui.login.compare = func(hash, password []byte) error {
		close(inCompare)
		<-proceed
		return compare(hash, password)
	}
	c := f.dial(t, nil)
	c.Send(`40/admin,{"username":"admin","password":"s3cret-pass"}`)
	<-inCompare
	if err := f.ui.Configure(&Config{Username: "someone-else", PasswordHash: testHash}); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	// Its CONNECT was answered under the old login; it is then put out.
	readUntil(t, c, "41/admin,")
	f.ui.mu.Lock()
	n := len(f.ui.admins)
	f.ui.mu.Unlock()
	if n != 0 {
		t.Errorf("%d admins registered, want 0", n)
	}
}

// TestLoginPerAddrTable: the per-address login count keys an IPv6
// address by its /64, so a client cycling the addresses of its /64 gets
// LoginPerIPBurst attempts in all, and another /64 is not locked out; the
// table is bounded in bytes (a full table refuses new addresses, not the
// ones it counts) and its sweeper ends with close.
func TestLoginPerAddrTable(t *testing.T) {
	c, err := newConfig(Config{Username: testUser, PasswordHash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	leaks := testkit.TrackGoroutines("realtime.(*KeyTable)")
	l := newLogin()
	compared := 0
	l.compare = func(hash, password []byte) error { compared++; return errInvalidCredentials } // no bcrypt: the rate is tested
	for i := range 50 {
		err := l.verify(c, "[2001:db8:7:7:"+strconv.Itoa(i+1)+"::1]:4000", testUser, "nope")
		want := errTooManyLogins
		if i < LoginPerIPBurst {
			want = errInvalidCredentials
		}
		if err != want {
			t.Fatalf("address %d of one /64: %v, want %v", i, err, want)
		}
	}
	if compared != LoginPerIPBurst {
		t.Errorf("%d comparisons for one /64, want %d", compared, LoginPerIPBurst)
	}
	if err := l.verify(c, "[2001:db8:7:8::1]:4000", testUser, "nope"); err != errInvalidCredentials {
		t.Errorf("another /64: %v, want %v", err, errInvalidCredentials)
	}
	if n := l.perIP.Len(); n != 2 {
		t.Errorf("%d addresses counted, want 2 (one per /64)", n)
	}
	l.close()
	leaks.Check(t, 2*time.Second)

	// A table with room for four addresses.
	l = newLogin()
	l.compare = func(hash, password []byte) error { return errInvalidCredentials }
	per := int64(len("10.0.0.1")) + 128 // a key and realtime's keyEntryOverhead
	l.perIP.Close()
	l.perIP = realtime.NewKeyTable(4 * per)
	t.Cleanup(l.close)
	for i := range 1000 {
		err := l.verify(c, "10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+":1", testUser, "nope")
		if i < 4 && err != errInvalidCredentials || i >= 4 && err != errTooManyLogins {
			t.Fatalf("address %d: %v", i, err)
		}
	}
	if b := l.perIP.Bytes(); b > 4*per {
		t.Errorf("table holds %d bytes, bound %d", b, 4*per)
	}
	if err := l.verify(c, "10.0.0.1:2", testUser, "nope"); err != errInvalidCredentials {
		t.Errorf("a counted address while the table is full: %v, want %v", err, errInvalidCredentials)
	}
}
