package adminui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// The login's bounds. A bcrypt comparison is slow on purpose (tens of
// milliseconds at cost 10, a second at cost 14), and anyone who can reach
// the hub can ask for one with a CONNECT to the admin namespace: these
// bound the work a stranger can make the server do, whatever the cost of
// the configured hash.
const (
	// LoginCPUShare is the share of one CPU that bcrypt comparisons may
	// use, averaged over time: each comparison's duration is taken from a
	// budget that refills at this rate. A login that finds the budget spent
	// is refused at once, without a comparison.
	LoginCPUShare = 0.25
	// LoginBurst is the most the budget holds: the comparisons that may run
	// back to back after a quiet period (five at bcrypt cost 14, the
	// default of `caddy hash-password`, on a typical core).
	LoginBurst = 5 * time.Second
	// LoginWait bounds how long a login waits for the comparison running
	// before it (they run one at a time) before it is refused.
	LoginWait = 3 * time.Second
	// LoginPerIPRate and LoginPerIPBurst bound the logins of one client
	// address (per second, and at once), so that one client cannot spend
	// the whole budget and lock out the others. An address is keyed as the
	// connection limits key it (realtime.AddrKey): an IPv4 address, or an
	// IPv6 address's /64, which one client usually holds whole.
	LoginPerIPRate  = 0.5
	LoginPerIPBurst = 5
	// LoginTableBytes bounds the memory of the per-address counts (a
	// realtime.KeyTable: about 128 bytes and the key per address, so some
	// 6,000 addresses). An address is forgotten once its bucket is full
	// again (LoginPerIPBurst / LoginPerIPRate after its last login); while
	// the table is full of addresses that are not, logins from new ones
	// are refused (the CPU budget holds in any case).
	LoginTableBytes = 1 << 20
	// maxCredential bounds the username and password read from the CONNECT
	// payload; longer ones are refused without a comparison (bcrypt reads
	// 72 bytes at most anyway).
	maxCredential = 1024

	// MaxSessions bounds the remembered logins (the sessionId the UI sends
	// on its next page load); the oldest goes first.
	MaxSessions = 64
	// SessionTTL is how long a login is remembered (Node's RedisStore
	// keeps them a day; its in-memory store forever).
	SessionTTL = 24 * time.Hour
)

// Refusal messages. The UI reopens its login form on exactly "invalid
// credentials" and shows any other message as an error.
const (
	msgWrongLogin    = "invalid credentials"
	msgTooManyLogins = "too many login attempts, try again later"
)

var (
	errInvalidCredentials = errors.New(msgWrongLogin)
	errTooManyLogins      = errors.New(msgTooManyLogins)
)

// CheckHash reports whether hash is a bcrypt hash ($2a$, $2b$ or $2y$) that
// the login can compare passwords with.
func CheckHash(hash string) error {
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return errors.New("password_hash: not a bcrypt hash (make one with `caddy hash-password`)")
	}
	return nil
}

// login checks credentials within the bounds above. It is shared by every
// config of a UI, so a reload does not refill the budgets.
type login struct {
	sem chan struct{} // one comparison at a time

	mu     sync.Mutex
	budget time.Duration // CPU time bcrypt may still use
	last   time.Time     // when budget was last refilled

	perIP *realtime.KeyTable // logins per client address (AddrKey)

	now     func() time.Time
	compare func(hash, password []byte) error // bcrypt's; tests time it
}

func newLogin() *login {
	return &login{sem: make(chan struct{}, 1), budget: LoginBurst, perIP: realtime.NewKeyTable(LoginTableBytes),
		now: time.Now, compare: bcrypt.CompareHashAndPassword}
}

// close stops the per-address table's sweeper; logins are refused after.
func (l *login) close() { l.perIP.Close() }

// refillLocked adds the budget earned since the last refill.
func (l *login) refillLocked(now time.Time) {
	if d := now.Sub(l.last); d > 0 {
		l.budget = min(LoginBurst, l.budget+time.Duration(float64(d)*LoginCPUShare))
	}
	l.last = now
}

// verify compares the credentials with the config's, as one bounded
// attempt from address. The username is compared in constant time and the
// password always goes through bcrypt (against the configured hash even
// when the username is wrong), so the time taken tells neither apart.
func (l *login) verify(c *config, address, username, password string) error {
	// Refused when the address is over its rate, and when the table is
	// full of other addresses.
	if l.perIP.Allow(realtime.AddrKey(address), 0, LoginPerIPRate, LoginPerIPBurst) != nil {
		return errTooManyLogins
	}
	timer := time.NewTimer(LoginWait)
	defer timer.Stop()
	select {
	case l.sem <- struct{}{}:
	case <-timer.C:
		return errTooManyLogins
	}
	defer func() { <-l.sem }()
	l.mu.Lock()
	l.refillLocked(l.now())
	spent := l.budget <= 0
	l.mu.Unlock()
	if spent {
		return errTooManyLogins
	}
	if len(username) > maxCredential || len(password) > maxCredential {
		return errInvalidCredentials
	}
	start := l.now()
	userOK := subtle.ConstantTimeCompare(digest(username), c.userDigest) == 1
	passOK := l.compare(c.hash, []byte(password)) == nil
	took := l.now().Sub(start)
	l.mu.Lock()
	l.budget -= took
	l.mu.Unlock()
	if !userOK || !passOK {
		return errInvalidCredentials
	}
	return nil
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// clientIP is the host of a "host:port" address (the whole address when
// it has no port).
func clientIP(address string) string {
	if host, _, err := net.SplitHostPort(address); err == nil {
		return host
	}
	return address
}

// sessions remembers the logins of the UI: the sessionId it was given,
// which it sends instead of the password on its next page load. Only a
// digest of each id is kept, so the lookup's timing tells nothing of the
// ids, and the count is bounded.
type sessions struct {
	mu    sync.Mutex
	byID  map[[32]byte]time.Time // digest -> expiry
	order [][32]byte             // digests, oldest first
	now   func() time.Time
}

func newSessions() *sessions {
	return &sessions{byID: make(map[[32]byte]time.Time), now: time.Now}
}

// create makes and remembers a new session id: 16 random bytes in hex.
func (s *sessions) create() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	d := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) >= MaxSessions {
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
	s.byID[d] = s.now().Add(SessionTTL)
	s.order = append(s.order, d)
	return id
}

// valid reports whether id is a remembered, unexpired session.
func (s *sessions) valid(id string) bool {
	if id == "" || len(id) > maxCredential {
		return false
	}
	d := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.byID[d]
	return ok && s.now().Before(exp)
}

// reset forgets every session (the credentials changed).
func (s *sessions) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.byID)
	s.order = nil
}
