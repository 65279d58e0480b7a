package socketio

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// Admin API bounds.
const (
	// AdminPrefix is the path under which the admin routes are mounted on
	// Caddy's admin endpoint.
	AdminPrefix = "/socketio/"
	// DefaultAdminPageSize is the number of sockets or rooms a page lists
	// when the request gives no limit, and the rooms a hub's detail lists.
	DefaultAdminPageSize = 100
	// MaxAdminPageSize bounds the limit of a sockets or rooms page.
	MaxAdminPageSize = 1000
	// adminDefaultAlias is the path segment that names the default hub
	// (DefaultPath).
	adminDefaultAlias = "default"
)

// AdminAPI adds routes to Caddy's admin endpoint (localhost:2019 by
// default) that show the running socketio hubs and disconnect their
// sockets:
//
//	GET  /socketio/hubs
//	GET  /socketio/hubs/<hub>
//	GET  /socketio/hubs/<hub>/sockets?namespace=/&limit=100&after=<id>
//	POST /socketio/hubs/<hub>/sockets/<id>/disconnect?namespace=/&close=false
//
// <hub> is the hub's name as one URL-escaped path segment ("/" is %2F, so
// the default hub /socket.io/ is %2Fsocket.io%2F), or "default" for the
// default hub; see escapeHubName. The routes read the live hubs of this
// process, never the config, and see only this node's sockets.
//
// Caddy makes a new instance on every config load and never gives it
// config: all state lives in the hubs pool.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.socketio",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes: one prefix, routed by handleAdmin.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: AdminPrefix, Handler: caddy.AdminHandlerFunc(handleAdmin)}}
}

// escapeHubName is the path segment that names a hub in an admin URL: the
// name URL-escaped (url.PathEscape, so "/" is %2F). A name the segment
// could not carry as is ("." and "..", which path cleaning would resolve,
// and "default", the alias of the default hub) has every byte escaped.
func escapeHubName(name string) string {
	switch name {
	case "", ".", "..", adminDefaultAlias:
		var b strings.Builder
		for i := 0; i < len(name); i++ {
			fmt.Fprintf(&b, "%%%02X", name[i])
		}
		return b.String()
	}
	return url.PathEscape(name)
}

// unescapeHubName reverses escapeHubName; the raw segment "default" is
// the default hub.
func unescapeHubName(seg string) (string, error) {
	if seg == adminDefaultAlias {
		return DefaultPath, nil
	}
	return url.PathUnescape(seg)
}

// adminError is an admin API error: Caddy's admin endpoint answers it as
// {"error": "<message>"} with the status.
func adminError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// methodNotAllowed refuses a request whose method the route does not take.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return adminError(http.StatusMethodNotAllowed, "method %s not allowed (want %s)", r.Method, allow)
}

// handleAdmin routes an admin request on its escaped path, so that a %2F
// in a hub name stays inside its segment.
func handleAdmin(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), AdminPrefix)
	if !ok {
		return adminError(http.StatusNotFound, "not found")
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if segs[0] != "hubs" {
		return adminError(http.StatusNotFound, "unknown admin route %q (want %shubs...)", r.URL.Path, AdminPrefix)
	}
	if len(segs) == 1 {
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, http.MethodGet)
		}
		return writeAdminJSON(w, listHubs())
	}
	name, err := unescapeHubName(segs[1])
	if err != nil {
		return adminError(http.StatusBadRequest, "hub name %q: %v", segs[1], err)
	}
	switch {
	case len(segs) == 2:
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, http.MethodGet)
		}
		h, err := adminHub(name)
		if err != nil {
			return err
		}
		return writeAdminJSON(w, h.adminDetail(name))
	case len(segs) == 3 && (segs[2] == "sockets" || segs[2] == "rooms"):
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, r, http.MethodGet)
		}
		h, err := adminHub(name)
		if err != nil {
			return err
		}
		var page any
		if segs[2] == "sockets" {
			page, err = h.adminSockets(r.URL.Query())
		} else {
			page, err = h.adminRooms(r.URL.Query())
		}
		if err != nil {
			return err
		}
		return writeAdminJSON(w, page)
	case len(segs) == 5 && segs[2] == "sockets" && segs[4] == "disconnect":
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, r, http.MethodPost)
		}
		id, err := url.PathUnescape(segs[3])
		if err != nil {
			return adminError(http.StatusBadRequest, "socket id %q: %v", segs[3], err)
		}
		h, err := adminHub(name)
		if err != nil {
			return err
		}
		out, err := h.adminDisconnect(name, id, r.URL.Query())
		if err != nil {
			return err
		}
		return writeAdminJSON(w, out)
	}
	return adminError(http.StatusNotFound, "unknown admin route %q", r.URL.Path)
}

func writeAdminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// adminHub finds a running hub, or answers 404.
func adminHub(name string) (*hub, error) {
	if h := lookupHub(name); h != nil {
		return h, nil
	}
	return nil, adminError(http.StatusNotFound, "no running socket.io hub %q", name)
}

// adminHubSummary is one entry of GET /socketio/hubs.
type adminHubSummary struct {
	Name        string `json:"name"`
	AdminPath   string `json:"admin_path"` // this hub's admin route
	Connections int    `json:"connections"`
	Sockets     int    `json:"sockets"`
}

// listHubs lists the running hubs by name. The pool's lock is held only
// to copy them out.
func listHubs() map[string]any {
	type named struct {
		name string
		h    *hub
	}
	var found []named
	hubs.Range(func(k, v any) bool {
		name, _ := k.(string)
		if h, ok := v.(*hub); ok {
			found = append(found, named{name, h})
		}
		return true
	})
	slices.SortFunc(found, func(x, y named) int { return strings.Compare(x.name, y.name) })
	out := make([]adminHubSummary, 0, len(found))
	for _, f := range found {
		sockets := 0
		for _, ns := range f.h.server.Namespaces() {
			sockets += ns.Len()
		}
		out = append(out, adminHubSummary{
			Name:        f.name,
			AdminPath:   AdminPrefix + "hubs/" + escapeHubName(f.name),
			Connections: f.h.server.ConnCount(),
			Sockets:     sockets,
		})
	}
	return map[string]any{"hubs": out}
}

// adminNamespace is one namespace of GET /socketio/hubs/<hub>: its first
// DefaultAdminPageSize rooms; RoomsNext, when set, is the after of the
// next page of GET /socketio/hubs/<hub>/rooms.
type adminNamespace struct {
	Name      string      `json:"name"`
	Sockets   int         `json:"sockets"`
	RoomCount int         `json:"room_count"`
	Rooms     []adminRoom `json:"rooms"`
	RoomsNext string      `json:"rooms_next,omitempty"`
}

// adminRoom is a room and its size, as the engine pages them.
type adminRoom = realtime.RoomSize

// adminHubDetail is GET /socketio/hubs/<hub>.
type adminHubDetail struct {
	Name        string           `json:"name"`
	Connections int              `json:"connections"`
	Sockets     int              `json:"sockets"`
	Namespaces  []adminNamespace `json:"namespaces"`
}

