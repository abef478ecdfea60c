//go:build race

package ratelimit

// raceEnabled: the race detector makes sync.Pool drop objects on purpose,
// so allocation counts mean nothing then.
const raceEnabled = true
