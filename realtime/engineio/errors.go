package engineio

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Errors returned by Session.Send.
var (
	// ErrSessionClosed means the session is closed or closing; the message
	// was not queued.
	ErrSessionClosed = errors.New("engineio: session closed")
	// ErrQueueFull means the session's backlog would have passed
	// Options.MaxBufferedBytesHard; the messages were not queued and the
	// session is being closed with reason "write queue full".
	ErrQueueFull = errors.New("engineio: write queue full")
)

// Close reasons passed to Handler.OnClose, the same strings as Node.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonForcedClose    = "forced close"
	ReasonServerShutdown = "server shutting down"
	ReasonParseError     = "parse error"
	ReasonQueueFull      = "write queue full"
)

// requestError is a refusal of an HTTP request, with the Engine.IO error
// code and message that Node sends (engine.io Server.errors).
type requestError struct {
	code    int
	message string
}

var (
	errTransportUnknown    = requestError{0, "Transport unknown"}
	errSessionUnknown      = requestError{1, "Session ID unknown"}
	errBadHandshakeMethod  = requestError{2, "Bad handshake method"}
	errBadRequest          = requestError{3, "Bad request"}
	errForbidden           = requestError{4, "Forbidden"}
	errUnsupportedProtocol = requestError{5, "Unsupported protocol version"}
)

func (e requestError) status() int {
	if e.code == errForbidden.code {
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// write sends the refusal. Polling requests get Node's JSON body; a
// websocket upgrade request is refused before upgrading with a plain body
// holding only the message, as Node's abortUpgrade does.
func (e requestError) write(w http.ResponseWriter, upgrade bool) {
	h := w.Header()
	if upgrade {
		h.Set("Content-Type", "text/html")
		h.Set("Connection", "close")
		h.Set("Content-Length", strconv.Itoa(len(e.message)))
		w.WriteHeader(e.status())
		_, _ = w.Write([]byte(e.message))
		return
	}
	body := []byte(`{"code":`)
	body = strconv.AppendInt(body, int64(e.code), 10)
	body = append(body, `,"message":`...)
	msg, err := json.Marshal(e.message)
	if err != nil { // cannot happen for a string; keep the body valid anyway
		msg = []byte(`""`)
	}
	body = append(body, msg...)
	body = append(body, '}')
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status())
	_, _ = w.Write(body)
}
