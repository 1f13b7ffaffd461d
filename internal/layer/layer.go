// Package layer splits a built tree into OCI image layers: the
// dependencies, which change rarely, apart from the worker's own files, so
// that an upgrade which changes only the worker ships only the worker's
// layer. Layers are packed by internal/archive under the tarball's rules,
// so the same content gives the same layer digest on any machine.
package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/atomicfile"
)

// Rule names a layer and the paths (globs relative to the tree's top, "**"
// for any number of directories) that go into it. The first rule that
// matches an entry takes it; the last rule takes every entry no rule
// matches, so it needs no paths.
type Rule struct {
	Name  string   `yaml:"name"`
	Paths []string `yaml:"paths"`
}

// Defaults are the layers of a layout: the dependencies (and for bundled,
// the interpreter, the venv and uv) in "deps", everything else in "worker".
func Defaults(layout string) []Rule {
	deps := []string{"site-packages/**"}
	if layout == "bundled" {
		deps = append(deps, "python/**", "venv/**", "uv")
	}
	return []Rule{{Name: "deps", Paths: deps}, {Name: "worker"}}
}

// CheckPattern refuses a glob that could never match a tree entry or that
// path.Match cannot parse.
func CheckPattern(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("%q must be a relative path pattern inside the tree, such as site-packages/**", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
	}
	return nil
}

// Match reports whether name (slash-separated, relative to the top) matches
// pattern; "**" matches any number of path segments, none included, so
// "site-packages/**" matches the directory itself too.
func Match(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// Split sorts entries (the tree's, as archive.Collect gives them) into one
// list per rule, each with the directories above its entries so that it
// unpacks alone. The top entry ("") belongs to no layer.
func Split(entries []archive.Entry, rules []Rule) [][]archive.Entry {
	dirs := map[string]archive.Entry{}
	for _, e := range entries {
		if e.Kind == archive.Dir {
			dirs[e.Name] = e
		}
	}
	out := make([][]archive.Entry, len(rules))
	have := make([]map[string]bool, len(rules))
	for i := range have {
		have[i] = map[string]bool{}
	}
	for _, e := range entries {
		if e.Name == "" {
			continue
		}
		i := ruleFor(e.Name, rules)
		for _, parent := range ancestors(e.Name) {
			if d, ok := dirs[parent]; ok && !have[i][parent] {
				have[i][parent] = true
				out[i] = append(out[i], d)
			}
		}
		if e.Kind == archive.Dir && have[i][e.Name] {
			continue
		}
		have[i][e.Name] = true
		out[i] = append(out[i], e)
	}
	for i := range out {
		archive.SortEntries(out[i])
	}
	return out
}

func ruleFor(name string, rules []Rule) int {
	for i, r := range rules[:len(rules)-1] {
		for _, p := range r.Paths {
			if Match(p, name) {
				return i
			}
		}
	}
	return len(rules) - 1
}

// ancestors are the directories above name, outermost first, the top ("")
// left out.
func ancestors(name string) []string {
	var out []string
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// Layer is one packed layer file.
type Layer struct {
	Name   string // the rule's
	Path   string // on disk
	Digest string // "sha256:…" of the compressed file
	Size   int64
	// DiffID ("sha256:…") and TarSize are the uncompressed tar stream's;
	// "" and 0 when not known (a layer read back from disk).
	DiffID  string
	TarSize int64
}

// Options say where and how to pack layers.
type Options struct {
	Dir    string    // the layer files go here, as {name}.tar.gz
	Prefix string    // a directory the tree goes under ("opt/flash-worker"); "" for the root
	Epoch  time.Time // every entry's mtime, as in the tarball
	// TempDir is for the packer's spill-over; "" is the system's.
	TempDir string
}

// Write packs the tree's entries into one gzip layer per rule. Entries
// must be regular files (with Source), directories or symlinks; files of
// equal content within a layer are stored once, as in the tarball, but a
// layer never links into another.
func Write(ctx context.Context, entries []archive.Entry, rules []Rule, o Options) ([]Layer, error) {
	if len(rules) == 0 {
		return nil, errors.New("no layers to write")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	var layers []Layer
	for i, part := range Split(entries, rules) {
		l, err := writeOne(ctx, rules[i].Name, withPrefix(part, o.Prefix), o)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return layers, nil
}

// withPrefix moves entries under prefix, adding its own directories.
func withPrefix(entries []archive.Entry, prefix string) []archive.Entry {
	if prefix == "" {
		return entries
	}
	var out []archive.Entry
	for _, d := range append(ancestors(prefix), prefix) {
		out = append(out, archive.Entry{Name: d, Kind: archive.Dir, Mode: 0o755})
	}
	for _, e := range entries {
		e.Name = path.Join(prefix, e.Name)
		if e.Kind == archive.Hardlink {
			e.Link = path.Join(prefix, e.Link)
		}
		out = append(out, e)
	}
	return out
}

func writeOne(ctx context.Context, name string, entries []archive.Entry, o Options) (Layer, error) {
	p := filepath.Join(o.Dir, name+".tar.gz")
	var d archive.Digest
	err := atomicfile.WriteWith(p, 0o644, func(w io.Writer) error {
		var err error
		d, err = archive.Pack(ctx, w, entries, archive.Options{Epoch: o.Epoch, Format: archive.TarGz, LinkDuplicates: true, TempDir: o.TempDir})
		return err
	})
	if err != nil {
		return Layer{}, fmt.Errorf("writing layer %s to %s: %w", name, p, err)
	}
	return Layer{Name: name, Path: p, Digest: "sha256:" + d.SHA256, Size: d.Size, DiffID: "sha256:" + d.TarSHA256, TarSize: d.TarSize}, nil
}
