package socketio

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/glob"
	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime"
	"github.com/caddy-socketio/caddy-socketio/realtime/auth"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
	"github.com/caddy-socketio/caddy-socketio/realtime/webhook"
)

// Webhook defaults (the client's are those of realtime/webhook).
const (
	DefaultWebhookTimeout        = webhook.DefaultTimeout
	DefaultWebhookMaxConcurrency = webhook.DefaultMaxConcurrency
	// DefaultWebhookConnectConcurrency is the connect calls' own pool.
	DefaultWebhookConnectConcurrency = webhook.DefaultConnectConcurrency
	DefaultWebhookQueue              = 16
	// DefaultWebhookMaxBody bounds a call's body (1 MiB, what a backend
	// that reads at most 1 MB can still verify).
	DefaultWebhookMaxBody = webhook.DefaultMaxBody
)

// webhookCloseGrace bounds how long Cleanup lets calls in flight finish (a
// disconnect notice on shutdown, say) before cancelling them. A variable so
// tests can shorten it; it is read when a config is built.
var webhookCloseGrace = webhook.DefaultCloseGrace

// Webhook turns client events, connections and disconnections into signed
// HTTP POSTs to a backend, so a site written in any language can handle
// them. The reply to an event becomes the client's ack.
type Webhook struct {
	// Events maps client events to backend URLs; the first route whose
	// pattern matches an event gets it. Events handled by room_requests or
	// relay are not forwarded.
	Events []WebhookRoute `json:"events,omitempty"`

	// Connect is the URL asked when a socket connects: its reply accepts
	// the socket (with rooms and data) or refuses it (the error reaches the
	// client's connect_error). A failed call refuses the socket.
	Connect string `json:"connect,omitempty"`

	// Disconnect is the URL told once when a socket disconnects, with the
	// reason.
	Disconnect string `json:"disconnect,omitempty"`

	// ServerSide is the URL told of what another node of a cluster (the
	// redis adapter) sends with serverSideEmit: type "server_side", the
	// event and its args. When the sender waits (serverSideEmitWithAck),
	// the first element of the reply's ack is this node's answer. Without
	// it, this node does not answer, as a Node peer without a listener.
	ServerSide string `json:"server_side,omitempty"`

	// Secret signs every call (HMAC-SHA256, see webhook.Sign and the
	// X-SocketIO-Signature header). Placeholders such as
	// {env.WEBHOOK_SECRET} are resolved at load. Required.
	Secret string `json:"secret,omitempty"`

	// Headers lists handshake request headers copied into each call's body.
	Headers []string `json:"headers,omitempty"`

	// Cookies lists handshake cookies copied into each call's body, e.g. the
	// site's session cookie.
	Cookies []string `json:"cookies,omitempty"`

	// Timeout bounds each call, waiting for a free slot included.
	// Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxConcurrency bounds the event and disconnect calls in flight
	// across all sockets. Default: 64.
	MaxConcurrency int `json:"max_concurrency,omitempty"`

	// ConnectConcurrency bounds the connect calls in flight. They have a
	// pool of their own, so that clients connecting (or a loop of refused
	// ones) never take the slots of connected sockets' events. Default: 64.
	ConnectConcurrency int `json:"connect_concurrency,omitempty"`

	// MaxBody bounds the JSON body of one call, in bytes. An event whose
	// arguments make it larger is not sent: its ack gets
	// "webhook failed: body too large"; a connect call that large refuses
	// the socket. Default: 1048576 (1 MiB).
	MaxBody int64 `json:"max_body,omitempty"`

	// Queue bounds the events of one socket waiting for the backend; an
	// event over it is answered with an ack error. Default: 16.
	Queue int `json:"queue,omitempty"`
}

// WebhookRoute sends the events matching any of Match to URL.
type WebhookRoute struct {
	// URL of the backend endpoint; placeholders are resolved at load.
	URL string `json:"url,omitempty"`
	// Match lists event names or glob patterns ("*" any run, "?" one
	// character), e.g. "chat:*" or "*".
	Match []string `json:"match,omitempty"`
}

