package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Client defaults.
const (
	// DefaultTimeout bounds each call, waiting for a free slot included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConcurrency bounds the event and disconnect calls in flight.
	DefaultMaxConcurrency = 64
	// DefaultConnectConcurrency bounds the connect calls in flight, a pool
	// of their own.
	DefaultConnectConcurrency = 64
	// DefaultMaxBody bounds a call's JSON body (1 MiB, what a backend that
	// reads at most 1 MB can still verify).
	DefaultMaxBody = 1 << 20
	// DefaultCloseGrace bounds how long Close lets calls in flight finish
	// before cancelling them.
	DefaultCloseGrace = 5 * time.Second
	// MaxReply bounds a backend reply read into memory (1 MiB).
	MaxReply = 1 << 20
)

// Config is what a Client needs. Zero values take the defaults.
type Config struct {
	// Secret signs every call (see Sign). Required.
	Secret []byte
	// Timeout bounds each call, waiting for a free slot included.
	// Default: DefaultTimeout (10s).
	Timeout time.Duration
	// MaxConcurrency bounds the event and disconnect calls in flight.
	// Default: DefaultMaxConcurrency (64).
	MaxConcurrency int
	// ConnectConcurrency bounds the connect calls in flight, so that
	// clients connecting never take the slots of connected sockets' events.
	// Default: DefaultConnectConcurrency (64).
	ConnectConcurrency int
	// MaxBody bounds the JSON body of one call, in bytes. Default:
	// DefaultMaxBody (1 MiB).
	MaxBody int
	// CloseGrace bounds how long Close lets calls in flight finish (never
	// longer than Timeout). Default: DefaultCloseGrace (5s).
	CloseGrace time.Duration
}

// Client makes signed calls to a backend, with two concurrency pools
// (connect calls, and the others), and runs the goroutines that Close
// waits for. It is safe for concurrent use.
type Client struct {
	secret  []byte
	timeout time.Duration
	maxBody int
	grace   time.Duration

	client    *http.Client
	transport *http.Transport
	sem       chan struct{} // event and disconnect calls
	connSem   chan struct{} // connect calls
	ctx       context.Context
	cancel    context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup

	observer atomic.Pointer[CallObserver]
}

// CallObserver is told of every call that Call made, for metrics: its hook
// (the body's Type: "connect", "disconnect" or "event"), the reply and
// error Call returns, and how long Call took, waiting for a slot
// included. It runs on the caller's goroutine and must not block.
type CallObserver func(hook string, reply *Reply, err error, took time.Duration)

// SetObserver sets the CallObserver (nil: none).
func (c *Client) SetObserver(fn CallObserver) {
	if fn == nil {
		c.observer.Store(nil)
		return
	}
	c.observer.Store(&fn)
}

// NewClient makes a Client. Nothing runs until a call is made.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("making webhook client: empty secret")
	}
	if cfg.Timeout < 0 || cfg.MaxConcurrency < 0 || cfg.ConnectConcurrency < 0 || cfg.MaxBody < 0 || cfg.CloseGrace < 0 {
		return nil, errors.New("making webhook client: negative timeout, concurrency, max body or grace")
	}
	c := &Client{
		secret:  bytes.Clone(cfg.Secret),
		timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		maxBody: cmp.Or(cfg.MaxBody, DefaultMaxBody),
		grace:   cmp.Or(cfg.CloseGrace, DefaultCloseGrace),
	}
	maxConc := cmp.Or(cfg.MaxConcurrency, DefaultMaxConcurrency)
	c.sem = make(chan struct{}, maxConc)
	c.connSem = make(chan struct{}, cmp.Or(cfg.ConnectConcurrency, DefaultConnectConcurrency))
	c.transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   maxConc,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.timeout,
		ResponseHeaderTimeout: c.timeout,
		ForceAttemptHTTP2:     true,
	}
	c.client = &http.Client{
		Transport: c.transport,
		Timeout:   c.timeout,
		// A redirect would turn the POST into a GET and drop the body.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Timeout is the bound of each call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Stopping reports whether Close was called and the grace is over: calls
// in flight are being cancelled and new ones fail at once.
func (c *Client) Stopping() bool { return c.ctx.Err() != nil }

// Go runs fn in a goroutine that Close waits for; false when closed.
func (c *Client) Go(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

// Close stops accepting goroutines, lets calls in flight finish for the
// grace (at most the timeout), then cancels the rest and waits for every
// goroutine Go started. It is safe on a nil receiver and idempotent.
func (c *Client) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(min(c.timeout, c.grace))
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	c.cancel()
	<-done
	c.transport.CloseIdleConnections()
}

// Error is a failed call. Its message is what a client sees
// ("webhook failed: timeout"); Err keeps the cause for logs.
type Error struct {
	// Reason is the short cause: "timeout", "body too large", "status 500"...
	Reason string
	Err    error
}

func (e *Error) Error() string { return "webhook failed: " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// Call POSTs body to url, signed, and decodes the reply. It holds a slot of
// the connect pool (a body of Type "connect") or of the other pool while
// the request is in flight. Errors are *Error. A reply with an error
// status is returned, not an error, when it carries an "error" (a refusal).
func (c *Client) Call(url string, body *Body) (*Reply, error) {
	obs := c.observer.Load()
	if obs == nil {
		return c.call(url, body)
	}
	start := time.Now()
	reply, err := c.call(url, body)
	(*obs)(body.Type, reply, err, time.Since(start))
	return reply, err
}

func (c *Client) call(url string, body *Body) (*Reply, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &Error{"bad arguments", fmt.Errorf("encoding webhook body: %w", err)}
	}
	if len(payload) > c.maxBody {
		return nil, &Error{"body too large", fmt.Errorf("webhook body of %d bytes is over max_body %d", len(payload), c.maxBody)}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	sem := c.sem
	if body.Type == "connect" {
		sem = c.connSem
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-ctx.Done():
		return nil, c.ctxError(ctx, "waiting for a free slot")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, &Error{"bad url", fmt.Errorf("building webhook request: %w", err)}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-socketio")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(HookHeader, body.Type)
	req.Header.Set(SignatureHeader, Sign(c.secret, ts, body.Type, req.URL.EscapedPath(), payload))
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.ctxError(ctx, "calling backend")
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, &Error{"timeout", err}
		}
		return nil, &Error{"backend unreachable", err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.ctxError(ctx, "reading reply")
		}
		return nil, &Error{"backend unreachable", fmt.Errorf("reading webhook reply: %w", err)}
	}
	if len(data) > MaxReply {
		return nil, &Error{"reply too large", fmt.Errorf("webhook reply over %d bytes", MaxReply)}
	}
	reply := &Reply{}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if derr := dec.Decode(reply); derr != nil {
			reply = nil
			if resp.StatusCode/100 == 2 {
				return nil, &Error{"bad reply", fmt.Errorf("decoding webhook reply: %w", derr)}
			}
		}
	}
	if resp.StatusCode/100 != 2 {
		// A refusal may come with an error status; its error is kept.
		if reply != nil && len(reply.Error) > 0 {
			return reply, nil
		}
		return nil, &Error{"status " + strconv.Itoa(resp.StatusCode), fmt.Errorf("backend answered %s", resp.Status)}
	}
	return reply, nil
}

func (c *Client) ctxError(ctx context.Context, doing string) error {
	if c.ctx.Err() != nil {
		return &Error{"server stopping", fmt.Errorf("%s: %w", doing, c.ctx.Err())}
	}
	return &Error{"timeout", fmt.Errorf("%s: %w", doing, ctx.Err())}
}
