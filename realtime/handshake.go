package realtime

import (
	"net/http"
	"net/url"
	"time"
)

// Handshake describes how a socket connected: the Engine.IO handshake request
// and the CONNECT packet's auth payload. It mirrors socket.handshake in Node.
type Handshake struct {
	// Headers of the Engine.IO handshake request.
	Headers http.Header
	// Query of the Engine.IO handshake request (e.g. roomNumber).
	Query url.Values
	// Auth is the CONNECT payload (socket.io-client's auth option), nil if none.
	Auth map[string]any
	// Address is the TCP peer as http.Request.RemoteAddr has it.
	Address string
	// Time the socket connected.
	Time time.Time
	// URL is the request URI of the handshake request.
	URL string
	// Secure reports whether the handshake came over TLS.
	Secure bool
	// Request is the body-less handshake request. Its context is not the live
	// request's context, which ends when the HTTP exchange does.
	Request *http.Request
}

func newHandshake(r *http.Request, auth map[string]any) *Handshake {
	return &Handshake{
		Headers: r.Header,
		Query:   r.URL.Query(),
		Auth:    auth,
		Address: r.RemoteAddr,
		Time:    time.Now(),
		URL:     r.URL.RequestURI(),
		Secure:  r.TLS != nil,
		Request: r,
	}
}
