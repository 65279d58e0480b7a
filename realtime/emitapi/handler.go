package emitapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

// Defaults and bounds.
const (
	// DefaultMaxBody is the request body bound when Options.MaxBody is not
	// set.
	DefaultMaxBody = 1 << 20
	// DefaultAckTimeout is how long an emit with acks waits for the
	// replies when the request gives no timeout.
	DefaultAckTimeout = 5 * time.Second
	// MaxAckTimeout bounds how long an emit with acks holds its HTTP
	// request.
	MaxAckTimeout = 60 * time.Second
	// MaxRooms bounds the room names of one field of one request (to,
	// except, rooms, or the room and except query parameters).
	MaxRooms = 1000
)

// Options configure a Handler. The zero value is usable.
type Options struct {
	// MaxBody bounds a request body, in bytes; a larger one gets 413.
	// Zero or less means DefaultMaxBody.
	MaxBody int64

	// Logger gets a debug entry for every request answered with 200. Nil
	// means no logging.
	Logger *zap.Logger

	// Subject returns what GET .../sockets lists as a socket's "subject"
	// (omitted when empty), e.g. the "sub" claim of its token. Nil lists
	// none.
	Subject func(realtime.SocketInfo) string

	// Data returns what GET .../sockets lists as a socket's "data"
	// (omitted when nil), e.g. what a webhook stored for it. Nil lists
	// none: a socket's data may hold what a backend should not see.
	Data func(realtime.SocketInfo) any

	// Presence returns the user a socket counts for in presence ("" when
	// none), for GET .../presence. Nil: that endpoint answers 404.
	Presence func(realtime.SocketInfo) string
}

// Handler answers emit API requests against one realtime.Server. It is
// safe for concurrent use, and cheap enough to make per request.
type Handler struct {
	server *realtime.Server
	opts   Options
}

// New returns a Handler driving srv.
func New(srv *realtime.Server, opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Handler{server: srv, opts: opts}
}

// routes maps an endpoint to the method it takes.
var routes = map[string]string{
	"emit":       http.MethodPost,
	"join":       http.MethodPost,
	"leave":      http.MethodPost,
	"disconnect": http.MethodPost,
	"sockets":    http.MethodGet,
	"rooms":      http.MethodGet,
	"presence":   http.MethodGet,
}

// Route returns the endpoint a request path names: its last segment once
// the path is lowercased and cleaned as Caddy's path matcher sees it, so
// that a matcher in front of the Handler (basic_auth /api/emit, say) and
// the Handler agree on which endpoint "/api/x/../emit", "/api//EMIT/" or
// "/api/emit/." is. A path naming no segment gives ".".
func Route(p string) string {
	return path.Base(strings.TrimSuffix(cleanPath(strings.ToLower(p)), "/"))
}

// cleanPath is path.Clean (which also merges doubled slashes) keeping a
// trailing slash, as Caddy cleans a path before matching it.
func cleanPath(p string) string {
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// ServeHTTP answers one request: it routes, decodes, runs and writes the
// JSON answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, out := h.handle(w, r)
	writeJSON(w, status, out)
}

func (h *Handler) handle(w http.ResponseWriter, r *http.Request) (int, any) {
	route := Route(r.URL.Path)
	method, ok := routes[route]
	if !ok {
		return http.StatusNotFound, errorBody(fmt.Sprintf("unknown endpoint %q (want emit, join, leave, disconnect, sockets, rooms or presence)", route))
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return http.StatusMethodNotAllowed, errorBody(fmt.Sprintf("%s takes %s, not %s", route, method, r.Method))
	}
	var (
		out any
		err error
	)
	if method == http.MethodGet {
		out, err = h.get(r, route)
	} else {
		var body []byte
		body, err = readBody(w, r, h.opts.MaxBody)
		if err == nil {
			out, err = h.post(r.Context(), route, body)
		}
	}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
		}
		return ae.status, errorBody(ae.msg)
	}
	if ce := h.opts.Logger.Check(zap.DebugLevel, "api request"); ce != nil {
		ce.Write(zap.String("endpoint", route), zap.String("remote", r.RemoteAddr))
	}
	return http.StatusOK, out
}

// apiError is an answer other than 200, written as {"error": "..."}.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func errorBody(msg string) map[string]any { return map[string]any{"error": msg} }

// WriteError writes {"error": msg} with status and the headers of every
// answer of the Handler, for the refusals of what stands in front of it
// (authentication, a server that is not running).
func WriteError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody(msg))
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", limit)
		}
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
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

func (h *Handler) namespace(name string) (*realtime.Namespace, error) {
	ns, ok := h.server.Namespace(name)
	if !ok {
		return nil, errorf(http.StatusNotFound, "unknown namespace %q", name)
	}
	return ns, nil
}

