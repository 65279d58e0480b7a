// Package realtime is a Socket.IO v5 server (on Engine.IO v4) for plain
// net/http programs. It speaks to the official socket.io-client 3.x and 4.x.
//
// A Server is an http.Handler mounted at the Socket.IO path. Namespaces hold
// sockets; an Adapter holds the rooms of a namespace and delivers broadcasts.
// Handlers and middlewares of one connection run on that connection's reader
// goroutine, one at a time and in order, as Node runs them on its event loop:
// they must not block for long. Emitting is safe from any goroutine.
//
// The package never imports Caddy: the Caddy module at the repository root
// translates its configuration into Options and drives a Server.
package realtime
