package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

func newInspect(g *globalOptions) *cobra.Command {
	var top int
	cmd := &cobra.Command{
		Use:   "inspect TARBALL",
		Short: "Check a tarball's layout and show what is in it",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, a []string) error {
			f, err := os.Open(a[0])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := archive.Read(f)
			if err != nil {
				return fmt.Errorf("inspecting %s: %w", a[0], err)
			}
			fmt.Fprintf(g.stdout, "%s: %d entries, %d bytes uncompressed, version %q, safe to extract\n", a[0], len(c.Members), c.Uncompressed, string(c.Version))
			return nil
		},
	}
	cmd.Flags().IntVar(&top, "top", 20, "show the N largest packages")
	return cmd
}
