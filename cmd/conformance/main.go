// Command conformance serves the servers that the official Engine.IO and
// Socket.IO protocol test suites expect (docs/conformance.md): an echo
// Engine.IO server at /engine.io/ and a Socket.IO server at /socket.io/, on
// one address. `make conformance SUITES=<dir>` runs the suites against it.
//
//	go run ./cmd/conformance --addr 127.0.0.1:3000
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
)

// Timings the suites hard-code.
const (
	pingInterval = 300 * time.Millisecond
	pingTimeout  = 200 * time.Millisecond
	maxPayload   = 1_000_000
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	debug := flag.Bool("debug", false, "log every request and packet")
	flag.Parse()

	logger := zap.NewNop()
	if *debug {
		l, err := zap.NewDevelopment()
		if err != nil {
			log.Fatalf("creating logger: %v", err)
		}
		logger = l
	}

	eio := newEchoServer(logger)
	sio, closeSIO := socketIOHandler(logger)

	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eio)
	mux.Handle("/socket.io/", sio)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("conformance server listening on %s", *addr)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serving: %v", err)
		}
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	eio.Close()
	closeSIO()
}

// newEchoServer is the /engine.io/ server of the engine.io-protocol suite:
// every message goes back as it came, text as text, binary as binary.
func newEchoServer(logger *zap.Logger) *engineio.Server {
	return engineio.NewServer(engineio.Options{
		PingInterval:   pingInterval,
		PingTimeout:    pingTimeout,
		MaxPayload:     maxPayload,
		AllowedOrigins: []string{"*"},
		Logger:         logger,
		OnSession: func(s *engineio.Session) {
			s.SetHandler(echo{s})
		},
	})
}

type echo struct{ s *engineio.Session }

func (e echo) OnMessage(data []byte, binary bool) {
	m := engineio.TextMessage(data)
	if binary {
		m = engineio.BinaryMessage(data)
	}
	_ = e.s.Send(m)
}

func (echo) OnClose(string) {}
