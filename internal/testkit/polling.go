package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// PollTimeout is the HTTP client timeout of a Polling session: above the
// default ping interval (25 s), so that a long-poll GET the server holds
// ends with a ping, not with a client timeout.
const PollTimeout = 30 * time.Second

// Polling is a bare Engine.IO long-polling session. Header goes on every
// request.
type Polling struct {
	T      testing.TB
	URL    string // the session's URL, sid included
	SID    string
	Header http.Header
	HTTP   *http.Client
}

// OpenPolling makes the polling handshake at base (the endpoint's URL, the
// path included) with query and header (either may be nil); it fails the
// test unless the server answers 200 with an open packet.
func OpenPolling(t testing.TB, base string, query url.Values, header http.Header) *Polling {
	t.Helper()
	q := url.Values{"EIO": {"4"}, "transport": {"polling"}}
	for k, v := range query {
		q[k] = v
	}
	p := &Polling{T: t, Header: header, HTTP: &http.Client{Timeout: PollTimeout}}
	status, body := p.Do(http.MethodGet, base+"?"+q.Encode(), "")
	var open struct {
		SID string `json:"sid"`
	}
	if status != http.StatusOK || !strings.HasPrefix(body, "0") || json.Unmarshal([]byte(body[1:]), &open) != nil || open.SID == "" {
		t.Fatalf("polling handshake: %d %q", status, body)
	}
	q.Set("sid", open.SID)
	p.SID = open.SID
	p.URL = base + "?" + q.Encode()
	return p
}

// Try sends one request to u and returns the status and body; for use
// where failing the test is not allowed (another goroutine).
func (p *Polling) Try(method, u, body string) (int, string, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range p.Header {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, string(b), err
}

// Do is Try failing the test on a transport error.
func (p *Polling) Do(method, u, body string) (int, string) {
	p.T.Helper()
	status, b, err := p.Try(method, u, body)
	if err != nil {
		p.T.Fatalf("%s %s: %v", method, u, err)
	}
	return status, b
}

// Post sends body (packets joined by 0x1e) in one POST.
func (p *Polling) Post(body string) (int, string) {
	p.T.Helper()
	return p.Do(http.MethodPost, p.URL, body)
}

// MustPost is Post failing the test unless the answer is 200.
func (p *Polling) MustPost(body string) {
	p.T.Helper()
	if status, b := p.Post(body); status != http.StatusOK {
		p.T.Fatalf("polling POST %.60q: %d %q", body, status, b)
	}
}

// Get makes one long-poll GET.
func (p *Polling) Get() (int, string) {
	p.T.Helper()
	return p.Do(http.MethodGet, p.getURL(), "")
}

// TryGet is Get without failing the test.
func (p *Polling) TryGet() (int, string, error) { return p.Try(http.MethodGet, p.getURL(), "") }

// getURL adds a cache buster, as real clients do.
func (p *Polling) getURL() string { return p.URL + "&t=" + fmt.Sprint(time.Now().UnixNano()) }

// ReadUntil polls until a packet starting with prefix has arrived, within
// d, and returns every packet received.
func (p *Polling) ReadUntil(prefix string, d time.Duration) []string {
	p.T.Helper()
	var got []string
	deadline := time.Now().Add(d)
	for !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, prefix) }) {
		if time.Now().After(deadline) {
			p.T.Fatalf("polling: no %q packet after %v; got %q", prefix, d, got)
		}
		status, body := p.Get()
		if status != http.StatusOK {
			p.T.Fatalf("polling GET: %d %q", status, body)
		}
		got = append(got, strings.Split(body, "\x1e")...)
	}
	return got
}

// PollResult is the outcome of a GET started by Pending.
type PollResult struct {
	Status int
	Body   string
	Err    error
}

// Pending starts a long-poll GET in another goroutine, for a test that
// needs one held by the server: sent is closed once the request has been
// written to the connection, and result gets its outcome.
func (p *Polling) Pending() (sent <-chan struct{}, result <-chan PollResult) {
	wrote := make(chan struct{})
	out := make(chan PollResult, 1)
	var once sync.Once
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) }}
	go func() {
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, p.getURL(), nil)
		if err != nil {
			out <- PollResult{Err: err}
			return
		}
		for k, v := range p.Header {
			req.Header[k] = v
		}
		resp, err := p.HTTP.Do(req)
		if err != nil {
			once.Do(func() { close(wrote) }) // not sent, but nothing to wait for
			out <- PollResult{Err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- PollResult{Status: resp.StatusCode, Body: string(b), Err: err}
	}()
	return wrote, out
}
