package adminui

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// eventCount is one entry of server_stats' aggregatedEvents.
type eventCount struct {
	Timestamp int64  `json:"timestamp"` // ms, floored to the second
	Type      string `json:"type"`
	SubType   string `json:"subType,omitempty"`
	Count     int64  `json:"count"`
}

// maxCloseReasons bounds the distinct close reasons counted between two
// stats (reasons come from the server's code, a handful; the bound is for
// safety); others are counted under "other".
const maxCloseReasons = 32

// aggregate counts the engine's traffic between two server_stats, as
// Node's EventBuffer does: connections opened, closed (by reason), message
// packets and their bytes, in and out. The hot counters are atomic adds;
// each stats takes and clears them, stamped with the second it was taken
// in (Node stamps each with the second it happened in: the sums are the
// same, spread over 2 s instead of 1).
type aggregate struct {
	conns, packetsIn, bytesIn, packetsOut, bytesOut atomic.Int64

	mu     sync.Mutex
	closes map[string]int64
}

func newAggregate() *aggregate { return &aggregate{closes: make(map[string]int64)} }

func (a *aggregate) closed(reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.closes[reason]; !ok && len(a.closes) >= maxCloseReasons {
		reason = "other"
	}
	a.closes[reason]++
}

// reset clears the counts (the first admin connects).
func (a *aggregate) reset() {
	a.take(time.Time{})
}

// take returns the counts since the last take, and clears them.
func (a *aggregate) take(now time.Time) []eventCount {
	ts := now.Truncate(time.Second).UnixMilli()
	out := []eventCount{}
	add := func(typ, sub string, n int64) {
		if n > 0 {
			out = append(out, eventCount{Timestamp: ts, Type: typ, SubType: sub, Count: n})
		}
	}
	add("rawConnection", "", a.conns.Swap(0))
	a.mu.Lock()
	for r, n := range a.closes {
		add("rawDisconnection", r, n)
	}
	clear(a.closes)
	a.mu.Unlock()
	add("packetsIn", "", a.packetsIn.Swap(0))
	add("bytesIn", "", a.bytesIn.Swap(0))
	add("packetsOut", "", a.packetsOut.Swap(0))
	add("bytesOut", "", a.bytesOut.Swap(0))
	return out
}

// The per-event view (event_received, event_sent) is bounded: a busy hub
// sends far more events than a dashboard can show, and each one forwarded
// is encoded and queued for every admin. Past the budget, events are left
// out of the view (the counts in server_stats still hold them), and each
// forwarded event's arguments are replaced by a note when they are large.
const (
	// ViewEventRate and ViewEventBurst bound the events forwarded to the
	// admins, per second and at once.
	ViewEventRate  = 100
	ViewEventBurst = 200
	// MaxViewArgsBytes bounds the arguments of one forwarded event, as
	// measured by argsSize; larger ones are replaced by a note of their
	// size.
	MaxViewArgsBytes = 16 << 10
)

// eventBudget is the token bucket of forwarded events.
type eventBudget struct {
	mu          sync.Mutex
	tokens      float64
	last        time.Time
	rate, burst float64 // ViewEventRate, ViewEventBurst; tests change them
	now         func() time.Time
}

func (b *eventBudget) init() {
	b.rate, b.burst = ViewEventRate, ViewEventBurst
	b.tokens = b.burst
	b.now = time.Now
	b.last = b.now()
}

// take spends one token; false when there is none.
func (b *eventBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// argsSize estimates the JSON size of v, stopping once it passes limit
// (so a huge argument costs no more than limit to measure).
func argsSize(v any, limit int) int {
	n := 0
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if n > limit {
			return
		}
		if depth > 32 {
			n += limit + 1
			return
		}
		switch x := v.(type) {
		case string:
			n += len(x) + 2
		case []byte:
			n += len(x)
		case json.RawMessage:
			n += len(x)
		case []any:
			n += 2
			for _, e := range x {
				walk(e, depth+1)
				n++
			}
		case map[string]any:
			n += 2
			for k, e := range x {
				n += len(k) + 4
				walk(e, depth+1)
			}
		default:
			n += 8
		}
	}
	walk(v, 0)
	return n
}
