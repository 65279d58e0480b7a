package socketio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

func init() {
	caddy.RegisterModule(API{})
}

// API defaults and bounds.
const (
	DefaultAPIMaxBody    = 1 << 20
	DefaultAPIAckTimeout = 5 * time.Second
	// MaxAPIAckTimeout bounds how long an emit with acks holds its HTTP
	// request.
	MaxAPIAckTimeout = 60 * time.Second
	// maxAPIRooms bounds the room names of one request.
	maxAPIRooms = 1000
)

// API is an HTTP emit API for a socketio hub: a backend pushes events to
// rooms, moves sockets between rooms, disconnects them and lists them, with
// one authenticated JSON request. Mount it where the public cannot reach it
// (an internal listener or path); it answers every request it gets, routing
// on the last path segment: POST .../emit, .../join, .../leave,
// .../disconnect, GET .../sockets, .../rooms.
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
			a.logger.Warn("socket.io api secret is shorter than 16 bytes; use a long random value")
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

// apiError is an answer other than 200, written as {"error": "..."}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func apiErrorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// apiRoute is the endpoint a request path names: its last segment once the
// path is cleaned and lowercased as Caddy's path matcher sees it, so that a
// matcher in front of the API (basic_auth /api/emit, say) and the API agree
// on which endpoint "/api/x/../emit" or "/api/EMIT/." is.
func apiRoute(p string) string {
	return path.Base(strings.TrimSuffix(caddyhttp.CleanPath(strings.ToLower(p), true), "/"))
}

// apiRoutes maps the last path segment to the method it takes.
var apiRoutes = map[string]string{
	"emit":       http.MethodPost,
	"join":       http.MethodPost,
	"leave":      http.MethodPost,
	"disconnect": http.MethodPost,
	"sockets":    http.MethodGet,
	"rooms":      http.MethodGet,
}

