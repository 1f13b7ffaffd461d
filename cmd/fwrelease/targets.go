package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// targetJSON is one row of `targets --json`, ready for a CI matrix.
type targetJSON struct {
	ID       string `json:"id"`
	Python   string `json:"python"`
	Accel    string `json:"accel"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Platform string `json:"platform"`
	File     string `json:"file"`
}

func newTargets(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "targets",
		Short: "Print the target matrix",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig("")
			if err != nil {
				return err
			}
			rows := []targetJSON{}
			for _, t := range cfg.Targets() {
				rows = append(rows, targetJSON{
					ID: t.ID(), Python: t.Python, Accel: t.Accel, OS: t.OS, Arch: t.Arch,
					Platform: t.Platform(),
					File:     t.FileStem(cfg.Name, cfg.Version.Literal) + cfg.Extension(),
				})
			}
			if g.json {
				enc := json.NewEncoder(g.stdout)
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tPLATFORM\tFILE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Platform, r.File)
			}
			return tw.Flush()
		},
	}
}
