package socketio

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/emitapi"
)

func init() {
	caddy.RegisterModule(API{})
}

// API defaults and bounds, those of package emitapi.
const (
	// DefaultAPIMaxBody is the default of API.MaxBody.
	DefaultAPIMaxBody = emitapi.DefaultMaxBody
	// DefaultAPIAckTimeout is how long an emit with acks waits when the
	// request gives no timeout.
	DefaultAPIAckTimeout = emitapi.DefaultAckTimeout
	// MaxAPIAckTimeout bounds how long an emit with acks holds its HTTP
	// request.
	MaxAPIAckTimeout = emitapi.MaxAckTimeout
)

// API is an HTTP emit API for a socketio hub: a backend pushes events to
// rooms, moves sockets between rooms, disconnects them and lists them, with
// one authenticated JSON request. Mount it where the public cannot reach it
// (an internal listener or path); it answers every request it gets, routing
// on the last path segment: POST .../emit, .../join, .../leave,
// .../disconnect, GET .../sockets, .../rooms.
//
// The module checks the bearer secret and finds the hub; the routing, the
// requests and their answers are package emitapi's Handler.
//
// The API holds no reference to the hub: it finds it by name on each
// request, so it neither keeps a hub alive that no socketio handler uses
// any more nor cares which of the two handlers is provisioned first.
type API struct {
	// Hub is the name of the socketio hub driven (the socketio handler's
	// name). Default: /socket.io/.
	Hub string `json:"hub,omitempty"`

	// Secrets lists the accepted bearer secrets (Authorization: Bearer
	// <secret>); several allow rotation. Placeholders such as
	// {env.SOCKETIO_API_SECRET} are resolved at load. Required.
	Secrets []string `json:"secrets,omitempty"`

	// MaxBody bounds a request body, in bytes; a larger one gets 413.
	// Default: 1048576 (1MB).
	MaxBody int64 `json:"max_body,omitempty"`

	secrets [][sha256.Size]byte
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.socketio_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision resolves the secrets. It has no side effect.
func (a *API) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.check(); err != nil {
		return err
	}
	if a.Hub == "" {
		a.Hub = DefaultPath
	}
	if a.MaxBody == 0 {
		a.MaxBody = DefaultAPIMaxBody
	}
	repl := caddy.NewReplacer()
	a.secrets = nil
	for i, s := range a.Secrets {
		v := repl.ReplaceKnown(s, "")
		if v == "" {
			return fmt.Errorf("secrets: secret %d is empty after resolving placeholders (is the environment variable set?)", i+1)
		}
		if len(v) < 16 {
			a.logger.Warn("api secret is shorter than 16 bytes; use a long random value")
		}
		// Hashing first makes every comparison the same length, so timing
		// tells nothing about the secrets' lengths either.
		a.secrets = append(a.secrets, sha256.Sum256([]byte(v)))
	}
	return nil
}

// Validate reports config errors.
func (a *API) Validate() error { return a.check() }

func (a *API) check() error {
	var errs []error
	if len(a.Secrets) == 0 {
		errs = append(errs, errors.New("secrets: at least one secret is needed"))
	}
	if slices.Contains(a.Secrets, "") {
		errs = append(errs, errors.New("secrets: empty secret"))
	}
	if a.MaxBody < 0 {
		errs = append(errs, errors.New("max_body must not be negative"))
	}
	return errors.Join(errs...)
}

// authError is a refusal of the bearer check: 401 or 403.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// ServeHTTP answers an API request. It is a terminal handler: next is never
// called. It checks the bearer secret, finds the hub, and hands the request
// to an emitapi.Handler over the hub's server.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if err := a.authorize(r); err != nil {
		if err.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="socketio_api"`)
		}
		a.logger.Debug("api request refused", zap.String("remote", r.RemoteAddr), zap.String("reason", err.msg))
		emitapi.WriteError(w, err.status, err.msg)
		return nil
	}
	h := lookupHub(a.Hub)
	if h == nil {
		emitapi.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("socket.io hub %q is not running", a.Hub))
		return nil
	}
	emitapi.New(h.server, a.emitOptions(h)).ServeHTTP(w, r)
	return nil
}

// emitOptions are the emitapi options of this API over hub h: its body
// bound, its logger, and how the sockets listing reads the module's state.
func (a *API) emitOptions(h *hub) emitapi.Options {
	o := emitapi.Options{
		MaxBody: a.MaxBody,
		Logger:  a.logger,
		Subject: h.socketSubject,
		Data:    h.socketHookData,
	}
	if h.policy.Load().presence != nil {
		o.Presence = h.socketPresence
	}
	return o
}

// listedState is the module's state of a listed socket, nil when the
// socket is gone (or not on this node).
func (h *hub) listedState(info realtime.SocketInfo) *socketState {
	ns, ok := h.server.Namespace(info.Namespace)
	if !ok {
		return nil
	}
	s, ok := ns.Socket(info.ID)
	if !ok {
		return nil
	}
	st, _ := s.Local().(*socketState)
	return st
}

// socketSubject is the "sub" claim of the token a socket connected with,
// or "".
func (h *hub) socketSubject(info realtime.SocketInfo) string {
	st := h.listedState(info)
	if st == nil {
		return ""
	}
	sub, _ := st.getClaims()["sub"].(string)
	return sub
}

// socketHookData is the data the connect webhook stored for a socket, or
// nil.
func (h *hub) socketHookData(info realtime.SocketInfo) any {
	if st := h.listedState(info); st != nil {
		return st.getHookData()
	}
	return nil
}

// authorize checks the bearer secret against every configured one, in
// constant time.
func (a *API) authorize(r *http.Request) *authError {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return &authError{http.StatusUnauthorized, "missing bearer secret (Authorization: Bearer <secret>)"}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for i := range a.secrets {
		match |= subtle.ConstantTimeCompare(sum[:], a.secrets[i][:])
	}
	if match != 1 {
		return &authError{http.StatusForbidden, "wrong bearer secret"}
	}
	return nil
}

// lookupHub finds a running hub by name without taking a reference.
func lookupHub(name string) *hub {
	var found *hub
	hubs.Range(func(k, v any) bool {
		if k == name {
			found, _ = v.(*hub)
			return false
		}
		return true
	})
	return found
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.Validator             = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
