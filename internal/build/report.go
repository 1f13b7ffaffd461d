package build

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

// PackageOf names what a path in the tarball belongs to: the distribution
// or top-level module under site-packages, else "(worker)".
func PackageOf(name string) string {
	rest, ok := strings.CutPrefix(name, "site-packages/")
	if !ok {
		return "(worker)"
	}
	top, _, _ := strings.Cut(rest, "/")
	switch top {
	case "":
		return "(worker)"
	case "bin":
		return "(scripts)"
	}
	for _, suffix := range []string{".dist-info", ".egg-info", ".libs", ".data"} {
		if s, ok := strings.CutSuffix(top, suffix); ok {
			top = s
			if i := strings.Index(top, "-"); i > 0 && suffix != ".libs" {
				top = top[:i]
			}
		}
	}
	top = strings.TrimSuffix(top, ".py")
	if i := strings.Index(top, ".cpython-"); i > 0 {
		top = top[:i]
	}
	return normalizeName(top)
}

// SizeReport is a table of uncompressed size by package, largest first.
func SizeReport(entries []archive.Entry, top int) string {
	sizes := map[string]int64{}
	files := map[string]int{}
	var total int64
	for _, e := range entries {
		if e.Kind != archive.File {
			continue
		}
		p := PackageOf(e.Name)
		sizes[p] += e.Size
		files[p]++
		total += e.Size
	}
	names := make([]string, 0, len(sizes))
	for n := range sizes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if sizes[names[i]] != sizes[names[j]] {
			return sizes[names[i]] > sizes[names[j]]
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PACKAGE\tFILES\tBYTES\t")
	for i, n := range names {
		if i == top {
			fmt.Fprintf(tw, "(%d more)\t\t\t\n", len(names)-top)
			break
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", n, files[n], sizes[n])
	}
	fmt.Fprintf(tw, "total\t\t%d\t\n", total)
	tw.Flush()
	return b.String()
}
