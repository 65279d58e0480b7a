// Package adminui serves the admin namespace that @socket.io/admin-ui 0.5.1
// speaks, on a *realtime.Server: the login (bcrypt, bounded), the live view
// of every socket (connections, rooms, events, transports), the server's
// stats every two seconds, and the actions (join, leave, disconnect, emit)
// unless read-only. It mirrors Node's instrument() in development mode.
//
// The UI watches the server only while an admin is connected: with none,
// the server runs as if the package were not there (realtime.Server.Watch
// is unset) and no goroutine of the package runs.
package adminui

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// DefaultNamespace is the admin namespace, as the UI and Node default it.
const DefaultNamespace = "/admin"

// StatsInterval is how often server_stats goes to the admins (Node's
// fixed 2 s; the UI shows a server as down after 10 s without).
const StatsInterval = 2 * time.Second

// Feature names of the config event: the UI shows the actions it names.
var (
	actionFeatures = []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"}
	viewFeatures   = []string{"AGGREGATED_EVENTS", "ALL_EVENTS"}
)

// Config configures a UI.
type Config struct {
	// Namespace is the admin namespace. Default: /admin. It must not be
	// "/" nor a namespace the application serves.
	Namespace string
	// Username and PasswordHash (bcrypt: $2a$, $2b$ or $2y$) are the
	// credentials the UI's login form must match. Required.
	Username     string
	PasswordHash string
	// ReadOnly refuses the actions: the UI only watches.
	ReadOnly bool
	// ServerID names this server in the UI (servers are keyed by it).
	// Default: the host name.
	ServerID string
	// RedactHeaders and RedactQuery name request headers and query
	// parameters whose values the UI is not shown (credentials); the
	// Authorization, Proxy-Authorization and Cookie headers always are.
	RedactHeaders []string
	RedactQuery   []string
}

// config is a checked Config, read-only once made.
type config struct {
	Config
	userDigest   []byte
	hash         []byte
	redactHeader map[string]bool
	redactQuery  map[string]bool
	features     []string
}

// Check validates a Config without using it.
func (c Config) Check() error {
	var errs []error
	if err := CheckNamespace(c.Namespace); err != nil {
		errs = append(errs, err)
	}
	if c.Username == "" {
		errs = append(errs, errors.New("username is required"))
	}
	if c.PasswordHash == "" {
		errs = append(errs, errors.New("password_hash is required"))
	} else if err := CheckHash(c.PasswordHash); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckNamespace accepts an admin namespace name ("" is the default).
func CheckNamespace(ns string) error {
	if ns != "" && (!strings.HasPrefix(ns, "/") || ns == "/") {
		return fmt.Errorf("namespace %q: must start with / and not be the main namespace", ns)
	}
	return nil
}

func newConfig(c Config) (*config, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.ServerID == "" {
		c.ServerID = hostname
	}
	cc := &config{Config: c, userDigest: digest(c.Username), hash: []byte(c.PasswordHash),
		redactHeader: map[string]bool{}, redactQuery: map[string]bool{}}
	for _, h := range alwaysRedacted {
		cc.redactHeader[h] = true
	}
	for _, h := range c.RedactHeaders {
		cc.redactHeader[strings.ToLower(h)] = true
	}
	for _, q := range c.RedactQuery {
		cc.redactQuery[q] = true
	}
	if !c.ReadOnly {
		cc.features = append(cc.features, actionFeatures...)
	}
	cc.features = append(cc.features, viewFeatures...)
	return cc, nil
}

// sameLogin reports whether two configs accept the same logins in the
// same namespace (so remembered sessions stay valid).
func (c *config) sameLogin(o *config) bool {
	return c != nil && o != nil && c.Namespace == o.Namespace && c.Username == o.Username && c.PasswordHash == o.PasswordHash
}

// admits reports whether an admin admitted under o may stay under c: the
// same login and the same read-only flag (its config event told it which
// actions it has).
func (c *config) admits(o *config) bool {
	return c.sameLogin(o) && c.ReadOnly == o.ReadOnly
}

var (
	hostname, _ = os.Hostname()
	started     = time.Now() // for the uptime: the process's, near enough
)

// UI is the admin namespace of one server. It is disabled (its namespace
// refuses every CONNECT as one the server does not serve) until Configure
// gives it a config.
type UI struct {
	srv    *realtime.Server
	logger *zap.Logger
	cfg    atomic.Pointer[config]
	login  *login
	sess   *sessions
	stats  *aggregate
	events eventBudget

	mu     sync.Mutex
	admins map[*realtime.Socket]struct{} // connected admin sockets
	nsp    *realtime.Namespace           // their namespace, while there are admins
	stop   chan struct{}                 // stops the stats loop; nil when it is not running
	done   chan struct{}                 // closed when the stats loop has ended
	closed bool
}

// New declares the admin namespace on srv (realtime.Server.OfFunc, after
// the namespaces declared before it: the application's own patterns must
// not match it) and returns its UI, disabled until Configure.
func New(srv *realtime.Server, logger *zap.Logger) *UI {
	if logger == nil {
		logger = zap.NewNop()
	}
	u := &UI{
		srv:    srv,
		logger: logger.Named("adminui"),
		login:  newLogin(),
		sess:   newSessions(),
		stats:  newAggregate(),
		admins: make(map[*realtime.Socket]struct{}),
	}
	u.events.init()
	srv.OfFunc(u.serves, u.setup)
	return u
}

// Configure applies a config, or disables the UI with nil. Admins who are
// connected are disconnected when the namespace, the credentials or the
// read-only flag change (they log in again, under the new settings);
// remembered logins are forgotten when the credentials change.
func (u *UI) Configure(c *Config) error {
	var next *config
	if c != nil {
		var err error
		if next, err = newConfig(*c); err != nil {
			return fmt.Errorf("configuring the admin UI: %w", err)
		}
	}
	// Under u.mu, with connected's check: an admin is either registered
	// before the swap (and disconnected here) or sees the new config there.
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return errors.New("configuring the admin UI: closed")
	}
	prev := u.cfg.Swap(next)
	var drop []*realtime.Socket
	if prev != nil && !next.admits(prev) {
		drop = u.adminListLocked()
	}
	u.mu.Unlock()
	if next == nil || !next.sameLogin(prev) {
		u.sess.reset()
	}
	for _, s := range drop {
		s.Disconnect(false)
	}
	return nil
}

