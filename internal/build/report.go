package build

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/config"
)

// PackageOf names what a path in the tarball belongs to: the distribution
// or top-level module under site-packages, else "(worker)".
func PackageOf(name string) string {
	if strings.HasPrefix(name, "python/") {
		return "(interpreter)"
	}
	i := strings.Index(name, "site-packages/")
	if i < 0 || (i > 0 && name[i-1] != '/') {
		return "(worker)"
	}
	rest := name[i+len("site-packages/"):]
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

type packageSizes struct {
	names []string // largest first
	sizes map[string]int64
	files map[string]int
	total int64
}

func sizesOf(entries []archive.Entry) packageSizes {
	ps := packageSizes{sizes: map[string]int64{}, files: map[string]int{}}
	for _, e := range entries {
		if e.Kind != archive.File {
			continue
		}
		p := PackageOf(e.Name)
		ps.sizes[p] += e.Size
		ps.files[p]++
		ps.total += e.Size
	}
	for n := range ps.sizes {
		ps.names = append(ps.names, n)
	}
	sort.Slice(ps.names, func(i, j int) bool {
		a, b := ps.names[i], ps.names[j]
		if ps.sizes[a] != ps.sizes[b] {
			return ps.sizes[a] > ps.sizes[b]
		}
		return a < b
	})
	return ps
}

// LargestPackages is a one-line summary for the build log:
// "numpy 19.2 MiB, aiohttp 3.1 MiB, …" (uncompressed).
func LargestPackages(entries []archive.Entry, top int) string {
	ps := sizesOf(entries)
	var parts []string
	for i, n := range ps.names {
		if i == top {
			break
		}
		parts = append(parts, n+" "+config.Size(ps.sizes[n]).String())
	}
	return strings.Join(parts, ", ")
}

// SizeReport is a table of uncompressed size by package, largest first.
func SizeReport(entries []archive.Entry, top int) string {
	ps := sizesOf(entries)
	names, sizes, files, total := ps.names, ps.sizes, ps.files, ps.total
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
