//go:build !race

package socketio

// raceSlowdown: see race_on_test.go.
const raceSlowdown = 1
