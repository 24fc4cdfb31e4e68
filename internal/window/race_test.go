//go:build race

package window

// raceEnabled is true when the tests run under the race detector, which slows them down.
const raceEnabled = true
