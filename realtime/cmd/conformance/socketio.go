package main

import (
	"net/http"

	"go.uber.org/zap"
)

// socketIOHandler returns the /socket.io/ server of the socket.io-protocol
// suite and a function that closes it.
//
// PLACEHOLDER: replace with the Socket.IO server (package realtime)
// configured as PROTOCOL.md section 3 describes: pingInterval 300ms,
// pingTimeout 200ms, maxPayload 1e6, CORS origin "*", connectTimeout 1s,
// namespaces "/" and "/custom" emitting "auth", "message" ->
// "message-back", "message-with-ack" -> ack with the same args.
func socketIOHandler(logger *zap.Logger) (http.Handler, func()) {
	_ = logger
	return http.NotFoundHandler(), func() {}
}
