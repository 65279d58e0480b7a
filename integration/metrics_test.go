//go:build live

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-socketio/caddy-socketio/internal/testkit"
)

// scrape reads Caddy's /metrics from the admin endpoint.
func (p *caddyProc) scrape(t *testing.T) string {
	t.Helper()
	client := &http.Client{Timeout: clientWait}
	resp, err := client.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// expectSeries waits (bounded) until the scrape holds the line "<series>
// <value>" exactly, the series written as Prometheus' text format does
// (labels sorted by name).
func (p *caddyProc) expectSeries(t *testing.T, series, value string) {
	t.Helper()
	p.expectSeriesWithin(t, 5*time.Second, series, value)
}

// expectSeriesWithin is expectSeries with its own bound.
func (p *caddyProc) expectSeriesWithin(t *testing.T, within time.Duration, series, value string) {
	t.Helper()
	want := series + " " + value
	var got string
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		body := p.scrape(t)
		got = "(none)"
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, series+" ") {
				got = line
			}
		}
		if got == want || time.Now().After(deadline) {
			break
		}
	}
	if got != want {
		t.Errorf("scrape: %s, want %s", got, want)
	}
}

// TestCaddyMetrics scrapes a real Caddy's /metrics during traffic, then
// after a reload: the gauges stay exact and the counters go on.
func TestCaddyMetrics(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a real Caddy: skipped under -short (the fast loop)")
	}
	sc := siteConfig{Port: testkit.FreePort(t), AdminPort: testkit.FreePort(t)}
	c := startCaddy(t, sc)
	base := c.BaseURL + "/socket.io/"
	auth := func(sub string) string {
		b, _ := json.Marshal(map[string]string{"token": testkit.HS256(t, testSecretEnv, jwt.MapClaims{"sub": sub})})
		return string(b)
	}
	ws := func(room string) *testkit.WS {
		w := testkit.DialWS(t, base, url.Values{"roomNumber": {room}}, nil)
		w.Wait = clientWait
		w.ConnectSocket(auth("w"))
		return w
	}
	a, b := ws("7"), ws("7")
	defer a.Close()
	defer b.Close()
	p := testkit.OpenPolling(t, base, url.Values{"roomNumber": {"8"}}, nil)
	p.MustPost("40" + auth("p"))
	p.ReadUntil(`42["message_from_server"`, clientWait)

	// Refused: a CONNECT without a token, a page of another origin.
	n := testkit.DialWS(t, base, nil, nil)
	n.Wait = clientWait
	n.Send("40")
	n.ExpectPrefix(`44{"message":"missing token"`)
	n.Close()
	req, _ := http.NewRequest(http.MethodGet, base+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: %s, want 403", resp.Status)
		}
	}

	const hub = `hub="/socket.io/"`
	check := func(wsSockets, wsConns string) {
		t.Helper()
		c.expectSeries(t, `caddy_socketio_sockets{`+hub+`,namespace="/",transport="websocket"}`, wsSockets)
		c.expectSeries(t, `caddy_socketio_sockets{`+hub+`,namespace="/",transport="polling"}`, "1")
		c.expectSeries(t, `caddy_socketio_rooms{`+hub+`,namespace="/"}`, "2")
		c.expectSeries(t, `caddy_socketio_connections_total{`+hub+`,transport="websocket"}`, wsConns)
		c.expectSeries(t, `caddy_socketio_connections_total{`+hub+`,transport="polling"}`, "1")
		c.expectSeries(t, `caddy_socketio_handshakes_refused_total{`+hub+`,reason="missing_token"}`, "1")
		c.expectSeries(t, `caddy_socketio_handshakes_refused_total{`+hub+`,reason="forbidden"}`, "1")
	}
	check("2", "3")

	c.Reload(sc, true)
	check("2", "3")
	d := ws("7")
	defer d.Close()
	check("3", "4")

	// The polling client stops polling; a socket of its room relays 1.2 MB
	// to it, over the default send_buffer (1 MiB) for longer than
	// slow_client_grace (5 s): it is dropped as slow.
	e := ws("8")
	defer e.Close()
	big, _ := json.Marshal(strings.Repeat("x", 100_000))
	for range 12 {
		e.Send(`42["message_from_client",` + string(big) + `]`)
	}
	c.expectSeriesWithin(t, 15*time.Second, `caddy_socketio_slow_clients_dropped_total{`+hub+`}`, "1")
	c.expectSeries(t, `caddy_socketio_disconnects_total{`+hub+`,reason="write_queue_full"}`, "1")
	c.expectSeries(t, `caddy_socketio_sockets{`+hub+`,namespace="/",transport="polling"}`, "0")
	c.expectSeries(t, `caddy_socketio_sockets{`+hub+`,namespace="/",transport="websocket"}`, "4")
}