// ServeHTTP answers an API request. It is a terminal handler: next is never
// called.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if err := a.authorize(r); err != nil {
		if err.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="socketio_api"`)
		}
		a.logger.Debug("socket.io api request refused", zap.String("remote", r.RemoteAddr), zap.String("reason", err.msg))
		writeAPIJSON(w, err.status, map[string]any{"error": err.msg})
		return nil
	}
	h := lookupHub(a.Hub)
	if h == nil {
		writeAPIJSON(w, http.StatusServiceUnavailable, map[string]any{"error": fmt.Sprintf("socket.io hub %q is not running", a.Hub)})
		return nil
	}
	a.serve(w, r, h)
	return nil
}

// serve answers an authorized request against hub h.
func (a *API) serve(w http.ResponseWriter, r *http.Request, h *hub) {
	status, out := a.handle(w, r, h)
	writeAPIJSON(w, status, out)
}

func (a *API) handle(w http.ResponseWriter, r *http.Request, h *hub) (int, any) {
	route := apiRoute(r.URL.Path)
	method, ok := apiRoutes[route]
	if !ok {
		return http.StatusNotFound, map[string]any{"error": fmt.Sprintf("unknown endpoint %q (want emit, join, leave, disconnect, sockets or rooms)", route)}
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return http.StatusMethodNotAllowed, map[string]any{"error": fmt.Sprintf("%s takes %s, not %s", route, method, r.Method)}
	}
	var (
		out any
		err error
	)
	if method == http.MethodGet {
		out, err = a.get(r, h, route)
	} else {
		var body []byte
		body, err = readAPIBody(w, r, a.maxBody())
		if err == nil {
			out, err = a.post(r.Context(), h, route, body)
		}
	}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
		}
		return ae.status, map[string]any{"error": ae.msg}
	}
	if ce := a.logger.Check(zap.DebugLevel, "socket.io api request"); ce != nil {
		ce.Write(zap.String("endpoint", route), zap.String("remote", r.RemoteAddr))
	}
	return http.StatusOK, out
}

func (a *API) maxBody() int64 {
	if a.MaxBody <= 0 {
		return DefaultAPIMaxBody
	}
	return a.MaxBody
}

// authorize checks the bearer secret against every configured one, in
// constant time.
func (a *API) authorize(r *http.Request) *apiError {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return apiErrorf(http.StatusUnauthorized, "missing bearer secret (Authorization: Bearer <secret>)")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for i := range a.secrets {
		match |= subtle.ConstantTimeCompare(sum[:], a.secrets[i][:])
	}
	if match != 1 {
		return apiErrorf(http.StatusForbidden, "wrong bearer secret")
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

func readAPIBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiErrorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		}
		return nil, apiErrorf(http.StatusBadRequest, "reading body: %v", err)
	}
	return body, nil
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encoding the answer failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// apiTarget selects sockets: those in any of To (rooms or socket ids;
// everyone when empty), minus those in any of Except.
type apiTarget struct {
	Namespace string   `json:"namespace"`
	To        []string `json:"to"`
	Except    []string `json:"except"`
}

// emitRequest is the body of POST .../emit.
type emitRequest struct {
	apiTarget
	Event    string       `json:"event"`
	Args     []any        `json:"args"`
	Volatile bool         `json:"volatile"`
	Ack      bool         `json:"ack"`
	Timeout  *apiDuration `json:"timeout"`
}

// roomsRequest is the body of POST .../join and .../leave.
type roomsRequest struct {
	apiTarget
	Rooms []string `json:"rooms"`
}

// disconnectRequest is the body of POST .../disconnect.
type disconnectRequest struct {
	apiTarget
	Close bool `json:"close"`
}

// apiDuration is a duration as a string ("1.5s") or milliseconds (1500).
type apiDuration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *apiDuration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := caddy.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout: %v", err)
		}
		*d = apiDuration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil || ms != ms || ms > float64(MaxAPIAckTimeout/time.Millisecond)*2 || ms < -1e9 {
		return fmt.Errorf("timeout: want a duration string or milliseconds, got %s", b)
	}
	*d = apiDuration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// decodeAPIRequest decodes and checks the body of a POST endpoint. Every
// failure is a 400 whose message says what is wrong.
func decodeAPIRequest(route string, body []byte) (any, error) {
	var (
		dst    any
		target *apiTarget
	)
	switch route {
	case "emit":
		req := &emitRequest{}
		dst, target = req, &req.apiTarget
	case "join", "leave":
		req := &roomsRequest{}
		dst, target = req, &req.apiTarget
	case "disconnect":
		req := &disconnectRequest{}
		dst, target = req, &req.apiTarget
	default:
		return nil, apiErrorf(http.StatusNotFound, "unknown endpoint %q", route)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, apiErrorf(http.StatusBadRequest, "empty body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, apiErrorf(http.StatusBadRequest, "bad JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apiErrorf(http.StatusBadRequest, "bad JSON body: data after the object")
	}
	if err := target.check(); err != nil {
		return nil, err
	}
	switch req := dst.(type) {
	case *emitRequest:
		if req.Event == "" {
			return nil, apiErrorf(http.StatusBadRequest, "event: an event name is needed")
		}
		if parser.IsReservedEvent(req.Event) {
			return nil, apiErrorf(http.StatusBadRequest, "event: %q is reserved by Socket.IO", req.Event)
		}
		if req.Timeout != nil {
			if !req.Ack {
				return nil, apiErrorf(http.StatusBadRequest, "timeout: only with \"ack\": true")
			}
			if t := time.Duration(*req.Timeout); t <= 0 || t > MaxAPIAckTimeout {
				return nil, apiErrorf(http.StatusBadRequest, "timeout: want more than 0 and at most %v", MaxAPIAckTimeout)
			}
		}
	case *roomsRequest:
		if len(req.Rooms) == 0 {
			return nil, apiErrorf(http.StatusBadRequest, "rooms: at least one room is needed")
		}
		if err := checkRooms("rooms", req.Rooms); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func (t *apiTarget) check() error {
	if t.Namespace == "" {
		t.Namespace = "/"
	}
	if !strings.HasPrefix(t.Namespace, "/") {
		return apiErrorf(http.StatusBadRequest, "namespace: %q must start with /", t.Namespace)
	}
	if err := checkRooms("to", t.To); err != nil {
		return err
	}
	return checkRooms("except", t.Except)
}

func checkRooms(field string, rooms []string) error {
	if len(rooms) > maxAPIRooms {
		return apiErrorf(http.StatusBadRequest, "%s: more than %d rooms", field, maxAPIRooms)
	}
	for _, r := range rooms {
		if r == "" {
			return apiErrorf(http.StatusBadRequest, "%s: empty room name", field)
		}
	}
	return nil
}

func (h *hub) namespace(name string) (*realtime.Namespace, error) {
	ns, ok := h.server.Namespace(name)
	if !ok {
		return nil, apiErrorf(http.StatusNotFound, "unknown namespace %q", name)
	}
	return ns, nil
}

func (t *apiTarget) operator(ns *realtime.Namespace) realtime.BroadcastOperator {
	return ns.To(t.To...).Except(t.Except...)
}

// post runs a POST endpoint.
func (a *API) post(ctx context.Context, h *hub, route string, body []byte) (any, error) {
	req, err := decodeAPIRequest(route, body)
	if err != nil {
		return nil, err
	}
	switch req := req.(type) {
	case *emitRequest:
		ns, err := h.namespace(req.Namespace)
		if err != nil {
			return nil, err
		}
		op := req.operator(ns)
		if req.Volatile {
			op = op.Volatile()
		}
		if !req.Ack {
			if err := op.Emit(req.Event, req.Args...); err != nil {
				return nil, apiErrorf(http.StatusBadRequest, "emitting: %v", err)
			}
			return map[string]any{"ok": true}, nil
		}
		timeout := DefaultAPIAckTimeout
		if req.Timeout != nil {
			timeout = time.Duration(*req.Timeout)
		}
		replies, err := op.Timeout(timeout).EmitWithAck(ctx, req.Event, req.Args...)
		timedOut := errors.Is(err, realtime.ErrAckTimeout)
		if err != nil && !timedOut {
			if ctx.Err() != nil {
				return nil, apiErrorf(http.StatusServiceUnavailable, "request ended before the replies: %v", ctx.Err())
			}
			return nil, apiErrorf(http.StatusBadRequest, "emitting: %v", err)
		}
		if replies == nil {
			replies = [][]any{}
		}
		return map[string]any{"ok": true, "replies": replies, "timed_out": timedOut}, nil
	case *roomsRequest:
		ns, err := h.namespace(req.Namespace)
		if err != nil {
			return nil, err
		}
		if route == "join" {
			req.operator(ns).SocketsJoin(req.Rooms...)
		} else {
			req.operator(ns).SocketsLeave(req.Rooms...)
		}
		return map[string]any{"ok": true}, nil
	case *disconnectRequest:
		ns, err := h.namespace(req.Namespace)
		if err != nil {
			return nil, err
		}
		req.operator(ns).DisconnectSockets(req.Close)
		return map[string]any{"ok": true}, nil
	}
	return nil, apiErrorf(http.StatusNotFound, "unknown endpoint %q", route)
}

// apiSocket is one entry of GET .../sockets.
type apiSocket struct {
	ID        string   `json:"id"`
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Subject   string   `json:"subject,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Address   string   `json:"address,omitempty"`
	Data      any      `json:"data,omitempty"`
}