// Close disables the UI for good, disconnects the admins and stops
// watching the server and counting logins; it returns once the stats loop
// has ended.
func (u *UI) Close() {
	u.mu.Lock()
	u.closed = true
	u.cfg.Store(nil)
	u.mu.Unlock()
	u.disconnectAdmins()
	u.mu.Lock()
	done := u.stopWatchingLocked()
	u.mu.Unlock()
	if done != nil {
		<-done
	}
	u.login.close()
}

// disconnectAdmins disconnects every connected admin socket.
func (u *UI) disconnectAdmins() {
	u.mu.Lock()
	list := u.adminListLocked()
	u.mu.Unlock()
	for _, s := range list {
		s.Disconnect(false)
	}
}

func (u *UI) adminListLocked() []*realtime.Socket {
	list := make([]*realtime.Socket, 0, len(u.admins))
	for s := range u.admins {
		list = append(list, s)
	}
	return list
}

// serves is the admin namespace's matcher.
func (u *UI) serves(name string) bool {
	c := u.cfg.Load()
	return c != nil && name == c.Namespace
}

// setup readies a new admin namespace.
func (u *UI) setup(n *realtime.Namespace) {
	n.Use(u.authorize)
	n.OnConnection(u.connected)
}

// adminState is what the UI keeps of an admin socket, in its local slot.
type adminState struct {
	cfg     *config // the config that admitted it
	session string  // a session id to hand the UI after its CONNECT, or ""
}

// authorize is the admin namespace's middleware: a remembered session id,
// or the username and password, from the CONNECT payload.
func (u *UI) authorize(s *realtime.Socket) error {
	c := u.cfg.Load()
	if c == nil || s.Namespace().Name() != c.Namespace {
		return realtime.ErrInvalidNamespace
	}
	hs := s.Handshake()
	if id, _ := hs.Auth["sessionId"].(string); u.sess.valid(id) {
		s.SetLocal(&adminState{cfg: c})
		return nil
	}
	user, _ := hs.Auth["username"].(string)
	pass, _ := hs.Auth["password"].(string)
	if err := u.login.verify(c, hs.Address, user, pass); err != nil {
		if ce := u.logger.Check(zap.WarnLevel, "admin UI login refused"); ce != nil {
			ce.Write(zap.String("remote", hs.Address), zap.String("reason", err.Error()))
		}
		return err
	}
	u.logger.Info("admin UI login", zap.String("remote", hs.Address))
	s.SetLocal(&adminState{cfg: c, session: u.sess.create()})
	return nil
}

