//go:build race

package socketio

// raceSlowdown stretches load schedules in tests: under the race detector
// the test's reader runs several times slower than a publishing loop.
const raceSlowdown = 4
