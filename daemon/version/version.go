// Package version carries the build identity printed by every binary and served at
// /version. The Makefile stamps Version and GitSHA at link time.
package version

import "runtime"

// Set by the linker (-X); the defaults mark an unstamped development build.
var (
	Version   = "0.1.0-dev"
	GitSHA    = "unknown"
	BuildType = "release"
)

// String is the one-line identity, e.g. "Pegasus Server 0.1.0 (abc1234) release linux/amd64".
func String(product string) string {
	return product + " " + Version + " (" + GitSHA + ") " + BuildType + " " + runtime.GOOS + "/" + runtime.GOARCH
}
