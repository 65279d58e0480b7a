package realtime

import "errors"

var (
	// ErrAckTimeout is returned by emits with an acknowledgement when the
	// client did not answer in time, as socket.io's "operation has timed out".
	ErrAckTimeout = errors.New("operation has timed out")
	// ErrSocketClosed is returned when emitting to, or awaiting an answer
	// from, a socket that has disconnected.
	ErrSocketClosed = errors.New("socket is disconnected")
	// ErrReservedEvent is returned when emitting an event name that the
	// Socket.IO client reserves for itself (connect, disconnect, ...).
	ErrReservedEvent = errors.New("reserved event name")
	// ErrAckUsed is returned by an AckFunc called a second time.
	ErrAckUsed = errors.New("ack already sent")
	// ErrTooManyRooms is returned by Socket.Join when the socket would be in
	// more rooms than Options.MaxRoomsPerSocket.
	ErrTooManyRooms = errors.New("too many rooms")
	// ErrRoomNameTooLong is returned by Socket.Join for a room name longer
	// than Options.MaxRoomNameLength.
	ErrRoomNameTooLong = errors.New("room name too long")
	// ErrInvalidNamespace refuses a CONNECT to a namespace that is not
	// served: Observer.OnRefused gets it, and a middleware may return it
	// (as the Caddy module's does); the client's connect_error says
	// "Invalid namespace", as Node's does.
	ErrInvalidNamespace = errors.New("Invalid namespace") //nolint:staticcheck // Node's connect_error text, capitalised
)

// ConnectError refuses a socket in a Middleware. The client receives a
// CONNECT_ERROR packet and sees it as a connect_error whose message is Message
// and whose data is Data.
type ConnectError struct {
	Message string
	Data    any
	// Cause, when set, is why the socket was refused, for the server's own
	// use (errors.Is, metrics); it never reaches the client.
	Cause error
}

func (e *ConnectError) Error() string { return e.Message }

// Unwrap returns the cause of the refusal, if any.
func (e *ConnectError) Unwrap() error { return e.Cause }

// connectErrorPayload is what goes on the wire for a refused CONNECT:
// {"message": "...", "data": ...}, in Node's key order, data omitted when nil.
type connectErrorPayload struct {
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func newConnectErrorPayload(err error) connectErrorPayload {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return connectErrorPayload{Message: ce.Message, Data: ce.Data}
	}
	return connectErrorPayload{Message: err.Error()}
}
