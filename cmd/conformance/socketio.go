package main

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// connectTimeout is the socket.io-protocol suite's connectTimeout.
const connectTimeout = time.Second

// socketIOHandler returns the /socket.io/ server of the socket.io-protocol
// suite (shared/PROTOCOL.md section 3) and a function that closes it: "/"
// and "/custom" emit "auth" with the CONNECT payload, "message" is answered
// with "message-back", "message-with-ack" is acked with its own arguments,
// and every other namespace is refused.
func socketIOHandler(logger *zap.Logger) (http.Handler, func()) {
	srv := realtime.NewServer(realtime.Options{
		Engine: engineio.Options{
			PingInterval:   pingInterval,
			PingTimeout:    pingTimeout,
			MaxPayload:     maxPayload,
			AllowedOrigins: []string{"*"},
		},
		ConnectTimeout: connectTimeout,
		Logger:         logger,
	})
	for _, name := range []string{"/", "/custom"} {
		srv.Of(name).OnConnection(func(s *realtime.Socket) {
			auth := s.Handshake().Auth
			if auth == nil {
				auth = map[string]any{}
			}
			_ = s.Emit("auth", auth)
			s.On("message", func(s *realtime.Socket, args []any, _ realtime.AckFunc) {
				_ = s.Emit("message-back", args...)
			})
			s.On("message-with-ack", func(_ *realtime.Socket, args []any, ack realtime.AckFunc) {
				if ack != nil {
					_ = ack(args...)
				}
			})
		})
	}
	return srv, srv.Close
}
