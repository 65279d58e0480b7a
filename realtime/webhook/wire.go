package webhook

import "encoding/json"

// Body is the JSON every call carries.
type Body struct {
	// Type is "connect", "event" or "disconnect", the same as HookHeader;
	// or "online" or "offline" for a presence call, which carries only
	// User.
	Type      string `json:"type"`
	Namespace string `json:"namespace,omitempty"`
	Socket    string `json:"socket,omitempty"`
	Event     string `json:"event,omitempty"`
	// Args are the event's arguments (binary ones as base64 strings).
	Args []any `json:"args,omitzero"`
	// Ack tells whether the client waits for an acknowledgement.
	Ack bool `json:"ack,omitempty"`
	// Reason is why a socket disconnected.
	Reason string `json:"reason,omitempty"`
	// Recovered, on a connect call, says the socket is a session its
	// client recovered (connection state recovery): same socket id, rooms
	// and data as before it dropped.
	Recovered bool `json:"recovered,omitempty"`
	// Recoverable, on a disconnect call, says the socket's session is
	// kept for recovery: its client may come back as the same socket
	// (a connect call with recovered true follows then).
	Recoverable bool `json:"recoverable,omitempty"`
	// User, on a presence call, is the user who came online or went
	// offline.
	User string `json:"user,omitempty"`
	// Rooms are the socket's rooms, sorted, its own room left out; never
	// null on a socket's call, absent on a presence call.
	Rooms []string `json:"rooms,omitzero"`
	// Claims are the verified JWT claims, when auth is on.
	Claims map[string]any `json:"claims,omitempty"`
	// Data is what the connect hook attached to the socket.
	Data any `json:"data,omitempty"`
	// Auth and Query are the handshake's, on a connect call; the raw token
	// is never among them.
	Auth  map[string]any    `json:"auth,omitempty"`
	Query map[string]string `json:"query,omitempty"`
	// Headers and Cookies are the handshake values the config names.
	Headers map[string]string `json:"headers,omitempty"`
	Cookies map[string]string `json:"cookies,omitempty"`
	// Address is the client's address.
	Address string `json:"address,omitempty"`
	// Identity is what the host server knew of the handshake request, by
	// name; in Caddy the {http.*} placeholders the config uses, such as
	// "http.auth.user.id" set by basic_auth.
	Identity map[string]string `json:"identity,omitempty"`
}

// Reply is what a backend may answer. Every field is optional.
type Reply struct {
	// Ack is the list of arguments of the client's ack.
	Ack json.RawMessage `json:"ack"`
	// Error refuses a connect, or becomes the ack [{"error": <Error>}].
	Error json.RawMessage `json:"error"`
	// Rooms and Data are a connect hook's acceptance.
	Rooms []string        `json:"rooms"`
	Data  json.RawMessage `json:"data"`
	// Actions run on the socket, in order (a disconnect last).
	Actions []Action `json:"actions"`
}

// Action is one thing a reply asks done on the socket.
type Action struct {
	// Join and Leave are rooms the socket joins or leaves.
	Join  []string `json:"join"`
	Leave []string `json:"leave"`
	// Emit sends an event.
	Emit *EmitAction `json:"emit"`
	// Disconnect, when true, disconnects the socket after the ack.
	Disconnect *bool `json:"disconnect"`
}

// EmitAction is an event emitted by a reply's action.
type EmitAction struct {
	// Rooms to emit to; none means the socket itself.
	Rooms  []string `json:"rooms"`
	Except []string `json:"except"`
	Event  string   `json:"event"`
	Args   []any    `json:"args"`
}