// check validates the webhook config without side effects. URLs holding
// placeholders are checked once resolved.
func (wh *Webhook) check() error {
	if wh == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("webhook: "+format, args...)) }
	if err := wh.checkSecret(); err != nil {
		errs = append(errs, err)
	}
	if len(wh.Events) == 0 && wh.Connect == "" && wh.Disconnect == "" && wh.ServerSide == "" {
		bad("nothing to call: set events, connect, disconnect or server_side")
	}
	for _, r := range wh.Events {
		if len(r.Match) == 0 {
			bad("events %s: no event named", r.URL)
		}
		for _, m := range r.Match {
			if m == "" || parser.IsReservedEvent(m) {
				bad("events: %q cannot be forwarded", m)
			}
		}
		if err := checkWebhookURL(r.URL); err != nil {
			bad("events: %v", err)
		}
	}
	for _, u := range []string{wh.Connect, wh.Disconnect, wh.ServerSide} {
		if u != "" {
			if err := checkWebhookURL(u); err != nil {
				bad("%v", err)
			}
		}
	}
	if wh.Timeout < 0 || wh.MaxConcurrency < 0 || wh.ConnectConcurrency < 0 || wh.Queue < 0 || wh.MaxBody < 0 {
		bad("timeout, max_concurrency, connect_concurrency, queue and max_body must not be negative")
	}
	for _, name := range slices.Concat(wh.Headers, wh.Cookies) {
		if name == "" {
			bad("empty header or cookie name")
		}
	}
	return errors.Join(errs...)
}

// checkSecret requires the signing secret.
func (wh *Webhook) checkSecret() error {
	if wh.Secret == "" {
		return errors.New("webhook: a secret is needed to sign calls")
	}
	return nil
}

// checkWebhookURL accepts absolute http and https URLs; a value with a
// placeholder passes until it is resolved.
func checkWebhookURL(raw string) error {
	if strings.Contains(raw, "{") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	return nil
}

// webhooks is one config's compiled Webhook: its routes, what a call
// carries, and the client (HTTP, concurrency slots, goroutines) that
// Cleanup closes.
type webhooks struct {
	routes     []WebhookRoute
	connect    string
	disconnect string
	serverSide string
	headers    []string
	cookies    []string
	queue      int
	logger     *zap.Logger
	// tokens are where the policy reads the JWT; those handshake values
	// are never copied into a call.
	tokens []auth.Source
	// recovery is on: the CONNECT auth's pid and offset are recovery's.
	recovery bool

	client *webhook.Client
}

