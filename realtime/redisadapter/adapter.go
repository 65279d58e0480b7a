package redisadapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Request types of the classic wire format (socket.io-redis-adapter 8.3's
// RequestType).
const (
	typeSockets          = 0 // legacy (adapter < 8): socket ids of rooms
	typeAllRooms         = 1
	typeRemoteJoin       = 2
	typeRemoteLeave      = 3
	typeRemoteDisconnect = 4
	typeRemoteFetch      = 5
	typeServerSideEmit   = 6
	typeBroadcast        = 7 // broadcast with acks
	typeBroadcastCount   = 8
	typeBroadcastAck     = 9
)

// errTimeout is wrapped by a request that did not get every node's answer
// in time (with realtime.ErrClusterUnavailable).
var errTimeout = errors.New("timeout reached")

// Adapter is the realtime.Adapter of one namespace in a Cluster: the
// namespace's local rooms (the embedded MemoryAdapter), and the other
// nodes reached over Redis.
type Adapter struct {
	*realtime.MemoryAdapter
	c    *Cluster
	nsp  *realtime.Namespace
	name string

	base, pattern                           string // broadcast channel "<key>#<nsp>#" and its pattern
	reqChannel, respChannel, ownRespChannel string

	closed atomic.Bool
}

func (a *Adapter) initChannels() {
	key := a.c.opts.Key
	a.base = key + "#" + a.name + "#"
	a.pattern = escapeGlob(a.base) + "*"
	a.reqChannel = key + "-request#" + a.name + "#"
	a.respChannel = key + "-response#" + a.name + "#"
	a.ownRespChannel = a.respChannel + a.c.uid + "#"
}

// escapeGlob quotes the characters PSUBSCRIBE patterns give a meaning.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close implements realtime.Adapter: the namespace's channels are
// unsubscribed once no adapter of that name is left.
func (a *Adapter) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	a.c.release(a)
	return nil
}

// wireOpts is the opts object of broadcasts and requests.
func wireOpts(opts realtime.BroadcastOptions, withFlags bool) map[string]any {
	m := map[string]any{
		"rooms":  stringsOrEmpty(opts.Rooms),
		"except": stringsOrEmpty(opts.Except),
	}
	if withFlags {
		flags := map[string]any{}
		if opts.Flags.Volatile {
			flags["volatile"] = true
		}
		if opts.Flags.Timeout > 0 {
			flags["timeout"] = opts.Flags.Timeout.Milliseconds()
		}
		m["flags"] = flags
	}
	return m
}

