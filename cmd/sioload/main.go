// Command sioload drives a Socket.IO server (Engine.IO v4 / Socket.IO v5 over
// WebSocket) with the benchmark scenarios of testdata/bench and reports
// throughput, latency and the server's CPU and memory read from /proc. It
// speaks the wire protocol itself so that the client side costs the same
// whichever server is measured, and it only connects to loopback addresses.
//
// Usage:
//
//	sioload connect  [flags]   connect N clients, hold them idle
//	sioload fanout   [flags]   N subscribers in one room, one publisher
//	sioload echo     [flags]   C clients with W emits-with-ack in flight
//	sioload overload [flags]   fan-out beyond capacity, RSS every second
//	sioload compare [-names a,b,...] a.jsonl b.jsonl...
//
// The server contract (room query, "publish" and "echo" events) is described
// in testdata/bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// logOut receives progress lines; results go to stdout.
var logOut io.Writer = os.Stderr

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sioload:", err)
		os.Exit(1)
	}
}

func usage() error {
	return errors.New("usage: sioload connect|fanout|echo|overload [flags] | sioload compare [-names a,b,...] a.jsonl b.jsonl...")
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usage()
	}
	name, args := args[0], args[1:]
	if name == "compare" {
		return runCompare(args, stdout)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "server host:port (loopback only)")
	path := fs.String("path", "/socket.io/", "Socket.IO path")
	pids := fs.String("server-pid", "", "server process ids, comma-separated and summed, for RSS and CPU from /proc (empty: none)")
	useTLS := fs.Bool("tls", false, "connect with wss:// (the certificate is not verified: loopback only)")
	addr2 := fs.String("addr2", "", "fanout: a second server (another node of a cluster) that every other subscriber connects to; the publisher stays on -addr")
	pid2 := fs.Int("server-pid2", 0, "the -addr2 server's process id; its CPU and RSS are added (the same as a second -server-pid)")
	label := fs.String("label", "", "name of the server under test, copied into the result")
	as := fs.String("as", "", "scenario name in the result, to tell two runs of one scenario apart (compare.sh: fanout5k)")
	jsonOut := fs.Bool("json", false, "print the result as one JSON line instead of a table")
	conc := fs.Int("concurrency", 200, "connection handshakes in flight")
	dialTimeout := fs.Duration("dial-timeout", 10*time.Second, "timeout of one client's connect")
	limit := fs.Duration("timeout", 5*time.Minute, "hard limit for the whole run")

	n := fs.Int("n", 0, "clients (connect, fanout, overload: subscribers)")
	hold := fs.Duration("hold", 5*time.Second, "connect: idle time before measuring RSS")
	rate := fs.Float64("rate", 0, "fanout/overload: publishes per second")
	dur := fs.Duration("duration", 10*time.Second, "fanout/echo/overload: measured window (sweep: per step)")
	drain := fs.Duration("drain", 3*time.Second, "max wait for in-flight messages after the window")
	pad := fs.Int("pad", 64, "payload pad bytes")
	room := fs.String("room", "r1", "fanout/overload: room name")
	sample := fs.Int("sample", 1, "fanout/overload: time every k-th delivery only")
	sweep := fs.Bool("sweep", false, "fanout: raise the rate step by step to find saturation")
	sweepFactor := fs.Float64("sweep-factor", 2, "fanout sweep: rate multiplier per step")
	sweepSteps := fs.Int("sweep-steps", 8, "fanout sweep: max steps")
	sweepP99 := fs.Duration("sweep-max-p99", time.Second, "fanout sweep: p99 above this is not sustained")
	relay := fs.Bool("relay", false, "fanout/overload: the server relays \"publish\" to the sender's rooms (Caddy's relay rule): the publisher joins the room and subscribers count \"publish\" events")
	echoEvent := fs.String("echo-event", "echo", "echo: event emitted with an ack (\"join\" for Caddy's room_requests)")
	echoArg := fs.String("echo-arg", "", "echo: JSON argument sent instead of the stamp and pad (e.g. '\"e\"' for a room request)")
	clients := fs.Int("clients", 50, "echo: clients")
	window := fs.Int("window", 10, "echo: emits with ack outstanding per client")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file (to tell a client-bound run from a server-bound one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile) //nolint:gosec // a path the operator gives on the command line
		if err != nil {
			return fmt.Errorf("creating the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	defaults := map[string]struct {
		n    int
		rate float64
	}{
		"connect": {1000, 0}, "fanout": {1000, 10}, "echo": {0, 0}, "overload": {5000, 100},
	}
	d, ok := defaults[name]
	if !ok {
		return usage()
	}
	if *n == 0 {
		*n = d.n
	}
	if *rate == 0 {
		*rate = d.rate
	}
	if err := validate(name, *n, *rate, *dur, *clients, *window, *conc, *sweepFactor, *sweepSteps); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := checkLoopback(ctx, *addr); err != nil {
		return err
	}
	if *addr2 != "" {
		if err := checkLoopback(ctx, *addr2); err != nil {
			return err
		}
	}
	initClockTicks()
	co := common{
		Target: target{Addr: *addr, Path: *path, TLS: *useTLS}, Label: *label,
		Concurrency: *conc, DialTimeout: *dialTimeout,
	}
	if *addr2 != "" {
		co.Target2 = &target{Addr: *addr2, Path: *path, TLS: *useTLS}
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if v, err := strconv.Atoi(p); err != nil || v <= 0 {
			return fmt.Errorf("-server-pid: %q is not a process id", p)
		}
		co.Watch.pids = append(co.Watch.pids, p)
	}
	if *pid2 > 0 {
		co.Watch.pids = append(co.Watch.pids, strconv.Itoa(*pid2))
	}
	if len(co.Watch.pids) > 0 {
		if _, ok := co.Watch.server(); !ok {
			return fmt.Errorf("reading /proc of %s: no such process", *pids)
		}
	}
	fp := fanoutParams{N: *n, Room: *room, Rate: *rate, Duration: *dur, Drain: *drain, Pad: *pad, Sample: *sample, Relay: *relay}

	fmt.Fprintf(logOut, "sioload: %s against %s%s\n", name, *addr, *path)
	load0 := loadAvg()
	var res result
	switch name {
	case "connect":
		res = runConnect(ctx, co, connectParams{N: *n, Hold: *hold})
	case "fanout":
		if *sweep {
			res = runSweep(ctx, co, fp, sweepParams{
				StartRate: *rate, Factor: *sweepFactor, MaxSteps: *sweepSteps, MaxP99: *sweepP99, MinRatio: 0.9,
			})
		} else {
			res = runFanout(ctx, co, fp)
		}
	case "echo":
		res = runEcho(ctx, co, echoParams{
			Clients: *clients, Window: *window, Duration: *dur, Drain: *drain, Pad: *pad,
			Event: *echoEvent, Arg: *echoArg,
		})
	case "overload":
		res = runOverload(ctx, co, fp)
	}
	if *as != "" {
		res.Scenario = *as
	}
	if ctx.Err() != nil {
		res.note("run cut short: %v", context.Cause(ctx))
	}
	// Other work on the machine skews every number; say how busy it was.
	res.note("load average before/after: %s / %s", load0, loadAvg())
	if *jsonOut {
		b, err := jsonLine(res)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	writeTable(stdout, res)
	return nil
}

// jsonLine encodes a result as one line of JSON, the format compare reads.
func jsonLine(r result) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return append(b, '\n'), nil
}

