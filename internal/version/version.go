// Package version holds the version of ferry and of the provider, stamped by release builds.
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set by release builds with
//
//	-ldflags "-X github.com/ferry-dev/terraform-provider-ferry/internal/version.Version=1.2.3"
//
// (.goreleaser.yaml does it for both binaries, without the tag's "v", as Terraform writes provider
// versions). Any other build leaves "dev", and Get reports the module version Go recorded in the
// binary instead, if any: `go install …/cmd/ferry@v1.2.3` gives 1.2.3.
var Version = "dev"

// Commit is the Git commit of a release build, set like Version; empty otherwise.
var Commit = ""

// Get returns the version: Version when the build stamped it; else, for a binary built by `go
// install module@version` (a module version and no VCS information), that version without its
// "v"; else "dev" — also for `go build` in a clone, whose VCS-derived pseudo-version names no
// release.
func Get() string {
	if Version != "dev" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs" {
			return Version
		}
	}
	return strings.TrimPrefix(info.Main.Version, "v")
}

// UserAgent returns the User-Agent of program's HTTP clients: "program/VERSION".
func UserAgent(program string) string {
	return program + "/" + Get()
}