func stringsOrEmpty(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// channelFor is where a broadcast to opts goes: the room's own channel
// when there is exactly one room (a socket id counts), as Node chooses.
func (a *Adapter) channelFor(opts realtime.BroadcastOptions) string {
	if len(opts.Rooms) == 1 {
		return a.base + opts.Rooms[0] + "#"
	}
	return a.base
}

// wirePacket is the packet of a broadcast as Node publishes it.
func (a *Adapter) wirePacket(p *parser.Packet) map[string]any {
	return map[string]any{"type": int64(parser.Event), "data": p.Data, "nsp": a.name}
}

// Broadcast implements realtime.Adapter: delivered here, then published
// (unless Local). An error wrapping realtime.ErrClusterUnavailable means
// the other nodes were not reached.
func (a *Adapter) Broadcast(p *parser.Packet, opts realtime.BroadcastOptions) error {
	if err := a.MemoryAdapter.Broadcast(p, opts); err != nil {
		return err
	}
	if opts.Flags.Local || a.closed.Load() {
		return nil
	}
	payload, err := encodeMsgpack([]any{a.c.uid, a.wirePacket(p), wireOpts(opts, true)})
	if err != nil {
		return fmt.Errorf("broadcasting to the other nodes: %w", err)
	}
	if len(payload) > MaxMessageBytes {
		return fmt.Errorf("broadcasting to the other nodes: %d bytes, at most %d", len(payload), MaxMessageBytes)
	}
	return a.c.enqueue(publication{channel: a.channelFor(opts), payload: payload, kind: "broadcast"})
}

// BroadcastWithAck implements realtime.Adapter: the local sockets count at
// once; every other node answers with its count (type 8) and forwards its
// sockets' acks (type 9). onClientCount is called once, when every node
// has told its count or when the timeout passes.
func (a *Adapter) BroadcastWithAck(p *parser.Packet, opts realtime.BroadcastOptions, onClientCount func(int), onAck func([]any)) error {
	timeout := opts.Flags.Timeout
	if timeout <= 0 {
		timeout = a.c.opts.RequestTimeout
	}
	local, err := a.BroadcastWithAckLocal(p, opts, onAck)
	if err != nil {
		return err
	}
	if opts.Flags.Local {
		onClientCount(local)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	servers, err := a.c.serverCount(ctx, a.reqChannel)
	if err != nil || servers <= 1 {
		onClientCount(local)
		if err != nil {
			a.c.requestFailed("broadcast_ack")
		}
		return err
	}
	id := newUID()
	var (
		mu     sync.Mutex
		once   sync.Once
		total  = local
		counts int
	)
	report := func() {
		mu.Lock()
		n := total
		mu.Unlock()
		once.Do(func() { onClientCount(n) })
	}
	a.c.addPending(a.name, id, func(m map[string]any) {
		t, _ := intOf(m["type"])
		switch t {
		case typeBroadcastCount:
			n, ok := intOf(m["clientCount"])
			if !ok || n < 0 {
				return
			}
			mu.Lock()
			total += int(n)
			counts++
			all := counts >= servers-1
			mu.Unlock()
			if all {
				report()
			}
		case typeBroadcastAck:
			onAck([]any{forClients(m["packet"], 0)})
		}
	})
	packet := a.wirePacket(p)
	payload, err := encodeMsgpack(map[string]any{
		"uid": a.c.uid, "requestId": id, "type": int64(typeBroadcast),
		"packet": map[string]any{"type": packet["type"], "data": packet["data"], "nsp": a.name},
		"opts":   wireOpts(realtime.BroadcastOptions{Rooms: opts.Rooms, Except: opts.Except, Flags: realtime.BroadcastFlags{Volatile: opts.Flags.Volatile, Timeout: timeout}}, true),
	})
	if err == nil {
		err = a.c.publishWait(ctx, a.reqChannel, payload, "request")
	}
	if err != nil {
		a.c.removePending(a.name, id)
		a.c.requestFailed("broadcast_ack")
		onClientCount(local)
		return err
	}
	// Acks keep coming until the timeout; then the request is forgotten
	// and a count still missing is reported as it stands.
	time.AfterFunc(timeout, func() {
		a.c.removePending(a.name, id)
		mu.Lock()
		missing := counts < servers-1
		mu.Unlock()
		if missing {
			a.c.requestFailed("broadcast_ack")
		}
		report()
	})
	return nil
}

// request publishes a request expecting one answer per other node and
// calls handle for each (serialised) until every node answered or ctx
// ends. It returns nil at once when this node is alone.
func (a *Adapter) request(ctx context.Context, name string, build func(id string) ([]byte, error), handle func(map[string]any)) error {
	ctx, cancel := context.WithTimeout(ctx, a.c.opts.RequestTimeout)
	defer cancel()
	servers, err := a.c.serverCount(ctx, a.reqChannel)
	if err != nil {
		a.c.requestFailed(name)
		return err
	}
	if servers <= 1 {
		return nil
	}
	want := servers - 1
	id := newUID()
	done := make(chan struct{})
	var (
		mu  sync.Mutex
		got int
	)
	a.c.addPending(a.name, id, func(m map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if got >= want {
			return
		}
		handle(m)
		got++
		if got == want {
			close(done)
		}
	})
	defer a.c.removePending(a.name, id)
	payload, err := build(id)
	if err != nil {
		return err
	}
	if err := a.c.publishWait(ctx, a.reqChannel, payload, "request"); err != nil {
		a.c.requestFailed(name)
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.c.requestFailed(name)
		mu.Lock()
		n := got
		mu.Unlock()
		return unavailable(fmt.Sprintf("waiting for the other nodes (%s)", name),
			fmt.Errorf("%w: only %d responses received out of %d", errTimeout, n, want))
	}
}

func jsonRequest(m map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// FetchSockets implements realtime.Adapter: the local sockets, and every
// other node's (Remote set). With an error (a node did not answer in
// time, or Redis is down) the sockets found so far come with it.
func (a *Adapter) FetchSockets(ctx context.Context, opts realtime.BroadcastOptions) ([]realtime.SocketInfo, error) {
	out, _ := a.MemoryAdapter.FetchSockets(ctx, opts)
	if opts.Flags.Local {
		return out, nil
	}
	var (
		mu     sync.Mutex
		remote []realtime.SocketInfo
	)
	err := a.request(ctx, "fetch_sockets", func(id string) ([]byte, error) {
		return jsonRequest(map[string]any{"uid": a.c.uid, "requestId": id, "type": typeRemoteFetch, "opts": wireOpts(opts, false)})
	}, func(m map[string]any) {
		found := a.remoteSockets(m["sockets"])
		mu.Lock()
		remote = append(remote, found...)
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return append(out, remote...), err
}

// remoteSockets reads the sockets of a fetchSockets answer.
func (a *Adapter) remoteSockets(v any) []realtime.SocketInfo {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]realtime.SocketInfo, 0, len(list))
	for _, e := range list {
		b, err := json.Marshal(normalize(e, 0))
		if err != nil {
			continue
		}
		var info realtime.SocketInfo
		if json.Unmarshal(b, &info) != nil || info.ID == "" {
			continue
		}
		info.Namespace, info.Remote = a.name, true
		out = append(out, info)
	}
	return out
}

// AllRooms implements realtime.Adapter.
func (a *Adapter) AllRooms(ctx context.Context) ([]string, error) {
	seen := make(map[string]struct{})
	for r := range a.Rooms() {
		seen[r] = struct{}{}
	}
	var mu sync.Mutex
	err := a.request(ctx, "all_rooms", func(id string) ([]byte, error) {
		return jsonRequest(map[string]any{"uid": a.c.uid, "requestId": id, "type": typeAllRooms})
	}, func(m map[string]any) {
		rooms, _ := stringList(m["rooms"])
		mu.Lock()
		for _, r := range rooms {
			seen[r] = struct{}{}
		}
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	return out, err
}

// remote publishes a request that expects no answer (remote join, leave,
// disconnect), after it was applied here. Node's classic adapter applies
// these only when its own request comes back; this node applies them at
// once and drops its own echo (same uid), so each socket is acted on
// exactly once either way.
func (a *Adapter) remote(ctx context.Context, name string, m map[string]any) error {
	m["uid"] = a.c.uid
	payload, err := jsonRequest(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, a.c.opts.RequestTimeout)
	defer cancel()
	if err := a.c.publishWait(ctx, a.reqChannel, payload, "request"); err != nil {
		a.c.requestFailed(name)
		return err
	}
	return nil
}

// AddSockets implements realtime.Adapter.
func (a *Adapter) AddSockets(ctx context.Context, opts realtime.BroadcastOptions, rooms []string) error {
	_ = a.MemoryAdapter.AddSockets(ctx, opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	return a.remote(ctx, "remote_join", map[string]any{"type": typeRemoteJoin, "opts": wireOpts(opts, false), "rooms": stringsOrEmpty(rooms)})
}

// DelSockets implements realtime.Adapter.
func (a *Adapter) DelSockets(ctx context.Context, opts realtime.BroadcastOptions, rooms []string) error {
	_ = a.MemoryAdapter.DelSockets(ctx, opts, rooms)
	if opts.Flags.Local {
		return nil
	}
	return a.remote(ctx, "remote_leave", map[string]any{"type": typeRemoteLeave, "opts": wireOpts(opts, false), "rooms": stringsOrEmpty(rooms)})
}

// DisconnectSockets implements realtime.Adapter.
func (a *Adapter) DisconnectSockets(ctx context.Context, opts realtime.BroadcastOptions, close bool) error {
	_ = a.MemoryAdapter.DisconnectSockets(ctx, opts, close)
	if opts.Flags.Local {
		return nil
	}
	return a.remote(ctx, "remote_disconnect", map[string]any{"type": typeRemoteDisconnect, "opts": wireOpts(opts, false), "close": close})
}

// ServerSideEmit implements realtime.Adapter: type 6, JSON unless the
// arguments hold binary (msgpack then, which Node reads too).
func (a *Adapter) ServerSideEmit(ctx context.Context, args []any, onReply func(any)) error {
	build := func(id string) ([]byte, error) {
		m := map[string]any{"uid": a.c.uid, "type": int64(typeServerSideEmit), "data": args}
		if id != "" {
			m["requestId"] = id
		}
		if hasBinary(args, 0) {
			return encodeMsgpack(m)
		}
		return jsonRequest(m)
	}
	if onReply == nil {
		payload, err := build("")
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, a.c.opts.RequestTimeout)
		defer cancel()
		if err := a.c.publishWait(ctx, a.reqChannel, payload, "request"); err != nil {
			a.c.requestFailed("server_side_emit")
			return err
		}
		return nil
	}
	err := a.request(ctx, "server_side_emit", build, func(m map[string]any) {
		onReply(forClients(m["data"], 0))
	})
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("%w: %w", realtime.ErrAckTimeout, err)
	}
	return err
}

func hasBinary(v any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// onBroadcast applies a message of the broadcast channels.
func (a *Adapter) onBroadcast(channel string, payload []byte) {
	rec := a.c.recording()
	if room, ok := strings.CutPrefix(channel, a.base); ok && room != "" {
		room = strings.TrimSuffix(room, "#")
		// Nobody here is in the room: nothing to decode (Node does the
		// same), unless it may be a recorded event, whose place in the
		// stream this node must learn (recovery.go).
		if !a.HasRoom(room) && rec == nil {
			return
		}
	}
	v, err := decodeMsgpack(payload)
	if err != nil {
		a.c.dropped("malformed", "broadcast did not decode", channel, len(payload), err)
		return
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 2 {
		a.c.dropped("malformed", "broadcast is not [uid, packet, opts]", channel, len(payload), nil)
		return
	}
	uid, _ := arr[0].(string)
	recorded := false
	if len(arr) > 3 {
		recorded, _ = arr[3].(bool)
	}
	if uid == a.c.uid && (!recorded || rec == nil) {
		return // delivered here when it was sent
	}
	packet, ok := arr[1].(map[string]any)
	if !ok {
		a.c.dropped("malformed", "broadcast packet is not an object", channel, len(payload), nil)
		return
	}
	if nsp, ok := packet["nsp"].(string); ok && nsp != a.name {
		return
	}
	data, ok := packet["data"].([]any)
	if !ok || len(data) == 0 {
		a.c.dropped("malformed", "broadcast packet has no data", channel, len(payload), nil)
		return
	}
	var optsMap map[string]any
	if len(arr) > 2 {
		optsMap, _ = arr[2].(map[string]any)
	}
	opts, ok := readOpts(optsMap)
	if !ok {
		a.c.dropped("malformed", "broadcast opts are not lists of rooms", channel, len(payload), nil)
		return
	}
	event := forClients(data, 0)
	msgs, err := realtime.EncodeBroadcast(&parser.Packet{Type: parser.Event, Namespace: a.name, ID: parser.NoID, Data: event})
	if err != nil {
		a.c.dropped("malformed", "broadcast packet does not encode", channel, len(payload), err)
		return
	}
	a.c.received("broadcast")
	d := realtime.Delivery{Messages: msgs, Volatile: opts.Flags.Volatile, Event: asList(event)}
	if recorded && rec != nil {
		// A recorded event: delivered in the stream's order, and noted as
		// the last this node delivered, under the recovery lock.
		last, _ := data[len(data)-1].(string)
		if id, ok := ParseOffset(last); ok {
			a.nsp.WithRecoveryLock(func() {
				rec.markDelivered(a.name, id)
				a.nsp.DeliverLocal(a.Select(opts), d)
			})
			return
		}
	}
	a.nsp.DeliverLocal(a.Select(opts), d)
}

// readOpts reads {rooms, except, flags}; every part may be missing (other
// emitters leave them out).
func readOpts(m map[string]any) (realtime.BroadcastOptions, bool) {
	var opts realtime.BroadcastOptions
	if m == nil {
		return opts, true
	}
	rooms, ok1 := stringList(m["rooms"])
	except, ok2 := stringList(m["except"])
	if !ok1 || !ok2 {
		return opts, false
	}
	opts.Rooms, opts.Except = rooms, except
	if flags, ok := m["flags"].(map[string]any); ok {
		opts.Flags.Volatile, _ = flags["volatile"].(bool)
		if ms, ok := intOf(flags["timeout"]); ok && ms > 0 {
			opts.Flags.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	return opts, true
}

// onRequest answers or applies a request of another node or an emitter.
// Every request type that expects an answer gets one, even empty: Node
// counts its peers with NUMSUB and waits for each.
func (a *Adapter) onRequest(payload []byte) {
	m, err := decodePayload(payload)
	if err != nil {
		a.c.dropped("malformed", "request did not decode", a.reqChannel, len(payload), err)
		return
	}
	uid, _ := m["uid"].(string)
	if uid == a.c.uid {
		return // ours: applied when it was sent
	}
	typ, ok := intOf(m["type"])
	if !ok {
		a.c.dropped("malformed", "request has no type", a.reqChannel, len(payload), nil)
		return
	}
	id, _ := m["requestId"].(string)
	bad := func(what string) {
		a.c.dropped("malformed", fmt.Sprintf("request of type %d: %s", typ, what), a.reqChannel, len(payload), nil)
	}
	needID := func() bool {
		if id == "" {
			bad("no requestId")
			return false
		}
		return true
	}
	reply := func(m map[string]any) { a.reply(uid, m, false) }
	switch typ {
	case typeSockets: // legacy
		if !needID() {
			return
		}
		rooms, ok := stringList(m["rooms"])
		if !ok {
			bad("rooms is not a list")
			return
		}
		ids := a.Sockets(rooms)
		reply(map[string]any{"requestId": id, "sockets": stringsOrEmpty(ids)})
	case typeAllRooms:
		if !needID() {
			return
		}
		rooms := []any{}
		for r := range a.Rooms() {
			rooms = append(rooms, r)
		}
		reply(map[string]any{"requestId": id, "rooms": rooms})
	case typeRemoteJoin, typeRemoteLeave:
		if sid, ok := m["sid"].(string); ok { // legacy: one socket, one room
			room, _ := m["room"].(string)
			if room == "" {
				bad("no room")
				return
			}
			if s, ok := a.nsp.Socket(sid); ok {
				if typ == typeRemoteJoin {
					_ = s.Join(room)
				} else {
					s.Leave(room)
				}
			}
			if id != "" {
				reply(map[string]any{"requestId": id})
			}
			break
		}
		opts, ok := readOpts(asMap(m["opts"]))
		rooms, ok2 := stringList(m["rooms"])
		if m["opts"] == nil || !ok || !ok2 {
			bad("no opts or rooms")
			return
		}
		if typ == typeRemoteJoin {
			_ = a.MemoryAdapter.AddSockets(context.Background(), opts, rooms)
		} else {
			_ = a.MemoryAdapter.DelSockets(context.Background(), opts, rooms)
		}
	case typeRemoteDisconnect:
		closeAll, _ := m["close"].(bool)
		if sid, ok := m["sid"].(string); ok { // legacy
			if s, ok := a.nsp.Socket(sid); ok {
				s.Disconnect(closeAll)
			}
			if id != "" {
				reply(map[string]any{"requestId": id})
			}
			break
		}
		opts, ok := readOpts(asMap(m["opts"]))
		if m["opts"] == nil || !ok {
			bad("no opts")
			return
		}
		_ = a.MemoryAdapter.DisconnectSockets(context.Background(), opts, closeAll)
	case typeRemoteFetch:
		opts, ok := readOpts(asMap(m["opts"]))
		if !needID() {
			return
		}
		if m["opts"] == nil || !ok {
			bad("no opts")
			return
		}
		infos, _ := a.MemoryAdapter.FetchSockets(context.Background(), opts)
		sockets := make([]any, 0, len(infos))
		for _, info := range infos {
			sockets = append(sockets, info)
		}
		reply(map[string]any{"requestId": id, "sockets": sockets})
	case typeServerSideEmit:
		data, ok := m["data"].([]any)
		if !ok || len(data) == 0 {
			bad("no data")
			return
		}
		var ack func(any)
		if id != "" {
			ack = func(v any) {
				a.reply(uid, map[string]any{"type": int64(typeServerSideEmit), "requestId": id, "data": v}, hasBinary(v, 0))
			}
		}
		a.c.received("request")
		a.nsp.HandleServerSideEmit(forClients(data, 0).([]any), ack)
		return
	case typeBroadcast:
		if !needID() {
			return
		}
		packet, ok := m["packet"].(map[string]any)
		optsMap := asMap(m["opts"])
		if !ok || optsMap == nil {
			bad("no packet or opts")
			return
		}
		data, ok := packet["data"].([]any)
		opts, ok2 := readOpts(optsMap)
		if !ok || len(data) == 0 || !ok2 {
			bad("no packet data, or opts are not lists of rooms")
			return
		}
		if opts.Flags.Timeout <= 0 {
			opts.Flags.Timeout = a.c.opts.RequestTimeout
		}
		p := &parser.Packet{Type: parser.Event, Namespace: a.name, Data: forClients(data, 0)}
		n, err := a.BroadcastWithAckLocal(p, opts, func(args []any) {
			var first any
			if len(args) > 0 {
				first = args[0]
			}
			a.reply(uid, map[string]any{"type": int64(typeBroadcastAck), "requestId": id, "packet": first}, true)
		})
		if err != nil {
			bad("packet does not encode")
			n = 0
		}
		reply(map[string]any{"type": int64(typeBroadcastCount), "requestId": id, "clientCount": n})
	case typeRecoveryTakeOver:
		if !needID() {
			return
		}
		pid, _ := m["pid"].(string)
		if pid == "" || len(pid) > MaxPIDLength {
			bad("no pid, or one too long")
			return
		}
		a.onTakeOver(uid, id, pid)
	default:
		a.c.dropped("unknown_type", fmt.Sprintf("request of unknown type %d", typ), a.reqChannel, len(payload), nil)
		return
	}
	a.c.received("request")
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// reply publishes an answer to a request of node uid: on that node's own
// response channel (every Node node subscribes to it), or the shared one
// for a request without uid. Answers holding binary go as msgpack.
func (a *Adapter) reply(uid string, m map[string]any, msgpack bool) {
	channel := a.respChannel
	if uid != "" && uid != EmitterUID {
		channel += uid + "#"
	}
	var (
		payload []byte
		err     error
	)
	if msgpack {
		payload, err = encodeMsgpack(m)
	} else {
		payload, err = jsonRequest(m)
	}
	if err != nil {
		a.c.log.Warn("encoding an answer", zap.String("namespace", a.name), zap.Error(err))
		return
	}
	_ = a.c.enqueue(publication{channel: channel, payload: payload, kind: "response"})
}

// onResponse hands an answer to the request waiting for it.
func (a *Adapter) onResponse(payload []byte) {
	m, err := decodePayload(payload)
	if err != nil {
		a.c.dropped("malformed", "response did not decode", a.respChannel, len(payload), err)
		return
	}
	id, _ := m["requestId"].(string)
	if id == "" {
		a.c.dropped("malformed", "response has no requestId", a.respChannel, len(payload), nil)
		return
	}
	if !a.c.answer(a.name, id, m) {
		return // not ours, or too late
	}
	a.c.received("response")
}

var (
	_ realtime.Adapter      = (*Adapter)(nil)
	_ realtime.BoundedAdder = (*Adapter)(nil)
)

// asList is v as a packet's data list (nil when it is not one).
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