// post runs a POST endpoint.
func (h *Handler) post(ctx context.Context, route string, body []byte) (any, error) {
	req, err := decodeRequest(route, body)
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
				return nil, failed("emitting", err)
			}
			return map[string]any{"ok": true}, nil
		}
		timeout := DefaultAckTimeout
		if req.Timeout != nil {
			timeout = time.Duration(*req.Timeout)
		}
		replies, err := op.Timeout(timeout).EmitWithAck(ctx, req.Event, req.Args...)
		timedOut := errors.Is(err, realtime.ErrAckTimeout)
		if err != nil && !timedOut {
			if ctx.Err() != nil {
				return nil, errorf(http.StatusServiceUnavailable, "request ended before the replies: %v", ctx.Err())
			}
			return nil, failed("emitting", err)
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
			err = req.operator(ns).SocketsJoin(ctx, req.Rooms...)
		} else {
			err = req.operator(ns).SocketsLeave(ctx, req.Rooms...)
		}
		if err != nil {
			return nil, failed(route+"ing rooms", err)
		}
		return map[string]any{"ok": true}, nil
	case *disconnectRequest:
		ns, err := h.namespace(req.Namespace)
		if err != nil {
			return nil, err
		}
		if err := req.operator(ns).DisconnectSockets(ctx, req.Close); err != nil {
			return nil, failed("disconnecting sockets", err)
		}
		return map[string]any{"ok": true}, nil
	}
	return nil, errorf(http.StatusNotFound, "unknown endpoint %q", route)
}

// failed is the answer to an operation that did not complete: 503 when
// the other nodes of a cluster could not be reached (or did not answer in
// time; the local part was done), 400 otherwise (the request itself was
// refused, e.g. a reserved event name).
func failed(doing string, err error) error {
	if errors.Is(err, realtime.ErrClusterUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return errorf(http.StatusServiceUnavailable, "%s: %v", doing, err)
	}
	return errorf(http.StatusBadRequest, "%s: %v", doing, err)
}

// countRooms sizes the rooms of the listed sockets (of every node, so the
// sizes are the cluster's), leaving out each socket's own id-room.
func countRooms(infos []realtime.SocketInfo) []roomEntry {
	sizes := make(map[string]int)
	for _, info := range infos {
		for _, r := range info.Rooms {
			if r != info.ID {
				sizes[r]++
			}
		}
	}
	rooms := make([]roomEntry, 0, len(sizes))
	for name, size := range sizes {
		rooms = append(rooms, roomEntry{Name: name, Size: size})
	}
	slices.SortFunc(rooms, func(x, y roomEntry) int { return strings.Compare(x.Name, y.Name) })
	return rooms
}

// socketEntry is one entry of GET .../sockets.
type socketEntry struct {
	ID        string   `json:"id"`
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Subject   string   `json:"subject,omitempty"`
	Transport string   `json:"transport,omitempty"`
	Address   string   `json:"address,omitempty"`
	Data      any      `json:"data,omitempty"`
}

// roomEntry is one entry of GET .../rooms.
type roomEntry struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// get runs a GET endpoint; the query holds namespace, room (repeatable)
// and except (repeatable).
func (h *Handler) get(r *http.Request, route string) (any, error) {
	q := r.URL.Query()
	t := &apiTarget{Namespace: q.Get("namespace"), To: q["room"], Except: q["except"]}
	if err := t.check(); err != nil {
		return nil, err
	}
	ns, err := h.namespace(t.Namespace)
	if err != nil {
		return nil, err
	}
	if route == "presence" && h.opts.Presence == nil {
		return nil, errorf(http.StatusNotFound, "presence is not configured for this server")
	}
	infos, err := t.operator(ns).FetchSockets(r.Context())
	if err != nil {
		return nil, failed("listing "+route, err)
	}
	if route == "rooms" {
		return map[string]any{"rooms": countRooms(infos)}, nil
	}
	if route == "presence" {
		return map[string]any{"users": h.users(infos)}, nil
	}
	out := make([]socketEntry, 0, len(infos))
	for _, info := range infos {
		s := socketEntry{
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
		if h.opts.Subject != nil {
			s.Subject = h.opts.Subject(info)
		}
		if h.opts.Data != nil {
			s.Data = h.opts.Data(info)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y socketEntry) int { return strings.Compare(x.ID, y.ID) })
	return map[string]any{"sockets": out}, nil
}

// users lists, sorted and each once, the users that the sockets count
// for in presence: who is online among the selected sockets.
func (h *Handler) users(infos []realtime.SocketInfo) []string {
	seen := make(map[string]struct{})
	out := []string{}
	for _, info := range infos {
		u := h.opts.Presence(info)
		if _, dup := seen[u]; dup || u == "" {
			continue
		}
		seen[u] = struct{}{}
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}
