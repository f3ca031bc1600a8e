//go:build race

package cluster

// slow stretches the timings under the race detector, which makes every
// server several times slower: at the normal timings, beacons late by a
// second have live servers declared dead.
const slow = 3
