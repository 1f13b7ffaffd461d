package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set by the release build with -ldflags "-X main.version=…".
var version = ""

func newVersion(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fwrelease's version",
		Args:  args(cobra.NoArgs),
		Run: func(*cobra.Command, []string) {
			v := version
			if info, ok := debug.ReadBuildInfo(); ok && v == "" {
				v = info.Main.Version
			}
			if v == "" {
				v = "(devel)"
			}
			fmt.Fprintln(g.stdout, "fwrelease", v)
		},
	}
}