// connected greets an admin: its session id (after the CONNECT answer,
// which the UI's bundled client needs, unlike Node that sends it before),
// the config, the sockets and the stats; then the server is watched.
func (u *UI) connected(s *realtime.Socket) {
	st, _ := s.Local().(*adminState)
	// Before it is registered, so that a disconnect from now on is heard;
	// one that came before is caught by the Connected check below.
	s.OnDisconnect(u.adminLeft)
	u.mu.Lock()
	c := u.cfg.Load()
	if u.closed || st == nil || c == nil || !c.admits(st.cfg) {
		// A reload changed the login (or closed the UI) while this socket
		// was being admitted under the old one.
		u.mu.Unlock()
		s.Disconnect(false)
		return
	}
	u.admins[s] = struct{}{}
	u.nsp = s.Namespace()
	u.startWatchingLocked()
	u.mu.Unlock()
	if !s.Connected() {
		u.adminLeft(s, "")
		return
	}
	u.registerActions(s)

	if st.session != "" {
		_ = s.Emit("session", st.session)
	}
	_ = s.Emit("config", map[string]any{"supportedFeatures": toAny(c.features)})
	_ = s.Emit("all_sockets", u.allSockets(c))
	_ = s.Emit("server_stats", u.serverStats(c, false))
}

// adminLeft forgets an admin socket; the last one stops the watching.
func (u *UI) adminLeft(s *realtime.Socket, _ string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.admins, s)
	if len(u.admins) == 0 {
		u.stopWatchingLocked() // the stats loop ends on its own; Close waits for it
	}
}

// startWatchingLocked watches the server and starts the stats loop, if
// they are not on. u.mu is held.
func (u *UI) startWatchingLocked() {
	if u.stop != nil {
		return
	}
	u.stats.reset()
	u.srv.Watch(watcher{u})
	u.stop, u.done = make(chan struct{}), make(chan struct{})
	go u.statsLoop(u.stop, u.done)
}

// stopWatchingLocked stops watching and the stats loop; it returns the
// loop's done channel, nil when it was not running. u.mu is held.
func (u *UI) stopWatchingLocked() chan struct{} {
	if u.stop == nil {
		return nil
	}
	u.srv.Watch(nil)
	close(u.stop)
	done := u.done
	u.stop, u.done, u.nsp = nil, nil, nil
	return done
}

// statsLoop sends server_stats to the admins every StatsInterval until
// stop is closed.
func (u *UI) statsLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if c := u.cfg.Load(); c != nil {
				u.broadcast("server_stats", u.serverStats(c, true))
			}
		}
	}
}

// broadcast emits an event to every admin socket.
func (u *UI) broadcast(event string, args ...any) {
	u.mu.Lock()
	n := u.nsp
	u.mu.Unlock()
	if n != nil {
		_ = n.Emit(event, args...)
	}
}

// namespaceJSON is one entry of server_stats' namespaces.
type namespaceJSON struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

// serverStats renders server_stats; with drain, the aggregated events are
// taken (each goes to the admins once, as Node's getValuesAndClear).
func (u *UI) serverStats(c *config, drain bool) json.RawMessage {
	var nsps []namespaceJSON
	for _, n := range u.srv.Namespaces() {
		nsps = append(nsps, namespaceJSON{Name: n.Name(), SocketsCount: n.Len()})
	}
	slices.SortFunc(nsps, func(a, b namespaceJSON) int { return strings.Compare(a.Name, b.Name) })
	events := []eventCount{}
	if drain {
		events = u.stats.take(time.Now())
	}
	b, _ := json.Marshal(map[string]any{
		"serverId":            c.ServerID,
		"hostname":            hostname,
		"pid":                 os.Getpid(),
		"uptime":              time.Since(started).Seconds(),
		"clientsCount":        u.srv.ConnCount(),
		"pollingClientsCount": u.srv.PollingConnCount(),
		"aggregatedEvents":    events,
		"namespaces":          nsps,
	})
	return b
}

// MaxListBytes bounds the socket list sent to an admin that connects (JSON
// bytes): a hub with more sockets than fit is listed in part (the UI adds
// the others as they connect), and a warning says so.
const MaxListBytes = 4 << 20

// allSockets lists every socket of every namespace (the admin namespace's
// too, as Node does), within MaxListBytes.
func (u *UI) allSockets(c *config) json.RawMessage {
	buf := []byte{'['}
	listed, total, full := 0, 0, false
	for _, n := range u.srv.Namespaces() {
		for _, s := range n.Sockets() {
			total++
			if full {
				continue
			}
			b := c.serialize(s)
			if len(buf)+len(b)+2 > MaxListBytes {
				full = true
				continue
			}
			if listed > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, b...)
			listed++
		}
	}
	if listed < total {
		u.logger.Warn("admin UI: socket list cut to fit its bound",
			zap.Int("listed", listed), zap.Int("sockets", total), zap.Int("max_bytes", MaxListBytes))
	}
	return append(buf, ']')
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