// adminDetail describes the hub: its namespaces by name, each with its
// socket count, its room count and its first page of rooms by name
// (sockets' own id-rooms left out).
func (h *hub) adminDetail(name string) adminHubDetail {
	out := adminHubDetail{Name: name, Connections: h.server.ConnCount(), Namespaces: []adminNamespace{}}
	for _, ns := range h.server.Namespaces() {
		page := roomPageOf(ns, "", DefaultAdminPageSize)
		n := adminNamespace{Name: ns.Name(), Sockets: ns.Len(), RoomCount: page.Total, Rooms: page.Rooms, RoomsNext: page.Next}
		out.Sockets += n.Sockets
		out.Namespaces = append(out.Namespaces, n)
	}
	slices.SortFunc(out.Namespaces, func(x, y adminNamespace) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// adminSocket is one socket of GET /socketio/hubs/<hub>/sockets.
type adminSocket struct {
	ID             string    `json:"id"`
	Namespace      string    `json:"namespace"`
	Transport      string    `json:"transport"`
	Address        string    `json:"address"`
	Rooms          []string  `json:"rooms"`
	Subject        string    `json:"subject,omitempty"`
	ConnectedSince time.Time `json:"connected_since"`
}

// adminSocketPage is GET /socketio/hubs/<hub>/sockets: one page of a
// namespace's sockets in id order; Next, when set, is the after of the
// next page.
type adminSocketPage struct {
	Namespace string        `json:"namespace"`
	Total     int           `json:"total"`
	Sockets   []adminSocket `json:"sockets"`
	Next      string        `json:"next,omitempty"`
}

// adminRoomPage is GET /socketio/hubs/<hub>/rooms: one page of a
// namespace's rooms in name order; Next, when set, is the after of the
// next page.
type adminRoomPage struct {
	Namespace string      `json:"namespace"`
	Total     int         `json:"total"`
	Rooms     []adminRoom `json:"rooms"`
	Next      string      `json:"next,omitempty"`
}

// roomPageOf lists at most limit rooms of ns after after. The adapter
// walks its rooms once and keeps only the page (realtime.Namespace.RoomPage),
// so a namespace with a million rooms costs a walk, not a copy.
func roomPageOf(ns *realtime.Namespace, after string, limit int) *adminRoomPage {
	// One more than the page tells whether a next page exists.
	rooms, total := ns.RoomPage(after, limit+1)
	page := &adminRoomPage{Namespace: ns.Name(), Total: total, Rooms: []adminRoom{}}
	page.Rooms = append(page.Rooms, rooms[:min(limit, len(rooms))]...)
	if len(rooms) > limit {
		page.Next = rooms[limit-1].Name
	}
	return page
}

// adminRooms lists one page of a namespace's rooms, in name order: at
// most limit of them, those whose name sorts after after.
func (h *hub) adminRooms(q url.Values) (*adminRoomPage, error) {
	ns, limit, err := h.adminPageOf(q)
	if err != nil {
		return nil, err
	}
	return roomPageOf(ns, q.Get("after"), limit), nil
}

// adminPageOf reads what a page request names: the namespace (see
// adminNamespaceOf) and the limit, DefaultAdminPageSize when absent, at
// most MaxAdminPageSize.
func (h *hub) adminPageOf(q url.Values) (*realtime.Namespace, int, error) {
	limit := DefaultAdminPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAdminPageSize {
			return nil, 0, adminError(http.StatusBadRequest, "limit %q: want a number from 1 to %d", v, MaxAdminPageSize)
		}
		limit = n
	}
	ns, err := h.adminNamespaceOf(q)
	if err != nil {
		return nil, 0, err
	}
	return ns, limit, nil
}

// adminNamespaceOf finds the namespace a query names ("/" when none).
func (h *hub) adminNamespaceOf(q url.Values) (*realtime.Namespace, error) {
	name := q.Get("namespace")
	if name == "" {
		name = "/"
	}
	ns, ok := h.server.Namespace(name)
	if !ok {
		return nil, adminError(http.StatusNotFound, "no namespace %q in this hub", name)
	}
	return ns, nil
}

// adminSockets lists one page of a namespace's connected sockets, in id
// order: at most limit of them, those whose id sorts after after.
func (h *hub) adminSockets(q url.Values) (*adminSocketPage, error) {
	ns, limit, err := h.adminPageOf(q)
	if err != nil {
		return nil, err
	}
	after := q.Get("after")
	all := slices.DeleteFunc(ns.Sockets(), func(s *realtime.Socket) bool { return !s.Connected() })
	slices.SortFunc(all, func(x, y *realtime.Socket) int { return strings.Compare(x.ID(), y.ID()) })
	page := &adminSocketPage{Namespace: ns.Name(), Total: len(all), Sockets: []adminSocket{}}
	start, _ := slices.BinarySearchFunc(all, after, func(s *realtime.Socket, id string) int { return strings.Compare(s.ID(), id) })
	if start < len(all) && after != "" && all[start].ID() == after {
		start++
	}
	end := min(start+limit, len(all))
	for _, s := range all[start:end] {
		page.Sockets = append(page.Sockets, adminSocketOf(s))
	}
	if end < len(all) {
		page.Next = all[end-1].ID()
	}
	return page, nil
}

// adminSocketOf describes a socket: its rooms by name, its own id-room
// left out; the subject of the token it connected with.
func adminSocketOf(s *realtime.Socket) adminSocket {
	hs := s.Handshake()
	rooms := slices.DeleteFunc(s.Rooms(), func(r string) bool { return r == s.ID() })
	if rooms == nil {
		rooms = []string{}
	}
	slices.Sort(rooms)
	sub, _ := stateOf(s).getClaims()["sub"].(string)
	return adminSocket{
		ID:             s.ID(),
		Namespace:      s.Namespace().Name(),
		Transport:      s.Transport(),
		Address:        hs.Address,
		Rooms:          rooms,
		Subject:        sub,
		ConnectedSince: hs.Time.UTC().Truncate(time.Millisecond),
	}
}

// adminDisconnect disconnects one socket of the namespace the query names,
// as Node's socket.disconnect() does: the client gets a DISCONNECT and
// does not reconnect. With close=true every socket of its connection is
// disconnected and the connection closed (disconnect(true)).
func (h *hub) adminDisconnect(hubName, id string, q url.Values) (map[string]any, error) {
	closeConn := false
	if v := q.Get("close"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, adminError(http.StatusBadRequest, "close %q: want true or false", v)
		}
		closeConn = b
	}
	ns, err := h.adminNamespaceOf(q)
	if err != nil {
		return nil, err
	}
	s, ok := ns.Socket(id)
	if !ok || !s.Connected() {
		return nil, adminError(http.StatusNotFound, "no socket %q in namespace %q", id, ns.Name())
	}
	s.Disconnect(closeConn)
	h.policy.Load().logger.Info("socket disconnected by the admin API",
		zap.String("hub", hubName), zap.String("namespace", ns.Name()),
		zap.String("id", id), zap.Bool("close", closeConn))
	return map[string]any{"disconnected": true, "id": id, "namespace": ns.Name(), "close": closeConn}, nil
}

// Interface guards
var _ caddy.AdminRouter = (*AdminAPI)(nil)