// build resolves placeholders and makes the HTTP client. Nothing runs until
// a call is made.
func (wh *Webhook) build(repl *caddy.Replacer, logger *zap.Logger) (*webhooks, error) {
	if err := wh.check(); err != nil {
		return nil, err
	}
	w := &webhooks{
		connect:    repl.ReplaceKnown(wh.Connect, ""),
		disconnect: repl.ReplaceKnown(wh.Disconnect, ""),
		serverSide: repl.ReplaceKnown(wh.ServerSide, ""),
		headers:    slices.Clone(wh.Headers),
		cookies:    slices.Clone(wh.Cookies),
		queue:      cmp.Or(wh.Queue, DefaultWebhookQueue),
		logger:     logger,
	}
	secret := []byte(repl.ReplaceKnown(wh.Secret, ""))
	if len(secret) == 0 {
		return nil, errors.New("webhook: secret is empty after resolving placeholders (is the environment variable set?)")
	}
	for _, r := range wh.Events {
		r = WebhookRoute{URL: repl.ReplaceKnown(r.URL, ""), Match: slices.Clone(r.Match)}
		if err := checkResolvedURL(r.URL); err != nil {
			return nil, fmt.Errorf("webhook: events: %w", err)
		}
		w.routes = append(w.routes, r)
	}
	if wh.Connect != "" {
		if err := checkResolvedURL(w.connect); err != nil {
			return nil, fmt.Errorf("webhook: connect: %w", err)
		}
	}
	if wh.Disconnect != "" {
		if err := checkResolvedURL(w.disconnect); err != nil {
			return nil, fmt.Errorf("webhook: disconnect: %w", err)
		}
	}
	if wh.ServerSide != "" {
		if err := checkResolvedURL(w.serverSide); err != nil {
			return nil, fmt.Errorf("webhook: server_side: %w", err)
		}
	}
	client, err := webhook.NewClient(webhook.Config{
		Secret:             secret,
		Timeout:            time.Duration(wh.Timeout),
		MaxConcurrency:     wh.MaxConcurrency,
		ConnectConcurrency: wh.ConnectConcurrency,
		MaxBody:            int(wh.MaxBody),
		CloseGrace:         webhookCloseGrace,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	w.client = client
	return w, nil
}

func checkResolvedURL(raw string) error {
	if strings.Contains(raw, "{") {
		return fmt.Errorf("%q still holds a placeholder", raw)
	}
	return checkWebhookURL(raw)
}

// route returns the URL that gets event, if any.
func (w *webhooks) route(event string) (string, bool) {
	for _, r := range w.routes {
		for _, m := range r.Match {
			if glob.Match(m, event) {
				return r.URL, true
			}
		}
	}
	return "", false
}

// close closes the client: calls in flight finish for a short grace, then
// are cancelled, and every goroutine it started has ended on return. It is
// safe on a nil receiver and idempotent.
func (w *webhooks) close() {
	if w == nil {
		return
	}
	w.client.Close()
}

// body describes a socket for a call.
func (w *webhooks) body(s *realtime.Socket, kind string) *webhook.Body {
	b := &webhook.Body{
		Type:      kind,
		Namespace: s.Namespace().Name(),
		Socket:    s.ID(),
		Rooms:     slices.DeleteFunc(s.Rooms(), func(r string) bool { return r == s.ID() }),
	}
	if b.Rooms == nil {
		b.Rooms = []string{}
	}
	slices.Sort(b.Rooms)
	st := stateOf(s)
	b.Claims = st.getClaims()
	b.Data = st.getHookData()
	hs := s.Handshake()
	if hs == nil {
		return b
	}
	b.Address = hs.Address
	if id := identityOf(hs.Request); len(id) > 0 {
		b.Identity = id // never changed once captured: shared, not copied
	}
	for _, name := range w.headers {
		if w.isToken(auth.SourceHeader, name) {
			continue
		}
		if vals := hs.Headers.Values(name); len(vals) > 0 {
			if b.Headers == nil {
				b.Headers = make(map[string]string)
			}
			b.Headers[name] = strings.Join(vals, ", ")
		}
	}
	if len(w.cookies) > 0 {
		r := &http.Request{Header: http.Header{"Cookie": hs.Headers.Values("Cookie")}}
		for _, name := range w.cookies {
			if w.isToken(auth.SourceCookie, name) {
				continue
			}
			if c, err := r.Cookie(name); err == nil {
				if b.Cookies == nil {
					b.Cookies = make(map[string]string)
				}
				b.Cookies[name] = c.Value
			}
		}
	}
	return b
}

// decodeRaw decodes an optional JSON value keeping numbers as json.Number.
func decodeRaw(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := jsonUnmarshalNumber(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// webhookConnect is the namespace middleware that asks the connect hook. It
// runs on the connecting client's reader goroutine: only that client waits,
// at most the webhook timeout. It also arranges the disconnect notice.
func (h *hub) webhookConnect(s *realtime.Socket) error {
	w := h.policy.Load().webhook
	if w == nil {
		return nil
	}
	st := stateOf(s)
	q := st.webhookQueue()
	if w.connect != "" {
		sid, addr := s.SessionID(), s.Handshake().Address
		if d := h.backoff.Wait(sid, addr); d > 0 {
			if ce := w.logger.Check(zap.DebugLevel, "connect refused: recently refused by the connect hook"); ce != nil {
				ce.Write(zap.String("namespace", s.Namespace().Name()), zap.String("remote", addr), zap.Duration("retry_after", d))
			}
			return &realtime.ConnectError{Message: errRetryLater, Data: map[string]any{"retryAfter": d.Milliseconds()}, Cause: errBackoff}
		}
		reply, err := w.client.Call(w.connect, w.connectBody(s))
		if err != nil {
			w.logFailure(s, "connect", err)
			return &realtime.ConnectError{Message: err.Error(), Cause: err}
		}
		if len(reply.Error) > 0 {
			h.backoff.Refused(sid, addr)
			return refusal(reply.Error)
		}
		h.backoff.Admitted(sid)
		if d, err := decodeRaw(reply.Data); err != nil {
			w.logFailure(s, "connect", &webhook.Error{Reason: "bad reply", Err: err})
			return &realtime.ConnectError{Message: "webhook failed: bad reply"}
		} else if d != nil {
			st.setHookData(d)
		}
		if err := s.Join(slices.DeleteFunc(slices.Clone(reply.Rooms), func(r string) bool { return r == "" })...); err != nil {
			w.logFailure(s, "connect", &webhook.Error{Reason: "bad reply", Err: fmt.Errorf("joining the rooms of the reply: %w", err)})
			return &realtime.ConnectError{Message: "webhook failed: bad reply"}
		}
	}
	h.disconnectNotice(s, q)
	return nil
}

// disconnectNotice arranges the disconnect call of a socket, on its FIFO
// q. It is registered before the socket connects, so no disconnect is
// missed.
func (h *hub) disconnectNotice(s *realtime.Socket, q *webhook.Queue) {
	s.OnDisconnect(func(s *realtime.Socket, reason string) {
		cur := h.policy.Load().webhook
		if cur == nil || cur.disconnect == "" {
			return
		}
		b := cur.body(s, "disconnect")
		b.Reason = reason
		b.Recoverable = s.KeptForRecovery(reason)
		// Over the queue bound on purpose: the notice is never dropped.
		q.Push(webhookJob{w: cur, url: cur.disconnect, body: b, s: s}.job(), cur.queue+1)
	})
}

func (w *webhooks) connectBody(s *realtime.Socket) *webhook.Body {
	b := w.body(s, "connect")
	b.Recovered = s.Recovered()
	if hs := s.Handshake(); hs != nil {
		// The verified claims are in the body; the raw token never is,
		// nor the pid that proves a recovery session.
		for k, v := range hs.Auth {
			if w.isToken(auth.SourceAuth, k) || (w.recovery && recoveryFields(k)) {
				continue
			}
			if b.Auth == nil {
				b.Auth = make(map[string]any, len(hs.Auth))
			}
			b.Auth[k] = v
		}
		for k, vals := range hs.Query {
			if k == "EIO" || k == "transport" || k == "t" || k == "sid" || len(vals) == 0 || w.isToken(auth.SourceQuery, k) {
				continue
			}
			if b.Query == nil {
				b.Query = make(map[string]string)
			}
			b.Query[k] = vals[0]
		}
	}
	return b
}

// errBackoff is the cause of a CONNECT refused during the backoff;
// errHookRefused of one the connect hook refused.
var (
	errBackoff     = errors.New("connect refused: recently refused by the connect hook")
	errHookRefused = errors.New("connect refused by the connect hook")
)

// errRetryLater refuses a CONNECT while its client waits out the backoff
// of the connect hook's refusals (connectBackoff); the connect_error data
// holds retryAfter, in milliseconds.
const errRetryLater = "too many refused connects, retry later"

// isToken reports whether a handshake value of this kind and name is where
// the policy reads the JWT (header names compare case-insensitively).
func (w *webhooks) isToken(kind, name string) bool {
	for _, src := range w.tokens {
		if src.Kind != kind {
			continue
		}
		if src.Name == name || (kind == auth.SourceHeader && strings.EqualFold(src.Name, name)) {
			return true
		}
	}
	return false
}

// refusal turns a connect hook's error into the client's connect_error:
// {"message": "...", "data": ...} or a plain string.
func refusal(raw json.RawMessage) error {
	v, err := decodeRaw(raw)
	if err != nil {
		return &realtime.ConnectError{Message: "webhook failed: bad reply", Cause: errHookRefused}
	}
	switch e := v.(type) {
	case string:
		return &realtime.ConnectError{Message: e, Cause: errHookRefused}
	case map[string]any:
		msg, _ := e["message"].(string)
		if msg == "" {
			msg = "connection refused"
		}
		return &realtime.ConnectError{Message: msg, Data: e["data"], Cause: errHookRefused}
	}
	return &realtime.ConnectError{Message: "connection refused", Data: v, Cause: errHookRefused}
}

// webhookEvent forwards a client event when a route matches it. It never
// blocks: the call happens on the socket's FIFO goroutine.
func (h *hub) webhookEvent(p *policy, s *realtime.Socket, event string, args []any, ack realtime.AckFunc) {
	w := p.webhook
	if w == nil {
		return
	}
	url, ok := w.route(event)
	if !ok {
		return
	}
	// Made on first use: a socket connected before a reload added the
	// webhook has none yet.
	q := stateOf(s).webhookQueue()
	b := w.body(s, "event")
	b.Event = event
	b.Args = args
	if b.Args == nil {
		b.Args = []any{}
	}
	b.Ack = ack != nil
	if !q.Push(webhookJob{w: w, url: url, body: b, ack: ack, s: s}.job(), w.queue) {
		w.logger.Warn("webhook queue full, event refused",
			zap.String("namespace", b.Namespace), zap.String("socket", b.Socket),
			zap.String("event", nameForLog(event)), zap.Int("queue", w.queue))
		if ack != nil {
			_ = ack(map[string]any{"error": (&webhook.Error{Reason: "queue full"}).Error()})
		}
	}
}

// webhookJob is one call waiting in a socket's FIFO.
type webhookJob struct {
	w    *webhooks
	url  string
	body *webhook.Body
	ack  realtime.AckFunc
	s    *realtime.Socket
}

// job is j as a job of the socket's webhook.Queue, run by its config's
// client.
func (j webhookJob) job() webhook.Job {
	return webhook.Job{Client: j.w.client, Run: j.run, Fail: j.fail}
}

func (j webhookJob) fail(err error) {
	j.w.logFailure(j.s, j.body.Type, err)
	if j.ack != nil {
		_ = j.ack(map[string]any{"error": err.Error()})
	}
}

// run makes the call and applies the reply: actions (a disconnect last),
// then the ack.
func (j webhookJob) run() {
	reply, err := j.w.client.Call(j.url, j.body)
	if err != nil {
		j.fail(err)
		return
	}
	if j.body.Type != "event" {
		return
	}
	disconnect := false
	for _, a := range reply.Actions {
		j.w.apply(j.s, a)
		if a.Disconnect != nil && *a.Disconnect {
			disconnect = true
		}
	}
	if j.ack != nil {
		if err := j.sendAck(reply); err != nil {
			j.fail(err)
		}
	}
	if disconnect {
		j.s.Disconnect(false)
	}
}

func (j webhookJob) sendAck(reply *webhook.Reply) error {
	if len(reply.Error) > 0 {
		v, err := decodeRaw(reply.Error)
		if err != nil {
			return &webhook.Error{Reason: "bad reply", Err: err}
		}
		_ = j.ack(map[string]any{"error": v})
		return nil
	}
	v, err := decodeRaw(reply.Ack)
	if err != nil {
		return &webhook.Error{Reason: "bad reply", Err: err}
	}
	switch a := v.(type) {
	case nil:
		_ = j.ack()
	case []any:
		_ = j.ack(a...)
	default:
		return &webhook.Error{Reason: "bad reply", Err: errors.New(`"ack" must be an array of arguments`)}
	}
	return nil
}

// apply runs one action on s.
func (w *webhooks) apply(s *realtime.Socket, a webhook.Action) {
	for _, r := range a.Join {
		if r == "" {
			continue
		}
		if err := s.Join(r); err != nil {
			w.logger.Warn("webhook join action failed", zap.String("namespace", s.Namespace().Name()),
				zap.String("socket", s.ID()), zap.String("room", utf8cut.Cut(r, maxLoggedName)), zap.Error(err))
		}
	}
	for _, r := range a.Leave {
		if r != "" && r != s.ID() {
			s.Leave(r)
		}
	}
	if e := a.Emit; e != nil {
		var err error
		switch {
		case e.Event == "":
			err = errors.New("emit action without an event")
		case len(e.Rooms) == 0:
			err = s.Emit(e.Event, e.Args...)
		default:
			err = s.Namespace().To(e.Rooms...).Except(e.Except...).Emit(e.Event, e.Args...)
		}
		if err != nil {
			w.logger.Warn("webhook emit action failed", zap.String("namespace", s.Namespace().Name()),
				zap.String("socket", s.ID()), zap.String("event", nameForLog(e.Event)), zap.Error(err))
		}
	}
}

func (w *webhooks) logFailure(s *realtime.Socket, kind string, err error) {
	if ce := w.logger.Check(zap.WarnLevel, "webhook failed"); ce != nil {
		ce.Write(zap.String("namespace", s.Namespace().Name()), zap.String("socket", s.ID()),
			zap.String("type", kind), zap.Error(errors.Unwrap(err)), zap.String("result", err.Error()))
	}
}

// jsonUnmarshalNumber decodes one JSON value keeping numbers as json.Number.
func jsonUnmarshalNumber(b []byte, v *any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
