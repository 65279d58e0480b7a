package realtime

import (
	"errors"
	"net/url"
	"strings"

	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Socket.IO protocol v4, which socket.io-client 2.x speaks over Engine.IO
// v3 (engineio.Options.AllowEIO3). What differs from v5, as Node 4.x
// serves it (socket.io lib/index.ts, client.ts, socket.ts):
//
//   - the server connects the client to "/" as soon as the session
//     opens, whichever namespace it wants: "/" middlewares and connection
//     handlers run for every 2.x client, with an empty auth;
//   - a namespace CONNECT may carry a query, 40/chat?token=abc, which is
//     the auth of that socket (string values); no JSON payload;
//   - the CONNECT reply has no payload: 40, 40/chat,;
//   - a middleware refusal is 44 followed by the JSON of the error's data
//     if it has any, else of its message (a JSON string); an unknown
//     namespace still gets {"message":"Invalid namespace"};
//   - a socket's id is the Engine.IO session id on "/" and
//     "<namespace>#<session id>" elsewhere, which the 2.x client computes
//     on its own; so those ids are not 20 characters.
//
// Events, acks, binary attachments and DISCONNECT are encoded as in v5.

// isV3 reports whether a session speaks Engine.IO v3.
func isV3(sess session) bool {
	p, ok := sess.(interface{ Protocol() int })
	return ok && p.Protocol() == 3
}

// socketID is the id of a new socket of connection c in namespace nsp.
func socketID(c *conn, nsp string) string {
	if !c.v3 {
		return newID()
	}
	if nsp == "/" {
		return c.sess.ID()
	}
	return nsp + "#" + c.sess.ID()
}

// connectReplyData is the payload of the CONNECT reply: {"sid": id}, or
// none for a v3 client.
func connectReplyData(s *Socket) any {
	if s.conn.v3 {
		return nil // 2.x clients get a bare CONNECT (and no pid)
	}
	return s.connectReply()
}

// connectErrorData is the payload of a CONNECT_ERROR for a refusal by err.
func (c *conn) connectErrorData(err error) any {
	p := newConnectErrorPayload(err)
	if !c.v3 {
		return p
	}
	var ce *ConnectError
	if errors.As(err, &ce) && ce.Data != nil {
		// The parser takes an object or a string, as socket.io-parser
		// 4 does; other data (a number, an array) goes as the message.
		if _, _, encErr := parser.Encode(&parser.Packet{Type: parser.ConnectError, ID: parser.NoID, Data: ce.Data}); encErr == nil {
			return ce.Data
		}
	}
	return p.Message
}

// v3ConnectQuery moves the query of a v3 CONNECT's namespace into its
// auth: 40/chat?token=abc connects to /chat with auth {"token":"abc"}
// (Node: new URL(nsp).pathname and Object.fromEntries(searchParams), so the
// last of repeated keys wins). A v3 CONNECT has no JSON payload of its own.
func v3ConnectQuery(p *parser.Packet) {
	name, raw, ok := strings.Cut(p.Namespace, "?")
	if !ok {
		return
	}
	p.Namespace = name
	q, _ := url.ParseQuery(raw) // what parses is kept, as URLSearchParams does
	if len(q) == 0 {
		return
	}
	auth := make(map[string]any, len(q))
	for k, v := range q {
		auth[k] = v[len(v)-1]
	}
	p.Data = auth
}

// connectImplicit connects a v3 client to "/" as Node does on open, on
// the handshake's goroutine: the session is registered and has its
// handler, and nothing has been read from the client yet.
func (c *conn) connectImplicit() {
	c.connect(&parser.Packet{Type: parser.Connect, Namespace: "/", ID: parser.NoID})
}
