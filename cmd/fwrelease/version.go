package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by the release build (.goreleaser.yaml):
//
//	-ldflags "-X main.version=1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// Empty in other builds, which fall back on what the Go toolchain recorded.
var version, commit, date string

// buildInfo is what `fwrelease version` reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

// currentBuild prefers the stamped values; a `go install module@version`
// build knows its module version, and a build in a checkout knows the VCS
// revision and time, so each of those fills what the stamp left empty.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return withUnknowns(b)
	}
	if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit == "" && b.Commit != "" {
		b.Commit += "-dirty"
	}
	return withUnknowns(b)
}

func withUnknowns(b buildInfo) buildInfo {
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func newVersion(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fwrelease's version, commit and build date",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			b := currentBuild()
			if g.json {
				return json.NewEncoder(g.stdout).Encode(b)
			}
			_, err := fmt.Fprintf(g.stdout, "fwrelease %s\ncommit %s\nbuilt %s\n%s\n", b.Version, b.Commit, b.Date, b.Go)
			return err
		},
	}
}
