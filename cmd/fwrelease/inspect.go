package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/build"
)

type packageSize struct {
	Package    string `json:"package"`
	Files      int    `json:"files"`
	Bytes      int64  `json:"bytes"`
	Compressed int64  `json:"compressed"`
}

func newInspect(g *globalOptions) *cobra.Command {
	var top int
	cmd := &cobra.Command{
		Use:   "inspect TARBALL",
		Short: "Check that a tarball is safe to extract and show its size by package",
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
			info, _ := f.Stat()
			sizes := bySize(c)
			if g.json {
				return json.NewEncoder(g.stdout).Encode(map[string]any{
					"file": a[0], "size": info.Size(), "uncompressed": c.Uncompressed, "entries": len(c.Members),
					"version": strings.TrimSpace(string(c.Version)), "safe": true, "packages": sizes,
				})
			}
			fmt.Fprintf(g.stdout, "%s: %d bytes (%d uncompressed), %d entries, version %s, safe to extract\n",
				a[0], info.Size(), c.Uncompressed, len(c.Members), strings.TrimSpace(string(c.Version)))
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "PACKAGE\tFILES\tBYTES\tCOMPRESSED\t")
			for i, s := range sizes {
				if top > 0 && i == top {
					fmt.Fprintf(tw, "(%d more)\t\t\t\t\n", len(sizes)-top)
					break
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", s.Package, s.Files, s.Bytes, s.Compressed)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&top, "top", 20, "show the N largest packages (0: all)")
	return cmd
}

// bySize groups members by package, largest compressed first.
func bySize(c *archive.Contents) []packageSize {
	m := map[string]*packageSize{}
	for _, mem := range c.Members {
		name := strings.TrimPrefix(mem.Name, c.Top+"/")
		p := build.PackageOf(name)
		s, ok := m[p]
		if !ok {
			s = &packageSize{Package: p}
			m[p] = s
		}
		s.Compressed += mem.Compressed
		if mem.Type == '0' {
			s.Files++
			s.Bytes += mem.Size
		}
	}
	out := make([]packageSize, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Compressed != out[j].Compressed {
			return out[i].Compressed > out[j].Compressed
		}
		return out[i].Package < out[j].Package
	})
	return out
}
