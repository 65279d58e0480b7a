package emitapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// apiTarget selects sockets: those in any of To (rooms or socket ids;
// everyone when empty), minus those in any of Except. Its name is part of
// encoding/json's type errors ("emitRequest.apiTarget.to"), which answers
// quote: keep it.
type apiTarget struct {
	Namespace string   `json:"namespace"`
	To        []string `json:"to"`
	Except    []string `json:"except"`
}

// emitRequest is the body of POST .../emit.
type emitRequest struct {
	apiTarget
	Event    string    `json:"event"`
	Args     []any     `json:"args"`
	Volatile bool      `json:"volatile"`
	Ack      bool      `json:"ack"`
	Timeout  *duration `json:"timeout"`
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

// decodeRequest decodes and checks the body of a POST endpoint. Every
// failure is an *apiError: a 400 whose message says what is wrong, or a
// 404 for a route that is no POST endpoint.
func decodeRequest(route string, body []byte) (any, error) {
	var (
		dst any
		t   *apiTarget
	)
	switch route {
	case "emit":
		req := &emitRequest{}
		dst, t = req, &req.apiTarget
	case "join", "leave":
		req := &roomsRequest{}
		dst, t = req, &req.apiTarget
	case "disconnect":
		req := &disconnectRequest{}
		dst, t = req, &req.apiTarget
	default:
		return nil, errorf(http.StatusNotFound, "unknown endpoint %q", route)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errorf(http.StatusBadRequest, "empty body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, errorf(http.StatusBadRequest, "bad JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(http.StatusBadRequest, "bad JSON body: data after the object")
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	switch req := dst.(type) {
	case *emitRequest:
		if req.Event == "" {
			return nil, errorf(http.StatusBadRequest, "event: an event name is needed")
		}
		if parser.IsReservedEvent(req.Event) {
			return nil, errorf(http.StatusBadRequest, "event: %q is reserved by Socket.IO", req.Event)
		}
		if req.Timeout != nil {
			if !req.Ack {
				return nil, errorf(http.StatusBadRequest, "timeout: only with \"ack\": true")
			}
			if d := time.Duration(*req.Timeout); d <= 0 || d > MaxAckTimeout {
				return nil, errorf(http.StatusBadRequest, "timeout: want more than 0 and at most %v", MaxAckTimeout)
			}
		}
	case *roomsRequest:
		if len(req.Rooms) == 0 {
			return nil, errorf(http.StatusBadRequest, "rooms: at least one room is needed")
		}
		if err := checkRooms("rooms", req.Rooms); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// check fills in the default namespace and checks the selection.
func (t *apiTarget) check() error {
	if t.Namespace == "" {
		t.Namespace = "/"
	}
	if !strings.HasPrefix(t.Namespace, "/") {
		return errorf(http.StatusBadRequest, "namespace: %q must start with /", t.Namespace)
	}
	if err := checkRooms("to", t.To); err != nil {
		return err
	}
	return checkRooms("except", t.Except)
}

func checkRooms(field string, rooms []string) error {
	if len(rooms) > MaxRooms {
		return errorf(http.StatusBadRequest, "%s: more than %d rooms", field, MaxRooms)
	}
	for _, r := range rooms {
		if r == "" {
			return errorf(http.StatusBadRequest, "%s: empty room name", field)
		}
	}
	return nil
}

func (t *apiTarget) operator(ns *realtime.Namespace) realtime.BroadcastOperator {
	return ns.To(t.To...).Except(t.Except...)
}

// duration is a timeout as a string ("1.5s", or in days "0.0005d") or as
// milliseconds (1500).
type duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout: %v", err)
		}
		*d = duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil || ms != ms || ms > float64(MaxAckTimeout/time.Millisecond)*2 || ms < -1e9 {
		return fmt.Errorf("timeout: want a duration string or milliseconds, got %s", b)
	}
	*d = duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// maxDurationLen bounds a duration string.
const maxDurationLen = 1024

// parseDuration reads a duration as Caddy's configuration does, with the
// same errors: time.ParseDuration's units plus "d", 24 hours. Each number
// followed by d is rewritten in hours before time.ParseDuration reads the
// whole; scanning goes on from where that d was, so odd inputs ("1d1d",
// "0.50d1d") end up as Caddy has them too.
func parseDuration(s string) (time.Duration, error) {
	if len(s) > maxDurationLen {
		return 0, errors.New("parsing duration: input string too long")
	}
	start := 0       // where the number before s[i] starts
	numeric := false // whether s[i-1] may be part of a number
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'd' {
			days, err := strconv.ParseFloat(s[start:i], 64)
			if err != nil {
				return 0, err
			}
			hours := strconv.FormatFloat(days*24, 'f', -1, 64)
			s = s[:start] + hours + "h" + s[i+1:]
			i-- // the loop's i++ brings the scan back to where d was
			continue
		}
		if !numeric {
			start = i
		}
		numeric = c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+'
	}
	return time.ParseDuration(s)
}
