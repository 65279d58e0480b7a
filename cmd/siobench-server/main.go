// Command siobench-server is the Go side of the side-by-side benchmarks: the
// realtime engine configured like testdata/bench/node-server.cjs, so that
// cmd/sioload measures both servers on the same contract.
//
// Contract: Socket.IO at /socket.io/, ping 25s/20s; a connection joins the
// room named by its handshake query "room"; event "publish"(room, payload)
// broadcasts "msg"(payload) to that room; event "echo" acks with its args.
//
// Usage: siobench-server [-addr 127.0.0.1:3001] [-redis redis://...]
// [-no-park] [-cpuprofile file]; prints "listening <port>" when ready and nothing per message.
// With -redis the namespace uses the Redis adapter (a node of a cluster,
// for the cross-node fan-out bench, testdata/bench/cluster.sh). -no-park
// keeps a goroutine blocked in every websocket's read (engineio.Options
// DisableParking), the fallback of TLS and non-Linux platforms, to measure
// it against parking.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/engineio"
	"github.com/caddy-socketio/caddy-socketio/realtime/redisadapter"
)

// Heartbeat of the bench contract, equal to the Node server's.
const (
	pingInterval = 25 * time.Second
	pingTimeout  = 20 * time.Second
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3001", "listen address")
	redisURL := flag.String("redis", "", "Redis URL: join a cluster with the Redis adapter")
	noPark := flag.Bool("no-park", false, "keep a goroutine blocked in every websocket's read")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "siobench-server:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	if err := run(*addr, *redisURL, *noPark); err != nil {
		fmt.Fprintln(os.Stderr, "siobench-server:", err)
		os.Exit(1) //nolint:gocritic // the profile of a failed run is not wanted
	}
}

// startCPUProfile profiles the process until the returned func runs (on
// SIGINT or SIGTERM, when run returns).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path) //nolint:gosec // a path the developer gives
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func run(addr, redisURL string, noPark bool) error {
	opts := realtime.Options{
		Engine: engineio.Options{PingInterval: pingInterval, PingTimeout: pingTimeout, DisableParking: noPark},
		// No event rate limit, as the other bench servers have none
		// (caddy.Caddyfile turns it off): the echo scenario sends over
		// 500 events a second per client on a fast machine, and the
		// default limit then disconnects every client.
		EventRate: -1,
	}
	if redisURL != "" {
		ro, err := redis.ParseURL(redisURL)
		if err != nil {
			return fmt.Errorf("parsing the redis URL: %w", err)
		}
		cl, err := redisadapter.New(redisadapter.Options{Client: redis.NewClient(ro)})
		if err != nil {
			return err
		}
		defer cl.Close()
		opts.NewAdapter = cl.NewAdapter
	}
	srv := realtime.NewServer(opts)
	defer srv.Close()
	nsp := srv.Of("/")
	nsp.OnConnection(func(s *realtime.Socket) {
		if room := s.Handshake().Query.Get("room"); room != "" {
			if err := s.Join(room); err != nil {
				fmt.Fprintf(os.Stderr, "joining %q: %v\n", room, err)
			}
		}
		s.On("publish", func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
			if len(args) == 0 {
				return
			}
			room, _ := args[0].(string)
			_ = nsp.To(room).Emit("msg", args[1:]...) // a failed delivery is the load tool's to count
		})
		s.On("echo", func(s *realtime.Socket, args []any, ack realtime.AckFunc) {
			if ack != nil {
				_ = ack(args...)
			}
		})
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Shutdown does not close hijacked websockets; srv.Close (deferred) does.
	_ = hs.Shutdown(shutdownCtx)
	return nil
}
