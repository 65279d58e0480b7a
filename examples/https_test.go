//go:build live

package examples

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/quic-go/quic-go/http3"

	"github.com/caddy-socketio/caddy-socketio/internal/nodeclient"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

const (
	// chromiumPath is Debian's chromium; the test never downloads a browser.
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout backs up join-rooms.cjs's own bound (75 s).
	browserTimeout = 100 * time.Second
)

// httpsSite is a running examples/https/Caddyfile.
type httpsSite struct {
	base    string // https://localhost:<port>
	rootPEM []byte // Caddy's local root CA
	roots   *x509.CertPool
	caddy   *testkit.Process
}

// startHTTPS runs examples/https/Caddyfile on a free port with a data
// directory of its own, waits for Caddy's local CA and returns once the
// site answers over TLS verified against that CA alone.
func startHTTPS(t *testing.T, home string) *httpsSite {
	t.Helper()
	port, adminPort := testkit.FreePort(t), testkit.FreePort(t)
	cfg := withGlobal(readFile(t, "examples/https/Caddyfile"), adminPort)
	env := baseEnv(home, "JWT_SECRET="+jwtSecret, fmt.Sprintf("HTTPS_PORT=%d", port))
	s := &httpsSite{base: fmt.Sprintf("https://localhost:%d", port)}

	bin := testkit.CaddyBinary(t)
	path := filepath.Join(home, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.caddy = testkit.StartProcess(t, "caddy", testkit.RepoRoot(t), env, bin, "run", "--config", path, "--adapter", "caddyfile")

	root := filepath.Join(home, "data", "caddy", "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(readyTimeout)
	for {
		b, err := os.ReadFile(root)
		if err == nil && len(b) > 0 {
			s.rootPEM = b
			break
		}
		select {
		case <-s.caddy.Done():
			t.Fatalf("caddy exited: %v\n%s", s.caddy.Err(), s.caddy.Log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no local CA at %s after %v\n%s", root, readyTimeout, s.caddy.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(s.rootPEM) {
		t.Fatalf("%s holds no certificate", root)
	}
	s.caddy.WaitHTTP(t, s.h2Client(), s.base+"/app.js", http.StatusOK, readyTimeout)
	return s
}

func (s *httpsSite) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// h2Client speaks HTTP/2 over TLS (ALPN), trusting only Caddy's local CA.
func (s *httpsSite) h2Client() *http.Client {
	return &http.Client{Timeout: clientWait, Transport: &http.Transport{
		TLSClientConfig:   s.tlsConfig(),
		ForceAttemptHTTP2: true,
	}}
}

func token(t *testing.T, sub string) string {
	t.Helper()
	return testkit.HS256(t, jwtSecret, jwt.MapClaims{"sub": sub})
}

// TestHTTPSExample runs examples/https/Caddyfile (localhost, tls internal)
// and checks each way a client reaches it: Engine.IO polling over HTTP/2
// and over HTTP/3, socket.io-client 4.8 over WebSocket with TLS (directly,
// and upgrading from polling), and the page in Chromium with Caddy's root
// CA in the browser's own certificate database.
func TestHTTPSExample(t *testing.T) {
	home := t.TempDir()
	s := startHTTPS(t, home)

	t.Run("polling over HTTP/2", func(t *testing.T) {
		pollingSession(t, s.h2Client(), s.base, 2)
	})
	t.Run("polling over HTTP/3", func(t *testing.T) {
		tr := &http3.Transport{TLSClientConfig: s.tlsConfig()}
		defer tr.Close()
		pollingSession(t, &http.Client{Timeout: clientWait, Transport: tr}, s.base, 3)
	})
	t.Run("websocket over TLS", func(t *testing.T) {
		drv := nodeclient.Start(t)
		for _, c := range []struct {
			id         string
			transports []string
		}{{"ws", []string{"websocket"}}, {"upgrade", []string{"polling", "websocket"}}} {
			cl := drv.Connect(c.id, "4", s.base, map[string]any{
				"transports":   c.transports,
				"ca":           string(s.rootPEM), // Node's TLS trusts only this CA here
				"auth":         map[string]any{"token": token(t, "carol")},
				"query":        map[string]any{"roomNumber": "5"},
				"reconnection": false,
			})
			ev, err := cl.WaitConnectEvent(clientWait)
			if err != nil {
				t.Fatalf("%s: %v\n%s", c.id, err, lastLines(s.caddy.Log.String(), 10))
			}
			if ev.Transport != "websocket" {
				if err := cl.WaitUpgrade(clientWait); err != nil {
					t.Errorf("%s: connected over %s and never upgraded: %v", c.id, ev.Transport, err)
				}
			}
			args, err := cl.WaitEvent("message_from_server", clientWait)
			if err != nil || len(args) == 0 || !strings.HasPrefix(fmt.Sprint(args[0]), "Message: welcome carol, ") {
				t.Errorf("%s: message_from_server %v, %v", c.id, args, err)
			}
			if args, err := cl.WaitEvent("room-userId", clientWait); err != nil || fmt.Sprint(args) != "[You are in room number: 5]" {
				t.Errorf("%s: room-userId %v, %v", c.id, args, err)
			}
		}
	})
	t.Run("browser", func(t *testing.T) {
		browserHTTPS(t, s)
	})
}

// pollingSession opens an Engine.IO session by polling, connects to "/"
// with a token, reads the tutorial's events and closes the session; every
// request must go over HTTP/proto.
func pollingSession(t *testing.T, client *http.Client, base string, proto int) {
	t.Helper()
	url := base + "/socket.io/?EIO=4&transport=polling&roomNumber=3"
	do := func(method, url, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading: %v", method, url, err)
		}
		if resp.ProtoMajor != proto {
			t.Errorf("%s %s went over %s, want HTTP/%d", method, url, resp.Proto, proto)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %s", method, url, resp.Status, b)
		}
		return string(b)
	}
	open := do(http.MethodGet, url, "")
	var hs struct {
		Sid      string   `json:"sid"`
		Upgrades []string `json:"upgrades"`
	}
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake: %q", open)
	}
	surl := url + "&sid=" + hs.Sid
	if got := do(http.MethodPost, surl, `40{"token":"`+token(t, "dave")+`"}`); got != "ok" {
		t.Fatalf("CONNECT: %q", got)
	}
	// The CONNECT answer and the tutorial's events may come in one or more
	// polls.
	var got []string
	deadline := time.Now().Add(clientWait)
	for !(containsPrefix(got, `40{"sid":`) && containsPrefix(got, `42["message_from_server","Message: welcome dave, `) &&
		containsPrefix(got, `42["room-userId","You are in room number: 3"]`)) {
		if time.Now().After(deadline) {
			t.Fatalf("packets so far: %q", got)
		}
		got = append(got, strings.Split(do(http.MethodGet, surl, ""), "\x1e")...)
	}
	if got := do(http.MethodPost, surl, "1"); got != "ok" {
		t.Errorf("close: %q", got)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// browserHTTPS opens the page over HTTPS in Chromium. The browser trusts
// Caddy's local root because it is in the NSS database Chromium reads on
// Linux ($HOME/.pki/nssdb), added with certutil; certificate errors are not
// ignored, so an untrusted certificate fails the page load.
func browserHTTPS(t *testing.T, s *httpsSite) {
	node, err := exec.LookPath("node")
	if err != nil {
		testkit.SkipOrFail(t, "finding node: %v", err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.SkipOrFail(t, "finding chromium: %v (apt-get install chromium)", err)
	}
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		testkit.SkipOrFail(t, "finding certutil: %v (apt-get install libnss3-tools)", err)
	}
	root := testkit.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "testdata", "node_modules", "playwright-core", "package.json")); err != nil {
		testkit.SkipOrFail(t, "finding playwright-core: %v (make deps)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "testdata", "www", "vendor", "socket.io.min.js")); err != nil {
		testkit.SkipOrFail(t, "finding the page's client bundle: %v (make deps)", err)
	}

	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(home, "caddy-root.crt")
	if err := os.WriteFile(rootFile, s.rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", nssdb, "--empty-password"},
		{"-A", "-d", nssdb, "-n", "Caddy Local Authority (test)", "-t", "C,,", "-i", rootFile},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
		out, err := exec.CommandContext(ctx, certutil, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}

	artifacts := filepath.Join(root, "testdata", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("browser", "join-rooms.cjs"),
		s.base, token(t, "alice"), token(t, "bob"), filepath.Join(artifacts, "https-join-rooms.png"))
	cmd.Dir = filepath.Join(root, "testdata")
	cmd.Env = append(os.Environ(), "HOME="+home, "CHROMIUM_PATH="+chromiumPath)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		A, B  struct {
			Status    string   `json:"status"`
			Events    []string `json:"events"`
			Protocols []string `json:"protocols"`
		}
		Screenshots []string `json:"screenshots"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK || runErr != nil {
		t.Fatalf("join-rooms.cjs over HTTPS: %v %s\nstdout:\n%s\nstderr:\n%s\ncaddy log:\n%s",
			runErr, res.Error, stdout.String(), stderr.String(), lastLines(s.caddy.Log.String(), 20))
	}
	t.Logf("page A: %s; Socket.IO requests over %v", res.A.Status, res.A.Protocols)
	t.Logf("page B: %s; Socket.IO requests over %v", res.B.Status, res.B.Protocols)
	t.Logf("screenshots: %v", res.Screenshots)
	for _, p := range []struct {
		name      string
		events    []string
		protocols []string
	}{{"A", res.A.Events, res.A.Protocols}, {"B", res.B.Events, res.B.Protocols}} {
		if !contains(p.protocols, "h2") {
			t.Errorf("page %s: Socket.IO requests went over %v, want h2 among them", p.name, p.protocols)
		}
	}
	if !contains(res.A.Events, "bob joined room 7") || !contains(res.B.Events, "alice says hello from page A") {
		t.Errorf("pages over HTTPS: A %q, B %q", res.A.Events, res.B.Events)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
