package realtime

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/internal/utf8cut"
	"github.com/caddy-socketio/caddy-socketio/realtime/parser"
)

// Messages of the acknowledgements answered for dropped events, in the
// module's ack-error shape [{"error": "..."}].
const (
	errRateLimited      = "rate limit exceeded"
	errEventNameTooLong = "event name too long"
)

// eventLimiter is a socket's token bucket for client events. It is used on
// the connection's reader goroutine only (events are delivered one at a
// time, in order), so it needs no lock.
type eventLimiter struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time

	// Drops are counted per window of burst/rate: the window starts at the
	// first drop after the previous one ended.
	window      time.Duration
	windowStart time.Time
	dropped     int
	warned      bool
}

// limitVerdict is what the limiter says of one event.
type limitVerdict uint8

const (
	limitPass limitVerdict = iota
	limitDrop
	limitDropStart // dropped, the first drop of a window
	limitDisconnect
)

func newEventLimiter(rate float64, burst int, now time.Time) *eventLimiter {
	return &eventLimiter{
		rate:   rate,
		burst:  float64(burst),
		tokens: float64(burst),
		last:   now,
		window: time.Duration(float64(burst) / rate * float64(time.Second)),
	}
}

// take spends a token for one event at now.
func (l *eventLimiter) take(now time.Time) limitVerdict {
	if el := now.Sub(l.last); el > 0 {
		l.tokens += el.Seconds() * l.rate
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
		l.last = now
	}
	if l.tokens >= 1 {
		l.tokens--
		return limitPass
	}
	v := limitDrop
	if l.dropped == 0 || now.Sub(l.windowStart) >= l.window {
		l.windowStart = now
		l.dropped = 0
		v = limitDropStart
	}
	l.dropped++
	if float64(l.dropped) >= l.burst {
		return limitDisconnect
	}
	return v
}

func (l *eventLimiter) describe() string {
	return fmt.Sprintf("%g events/s, burst %g", l.rate, l.burst)
}

// limitEvent applies the event rate limit; false when the event must be
// dropped (the socket may have been disconnected).
func (s *Socket) limitEvent() bool {
	l := s.limiter
	if l == nil {
		return true
	}
	switch l.take(time.Now()) {
	case limitPass:
		return true
	case limitDropStart:
		if !l.warned {
			l.warned = true
			s.nsp.srv.logger().Warn("socket rate limited: dropping its events",
				zap.String("socket", s.id), zap.String("namespace", s.nsp.name),
				zap.String("sid", s.conn.sess.ID()), zap.String("limit", l.describe()))
		}
		s.limited(LimitEventRate)
	case limitDisconnect:
		s.nsp.srv.logger().Info("socket disconnected: "+errRateLimited,
			zap.String("socket", s.id), zap.String("namespace", s.nsp.name),
			zap.String("sid", s.conn.sess.ID()), zap.String("limit", l.describe()),
			zap.Int("dropped", l.dropped), zap.Duration("within", time.Since(l.windowStart)))
		s.limited(LimitEventRateDisconnect)
		s.conn.disconnectAllWith(errRateLimited, errRateLimited)
	}
	return false
}

// limited reports a limit to Options.OnLimited.
func (s *Socket) limited(limit string) {
	if fn := s.conn.opts.OnLimited; fn != nil {
		fn(s, limit)
	}
}

// ackError answers an acknowledgement request with [{"error": msg}].
func (s *Socket) ackError(id int64, msg string) {
	_ = s.ackFunc(id)(map[string]any{"error": msg})
}

// The refused CONNECTs of one connection are bounded too, whenever the
// event limit is on: a client that sends CONNECT again as soon as it is
// refused must not run the middlewares (the token check, a connect
// webhook) in a loop. Each refusal spends a token of a bucket of
// connectBurst refilled at connectRate per second; while the bucket is
// empty, CONNECTs are refused before the middlewares. Admitted CONNECTs
// cost nothing, so connecting and leaving namespaces is never limited.
const (
	connectRate  = 2
	connectBurst = 20
)

// available reports whether a token is there at now, without spending it.
func (l *eventLimiter) available(now time.Time) bool {
	if el := now.Sub(l.last); el > 0 {
		l.tokens = min(l.tokens+el.Seconds()*l.rate, l.burst)
		l.last = now
	}
	return l.tokens >= 1
}

// limitConnect applies the bound on refused CONNECTs; false when the
// CONNECT must not be served: it is refused with CONNECT_ERROR "rate limit
// exceeded", and a connection that keeps going (connectBurst such refusals
// within one refill) is closed.
func (c *conn) limitConnect(nsp string) bool {
	l := c.connects
	if l == nil {
		return true
	}
	now := time.Now()
	if l.available(now) {
		return true
	}
	switch l.take(now) {
	case limitPass: // not reached: no token was available
		return true
	case limitDisconnect:
		c.srv.logger().Info("connection closed: "+errRateLimited,
			zap.String("sid", c.sess.ID()), zap.String("limit", fmt.Sprintf("%d refused CONNECTs, then %d/s", connectBurst, connectRate)),
			zap.Int("dropped", l.dropped))
		c.sess.Close(errRateLimited)
		return false
	case limitDropStart:
		if !l.warned {
			l.warned = true
			c.srv.logger().Warn("connection rate limited: refusing its CONNECTs",
				zap.String("sid", c.sess.ID()), zap.String("namespace", utf8cut.Cut(nsp, 64)))
		}
	}
	_ = c.write(mustEncode(&parser.Packet{Type: parser.ConnectError, Namespace: nsp, ID: parser.NoID,
		Data: connectErrorPayload{Message: errRateLimited}}))
	return false
}
