//go:build race

package engineio

// raceSlowdown stretches load schedules in tests: code under the race
// detector runs several times slower, the test's reader and the server's
// writer more than a tight publishing loop.
const raceSlowdown = 4
