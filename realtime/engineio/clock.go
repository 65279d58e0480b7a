package engineio

import "time"

// clock is where the engine's timers come from: the heartbeat (ping
// interval, pong deadline and its one extension), the slow-client grace,
// the polling close linger, the websocket writer's idle linger and the
// upgrade timeout. Production uses realClock; tests set Options.clock to a
// fake that moves only when told (fakeClock in clock_test.go).
//
// Network deadlines (SetWriteDeadline, the close frame's) do not use it:
// the operating system enforces those in real time.
type clock interface {
	Now() time.Time
	// AfterFunc runs f on its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) timer
	// NewTimer returns a timer that delivers on Chan once d has passed.
	NewTimer(d time.Duration) chanTimer
}

// timer is the part of *time.Timer the engine uses. As with Go 1.23+
// timers, after Stop or Reset returns no value of the previous period is
// delivered.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// chanTimer is a timer that delivers on a channel (time.NewTimer's C).
type chanTimer interface {
	timer
	Chan() <-chan time.Time
}

// realClock is the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

func (realClock) NewTimer(d time.Duration) chanTimer { return realChanTimer{time.NewTimer(d)} }

type realChanTimer struct{ *time.Timer }

func (t realChanTimer) Chan() <-chan time.Time { return t.C }