// validate rejects flag values that would make a loop unbounded or meaningless.
func validate(name string, n int, rate float64, dur time.Duration, clients, window, conc int, factor float64, steps int) error {
	switch {
	case name != "echo" && (n < 1 || n > 100000):
		return fmt.Errorf("-n must be 1..100000, got %d", n)
	case (name == "fanout" || name == "overload") && (rate <= 0 || rate > 1e6):
		return fmt.Errorf("-rate must be in (0, 1e6], got %g", rate)
	case dur <= 0 || dur > time.Hour:
		return fmt.Errorf("-duration must be in (0, 1h], got %v", dur)
	case name == "echo" && (clients < 1 || clients > 100000 || window < 1 || window > 10000):
		return fmt.Errorf("-clients must be 1..100000 and -window 1..10000")
	case conc < 1:
		return fmt.Errorf("-concurrency must be positive")
	case factor <= 1 || steps < 1 || steps > 50:
		return fmt.Errorf("-sweep-factor must be > 1 and -sweep-steps 1..50")
	}
	return nil
}

// runCompare prints the side-by-side table of result files, one column per
// file, with the ratio of each column to the first.
func runCompare(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	names := fs.String("names", "node,go", "column names, one per file, comma-separated; ratios are to the first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return usage()
	}
	cols := strings.Split(*names, ",")
	if len(cols) != fs.NArg() {
		return fmt.Errorf("-names has %d names for %d files", len(cols), fs.NArg())
	}
	sides := make([][]result, len(cols))
	for i := range cols {
		rs, err := readResults(fs.Arg(i))
		if err != nil && (i == 0 || !errors.Is(err, os.ErrNotExist)) {
			return err
		}
		sides[i] = rs
	}
	writeComparison(stdout, cols, sides)
	return nil
}
