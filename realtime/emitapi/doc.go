// Package emitapi is the Caddy-free part of caddy-socketio's emit API: an
// http.Handler over a *realtime.Server with which a backend pushes events
// to rooms (with or without acknowledgements), moves sockets between
// rooms, disconnects them and lists sockets and rooms, one JSON request at
// a time. It never imports Caddy: the socketio_api module at the
// repository root authenticates the request, finds the hub's server and
// hands the rest to a Handler.
//
// The Handler routes on the last segment of the request path, lowercased
// and cleaned as Caddy's path matchers see it (see Route):
//
//	POST .../emit        {"namespace", "to", "except", "event", "args", "volatile", "ack", "timeout"}
//	POST .../join        {"namespace", "to", "except", "rooms"}
//	POST .../leave       {"namespace", "to", "except", "rooms"}
//	POST .../disconnect  {"namespace", "to", "except", "close"}
//	GET  .../sockets?namespace=/&room=r&except=t
//	GET  .../rooms?namespace=/
//
// Every answer is a JSON object; every error is {"error": "<what is
// wrong>"} with 400 (bad body), 404 (unknown endpoint or namespace), 405
// (wrong method, with Allow), 413 (body over Options.MaxBody), 503 (the
// request ended before the replies) or 500.
//
// The Handler does no authentication: mount it behind something that does.
package emitapi
