// Package buildinfo holds the version stamped into the executable at build
// time with -ldflags "-X github.com/brickferry/brickferry/internal/buildinfo.Version=1.2.3".
package buildinfo

import "runtime/debug"

// Version is set by the linker; see the Makefile. It stays empty in `go run`
// and `go test` builds, where CurrentVersion falls back to the module version.
var Version string

// CurrentVersion is the stamped version, or the main module's version from
// the build info (e.g. "(devel)") when the linker did not stamp one.
func CurrentVersion() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
