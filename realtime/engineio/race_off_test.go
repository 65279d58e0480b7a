//go:build !race

package engineio

// raceSlowdown: see race_on_test.go.
const raceSlowdown = 1
