//go:build !race

package cluster

// slow stretches the timings (see race.go).
const slow = 1
