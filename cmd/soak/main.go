// Command soak runs a real Caddy with the socketio module under a steady
// load for a while and checks that it stays flat: steady sockets that must
// never be dropped, churn beside them, a room broadcast through the emit
// API (as a backend pushes events), and a `caddy reload` every minute.
// Every sample interval it reads Caddy's goroutines
// (go_goroutines on the admin endpoint's /metrics) and its RSS (/proc), and
// at the end it prints the curve and whether goroutines and RSS came back
// to their baseline once the churn stopped. It is not part of CI (`make
// soak`; docs/operations.md has a run's curve).
//
// Usage:
//
//	soak [-caddy bin/caddy-soak] [-duration 10m] [-steady 5000] [-churn 100]
//	     [-broadcast 100ms] [-reload 1m] [-sample 10s] [-settle 1m] [-out file]
//
// Every connection goes to loopback; the Caddy it starts listens on
// 127.0.0.1 only, on free ports, with its home in a temporary directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

type config struct {
	caddy     string
	duration  time.Duration
	steady    int
	churn     int // connects (and disconnects) per second
	broadcast time.Duration
	reload    time.Duration
	sample    time.Duration
	settle    time.Duration
	out       string
}

func main() {
	var c config
	flag.StringVar(&c.caddy, "caddy", "bin/caddy-soak", "the Caddy binary with the module (make soak builds it from ./cmd/caddy)")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the load runs")
	flag.IntVar(&c.steady, "steady", 5000, "steady sockets, connected for the whole run")
	flag.IntVar(&c.churn, "churn", 100, "connects and disconnects per second beside them")
	flag.DurationVar(&c.broadcast, "broadcast", 100*time.Millisecond, "interval of the broadcast to the steady sockets' room")
	flag.DurationVar(&c.reload, "reload", time.Minute, "interval of `caddy reload`")
	flag.DurationVar(&c.sample, "sample", 10*time.Second, "interval of the goroutine and RSS samples")
	flag.DurationVar(&c.settle, "settle", time.Minute, "how long to keep sampling once the churn stopped")
	flag.StringVar(&c.out, "out", "", "also write the curve (a Markdown table) to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, c, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// apiSecret is the emit API's bearer secret in the soak's own config; the
// API listens on 127.0.0.1 only.
const apiSecret = "soak-only-secret-0123456789abcdef"

// caddyfile is the soak's config: the steady sockets join soak-steady and
// the churn soak-churn; the broadcast goes to soak-steady through the emit
// API on its own loopback port, as a backend pushes events. gen changes
// the welcome text, so each reload is a real change.
func caddyfile(admin, site, api, gen int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	default_bind 127.0.0.1
	persist_config off
}

:%d {
	socketio {
		join soak-{socketio.query.group}
		emit welcome "config %d"
		limits {
			# every client comes from 127.0.0.1
			max_connections_per_ip off
			handshake_rate off
		}
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	socketio_api {
		secrets %s
	}
}
`, admin, site, gen, api, apiSecret)
}

// sample is one point of the curve.
type sample struct {
	at         time.Duration
	phase      string
	goroutines int
	rssKiB     int64
	heapMiB    float64 // go_memstats_heap_inuse_bytes
	liveMiB    float64 // go_memstats_heap_alloc_bytes right after a forced GC; -1 when none was forced
	sockets    int     // caddy_socketio_sockets, all series summed
	steadyLive int
	churnOK    int64 // churn connects done since the start
	churnFail  int64 // dials that failed
	churnSkip  int64 // ticks skipped: 4*rate churn clients still open
	ticks      int64 // broadcasts sent since the start
	minGot     int64 // the fewest broadcasts a steady socket received
	reloads    int
}

func run(ctx context.Context, c config, stdout io.Writer) (bool, error) {
	raiseFileLimit(int64(2*(c.steady+4*c.churn) + 1024))
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	adminPort, err := freePort()
	if err != nil {
		return false, err
	}
	sitePort, err := freePort()
	if err != nil {
		return false, err
	}
	apiPort, err := freePort()
	if err != nil {
		return false, err
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	gen := 1
	if err := os.WriteFile(cfgPath, []byte(caddyfile(adminPort, sitePort, apiPort, gen)), 0o600); err != nil {
		return false, err
	}
	bin, err := filepath.Abs(c.caddy)
	if err != nil {
		return false, err
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = env, logf, logf, dir
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("starting caddy: %w", err)
	}
	exited := make(chan struct{}) // closed once Caddy has exited; then exitErr is set
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
	}()
	admin := fmt.Sprintf("127.0.0.1:%d", adminPort)
	site := fmt.Sprintf("127.0.0.1:%d", sitePort)
	if err := waitReady(ctx, admin, exited, &exitErr); err != nil {
		return false, err
	}
	pid := cmd.Process.Pid
	log := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	log("caddy pid %d on %s (admin %s); connecting %d steady sockets", pid, site, admin, c.steady)

	start := time.Now()
	var (
		stopping atomic.Bool // the run is over: ends of connections are expected
		ticks    atomic.Int64
	)
	steady := make([]*client, c.steady)
	var next atomic.Int64
	var wg sync.WaitGroup
	var dialErr atomic.Pointer[error]
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= c.steady || dialErr.Load() != nil || ctx.Err() != nil {
					return
				}
				cl, err := dial(site, "steady", &stopping)
				if err != nil {
					err = fmt.Errorf("steady socket %d: %w", i, err)
					dialErr.Store(&err)
					return
				}
				steady[i] = cl
			}
		})
	}
	wg.Wait()
	defer func() {
		stopping.Store(true)
		for _, cl := range steady {
			if cl != nil {
				cl.close()
			}
		}
	}()
	if p := dialErr.Load(); p != nil {
		return false, *p
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	log("%d steady sockets connected in %v", c.steady, time.Since(start).Round(time.Millisecond))
	emitURL := fmt.Sprintf("http://127.0.0.1:%d/emit", apiPort)
	var emitFail, emitSkipped, emitSeq atomic.Int64
	var samples []sample
	reloads := 0
	var churnOK, churnFail, churnSkip atomic.Int64
	take := func(phase string) sample {
		s := sample{at: time.Since(start), phase: phase, churnOK: churnOK.Load(), churnFail: churnFail.Load(), churnSkip: churnSkip.Load(),
			ticks: ticks.Load(), reloads: reloads, minGot: -1, liveMiB: -1}
		if phase != "load" {
			// Out of the load, what Caddy holds rather than what its GC has
			// not collected yet: the admin endpoint's heap profile with
			// gc=1 runs a GC first.
			forceGC(admin)
			_, _, _, s.liveMiB, _ = scrape(admin)
		}
		s.goroutines, s.sockets, s.heapMiB, _, _ = scrape(admin)
		s.rssKiB = rss(pid)
		for _, cl := range steady {
			if !cl.dropped.Load() {
				s.steadyLive++
			}
			if g := cl.got.Load(); s.minGot < 0 || g < s.minGot {
				s.minGot = g
			}
		}
		samples = append(samples, s)
		log("%-8s t=%-6v goroutines=%-6d rss=%-5.0fMiB heap=%-5.0fMiB live=%-5.0fMiB sockets=%-5d steady=%d churn=%d(%d failed, %d skipped) ticks=%d min-received=%d reloads=%d",
			phase, s.at.Round(time.Second), s.goroutines, float64(s.rssKiB)/1024, s.heapMiB, s.liveMiB, s.sockets, s.steadyLive,
			s.churnOK, s.churnFail, s.churnSkip, s.ticks, s.minGot, s.reloads)
		return s
	}
	// The baseline: the steady sockets alone, after a quiet sample period.
	if !sleep(ctx, c.sample) {
		return false, ctx.Err()
	}
	base := take("baseline")

	// The load: churn, broadcast, reloads.
	loadCtx, endLoad := context.WithTimeout(ctx, c.duration)
	defer endLoad()
	var loadWG sync.WaitGroup
	loadWG.Go(func() { churn(loadCtx, site, c.churn, &churnOK, &churnFail, &churnSkip) })
	loadWG.Go(func() {
		// An emit every tick, each on its own goroutine, at most
		// emitsInFlight at once: a tick that finds them all still being
		// answered (a starved server) is skipped and counted.
		const emitsInFlight = 8
		t := time.NewTicker(c.broadcast)
		defer t.Stop()
		hc := &http.Client{Timeout: 10 * time.Second}
		slots := make(chan struct{}, emitsInFlight)
		var emits sync.WaitGroup
		defer emits.Wait()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-t.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				emitSkipped.Add(1)
				continue
			}
			n := emitSeq.Add(1)
			emits.Go(func() {
				defer func() { <-slots }()
				if err := emit(hc, emitURL, n); err != nil {
					if emitFail.Add(1) <= 5 {
						log("emit %d: %v", n, err)
					}
					return
				}
				ticks.Add(1)
			})
		}
	})
	sampleT := time.NewTicker(c.sample)
	reloadT := time.NewTicker(c.reload)
	var reloadErrs []string
load:
	for {
		select {
		case <-loadCtx.Done():
			break load
		case <-sampleT.C:
			take("load")
		case <-reloadT.C:
			gen++
			t0 := time.Now()
			if err := reload(bin, env, dir, cfgPath, admin, caddyfile(adminPort, sitePort, apiPort, gen)); err != nil {
				reloadErrs = append(reloadErrs, err.Error())
				log("reload %d: %v", gen, err)
			} else {
				reloads++
				log("reload %d took %v", gen, time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	reloadT.Stop()
	loadWG.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	sent := ticks.Load()
	// Settle: the churn has stopped; the last broadcasts arrive.
	settleEnd := time.Now().Add(c.settle)
	for time.Now().Before(settleEnd) {
		if !sleep(ctx, c.sample) {
			return false, ctx.Err()
		}
		take("settle")
	}
	// After the churn: the last sample, but for goroutines the fewest of
	// the settle samples, since a sample that meets the heartbeat (a ping
	// to every socket each ping_interval) counts a writer per connection
	// for a moment.
	final := samples[len(samples)-1]
	settled := final
	for _, s := range samples {
		if s.phase == "settle" && s.goroutines >= 0 && s.goroutines < settled.goroutines { // -1: a failed scrape
			settled.goroutines = s.goroutines
		}
	}
	peak := base
	for _, s := range samples {
		peak.goroutines = max(peak.goroutines, s.goroutines)
		peak.rssKiB = max(peak.rssKiB, s.rssKiB)
		peak.heapMiB = max(peak.heapMiB, s.heapMiB)
	}

	// The verdict.
	dropped := c.steady - final.steadyLive
	goroutinesBack := settled.goroutines <= base.goroutines+base.goroutines/50+20
	// Go keeps freed heap pages and gives them back to the OS gradually:
	// the live heap (after a forced GC) must be back within 10 %% (+2 MiB)
	// of the baseline; RSS is reported, and judged back within a quarter.
	heapBack := final.liveMiB <= base.liveMiB*1.1+2
	rssBack := final.rssKiB <= base.rssKiB+base.rssKiB/4
	// An emit whose reply was lost (a reload closed its connection) may
	// still have been delivered: received may pass sent, never fall short.
	ok := dropped == 0 && goroutinesBack && heapBack && rssBack && final.minGot >= sent && len(reloadErrs) == 0

	var b strings.Builder
	fmt.Fprintf(&b, "| t | phase | goroutines | RSS MiB | heap in use MiB | live heap MiB | sockets | steady | churn connects | broadcasts sent | fewest received | reloads |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range samples {
		live := "-"
		if s.liveMiB >= 0 {
			live = fmt.Sprintf("%.0f", s.liveMiB)
		}
		fmt.Fprintf(&b, "| %v | %s | %d | %.0f | %.0f | %s | %d | %d | %d | %d | %d | %d |\n", s.at.Round(time.Second), s.phase,
			s.goroutines, float64(s.rssKiB)/1024, s.heapMiB, live, s.sockets, s.steadyLive, s.churnOK, s.ticks, s.minGot, s.reloads)
	}
	fmt.Fprintf(&b, "\n%d steady sockets, %d churn connects/s, a broadcast every %v, a reload every %v, for %v.\n",
		c.steady, c.churn, c.broadcast, c.reload, c.duration)
	fmt.Fprintf(&b, "- steady sockets dropped: %d\n", dropped)
	fmt.Fprintf(&b, "- broadcasts: %d sent of %d ticks (%d skipped: %d emits were still being answered; %d failed), the fewest any steady socket received: %d\n",
		sent, int64(c.duration/c.broadcast), emitSkipped.Load(), 8, emitFail.Load(), final.minGot)
	fmt.Fprintf(&b, "- churn: %d connects done (%.0f/s), %d failed, %d skipped (%d still open)\n", final.churnOK,
		float64(final.churnOK)/c.duration.Seconds(), final.churnFail, final.churnSkip, 4*c.churn)
	fmt.Fprintf(&b, "- reloads: %d done, %d failed %v\n", reloads, len(reloadErrs), reloadErrs)
	fmt.Fprintf(&b, "- goroutines: baseline %d, peak %d, after the churn %d (back within 2%%: %v)\n", base.goroutines, peak.goroutines, settled.goroutines, goroutinesBack)
	fmt.Fprintf(&b, "- heap in use: baseline %.0f MiB, peak %.0f MiB, after the churn %.0f MiB\n", base.heapMiB, peak.heapMiB, final.heapMiB)
	fmt.Fprintf(&b, "- live heap after a forced GC: baseline %.1f MiB, after the churn %.1f MiB (back within 10%%: %v)\n",
		base.liveMiB, final.liveMiB, heapBack)
	fmt.Fprintf(&b, "- RSS: baseline %.0f MiB, peak %.0f MiB, after the churn %.0f MiB (back within 25%%: %v)\n",
		float64(base.rssKiB)/1024, float64(peak.rssKiB)/1024, float64(final.rssKiB)/1024, rssBack)
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "- verdict: %s\n", verdict)
	fmt.Fprint(stdout, b.String())
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(b.String()), 0o644); err != nil { //nolint:gosec // a report for the user to read
			return ok, err
		}
	}
	return ok, nil
}

// churn opens rate connections per second, each held for about a second
// and closed, until ctx ends; at most 4*rate are open at once.
func churn(ctx context.Context, site string, rate int, ok, failed, skipped *atomic.Int64) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	slots := make(chan struct{}, 4*rate)
	var wg sync.WaitGroup
	defer wg.Wait()
	var quiet atomic.Bool // a churn client's end is expected: never "dropped"
	quiet.Store(true)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			skipped.Add(1) // too many still open: the server is slow to answer
			continue
		}
		hold := 500*time.Millisecond + time.Duration(i%10)*100*time.Millisecond
		wg.Go(func() {
			defer func() { <-slots }()
			cl, err := dial(site, "churn", &quiet)
			if err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
			select {
			case <-time.After(hold):
			case <-ctx.Done():
			}
			if i%2 == 0 {
				_ = cl.send("41") // half leave the namespace first, half just close
			}
			cl.close()
		})
	}
}

// client is a raw Engine.IO v4 WebSocket client with one socket on "/": its
// reader answers pings and counts the broadcast ticks.
type client struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	got     atomic.Int64
	dropped atomic.Bool
	done    chan struct{}
}

// dial connects a client whose socket joins soak-<group>. stopping tells
// its reader whether the end of the connection is expected.
func dial(site, group string, stopping *atomic.Bool) (*client, error) {
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second}
	u := "ws://" + site + "/socket.io/?EIO=4&transport=websocket&group=" + group
	conn, resp, err := d.Dial(u, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			return nil, fmt.Errorf("dialing: %w: %s %s", err, resp.Status, b)
		}
		return nil, fmt.Errorf("dialing: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, m, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(m), "0{") {
		_ = conn.Close()
		return nil, fmt.Errorf("open packet: %q %v", m, err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connecting: %w", err)
	}
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("waiting for the CONNECT reply: %w", err)
		}
		if strings.HasPrefix(string(m), "40{") {
			break
		}
		if strings.HasPrefix(string(m), "44") {
			_ = conn.Close()
			return nil, fmt.Errorf("connect_error: %s", m)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	c := &client{conn: conn, done: make(chan struct{})}
	go c.read(stopping)
	return c, nil
}

func (c *client) read(stopping *atomic.Bool) {
	defer close(c.done)
	for {
		_, m, err := c.conn.ReadMessage()
		if err != nil {
			if !stopping.Load() {
				c.dropped.Store(true)
				fmt.Fprintf(os.Stderr, "%s a steady socket was dropped: %v\n", time.Now().Format("15:04:05"), err)
			}
			return
		}
		switch {
		case len(m) == 1 && m[0] == '2':
			if err := c.send("3"); err != nil && !stopping.Load() {
				c.dropped.Store(true)
				return
			}
		case len(m) == 1 && m[0] == '1': // the server closed the connection
			if !stopping.Load() {
				c.dropped.Store(true)
			}
			return
		case strings.HasPrefix(string(m), `42["tick"`):
			c.got.Add(1)
		}
	}
}

func (c *client) send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

// close closes the connection and waits (bounded) for the reader to end.
func (c *client) close() {
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// emit broadcasts tick n to soak-steady through the emit API.
func emit(hc *http.Client, url string, n int64) error {
	req, err := http.NewRequest(http.MethodPost, url,
		strings.NewReader(fmt.Sprintf(`{"to":["soak-steady"],"event":"tick","args":[%d]}`, n)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return nil
}

// reload writes cfg and runs `caddy reload` against the admin endpoint.
func reload(bin string, env []string, dir, cfgPath, admin, cfg string) error {
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "reload", "--config", cfgPath, "--adapter", "caddyfile", "--address", admin)
	cmd.Env, cmd.Dir = env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("caddy reload: %w: %s", err, out)
	}
	return nil
}

// scrape reads go_goroutines, the sum of caddy_socketio_sockets,
// go_memstats_heap_inuse_bytes and go_memstats_heap_alloc_bytes (in MiB)
// from the admin endpoint's /metrics.
func scrape(admin string) (goroutines, sockets int, heapMiB, allocMiB float64, err error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1, -1, -1, -1, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return -1, -1, -1, -1, err
	}
	goroutines = -1
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_goroutines":
			goroutines = int(v)
		case name == "go_memstats_heap_inuse_bytes":
			heapMiB = v / (1 << 20)
		case name == "go_memstats_heap_alloc_bytes":
			allocMiB = v / (1 << 20)
		case strings.HasPrefix(name, "caddy_socketio_sockets{"):
			sockets += int(v)
		}
	}
	return goroutines, sockets, heapMiB, allocMiB, nil
}

// forceGC makes Caddy run a garbage collection: the admin endpoint's heap
// profile with gc=1 runs one before it is written (the profile is dropped).
func forceGC(admin string) {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + admin + "/debug/pprof/heap?gc=1")
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// rss reads a process's resident set size in KiB from /proc; -1 if unknown.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// waitReady polls the admin endpoint (bounded) until Caddy answers.
func waitReady(ctx context.Context, admin string, exited <-chan struct{}, exitErr *error) error {
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + admin + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("caddy exited before serving: %v", *exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // another process: nothing signals readiness
		}
		if time.Now().After(deadline) {
			return errors.New("caddy not ready after 30s")
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one (Caddy
// inherits it) and warns when that is under need.
func raiseFileLimit(need int64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if int64(lim.Cur) < need { //nolint:gosec // a small count
		fmt.Fprintf(os.Stderr, "soak: RLIMIT_NOFILE is %d, the run needs about %d\n", lim.Cur, need)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