// apiRoom is one entry of GET .../rooms.
type apiRoom struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// get runs a GET endpoint; the query holds namespace, room (repeatable)
// and except (repeatable).
func (a *API) get(r *http.Request, h *hub, route string) (any, error) {
	q := r.URL.Query()
	t := &apiTarget{Namespace: q.Get("namespace"), To: q["room"], Except: q["except"]}
	if err := t.check(); err != nil {
		return nil, err
	}
	ns, err := h.namespace(t.Namespace)
	if err != nil {
		return nil, err
	}
	if route == "rooms" {
		rooms := []apiRoom{}
		for name, size := range ns.Rooms() {
			if _, isSocket := ns.Socket(name); isSocket {
				continue // a socket's own id-room
			}
			rooms = append(rooms, apiRoom{Name: name, Size: size})
		}
		slices.SortFunc(rooms, func(x, y apiRoom) int { return strings.Compare(x.Name, y.Name) })
		return map[string]any{"rooms": rooms}, nil
	}
	infos, err := t.operator(ns).FetchSockets(r.Context())
	if err != nil {
		return nil, apiErrorf(http.StatusInternalServerError, "listing sockets: %v", err)
	}
	out := make([]apiSocket, 0, len(infos))
	for _, info := range infos {
		s := apiSocket{
			ID:        info.ID,
			Namespace: info.Namespace,
			Rooms:     slices.DeleteFunc(slices.Clone(info.Rooms), func(r string) bool { return r == info.ID }),
			Transport: info.Transport,
		}
		if s.Rooms == nil {
			s.Rooms = []string{}
		}
		slices.Sort(s.Rooms)
		if info.Handshake != nil {
			s.Address = info.Handshake.Address
		}
		if c, ok := info.Data[claimsKey].(auth.Claims); ok {
			s.Subject, _ = c["sub"].(string)
		}
		s.Data = info.Data[webhookDataKey]
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y apiSocket) int { return strings.Compare(x.ID, y.ID) })
	return map[string]any{"sockets": out}, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.Validator             = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
