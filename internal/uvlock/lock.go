// Package uvlock reads uv's lock file (uv.lock) and selects, for one target,
// the packages `uv export --no-dev` would install and the wheel of each that
// the target's interpreter accepts, so that a release installs exactly what
// was locked and tested, without uv.
package uvlock

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/runpod-workers/fwrelease/internal/pep440"
)

// Lock is a decoded uv.lock.
type Lock struct {
	Version        int       `toml:"version"`
	RequiresPython string    `toml:"requires-python"`
	Packages       []Package `toml:"package"`

	path   string
	byName map[string][]int // normalised name → indexes in Packages
}

// Package is one [[package]] of the lock.
type Package struct {
	Name                 string                  `toml:"name"`
	Version              string                  `toml:"version"`
	Source               map[string]string       `toml:"source"`
	Dependencies         []Dependency            `toml:"dependencies"`
	OptionalDependencies map[string][]Dependency `toml:"optional-dependencies"`
	DevDependencies      map[string][]Dependency `toml:"dev-dependencies"`
	Wheels               []File                  `toml:"wheels"`
	Sdist                *File                   `toml:"sdist"`
}

// Dependency is an edge of the locked graph: a package, the extras of it
// wanted, and the marker under which it applies.
type Dependency struct {
	Name    string            `toml:"name"`
	Version string            `toml:"version"`
	Source  map[string]string `toml:"source"`
	Marker  string            `toml:"marker"`
	Extra   []string          `toml:"extra"`
}

// File is a wheel or sdist the lock pins.
type File struct {
	URL  string `toml:"url"`
	Path string `toml:"path"`
	Hash string `toml:"hash"`
	Size int64  `toml:"size"`
}

// Filename is the file's name, from its URL or path.
func (f File) Filename() string { return path.Base(f.URL + f.Path) }

// SHA256 is the lock's hex sha256 of the file, or "" when it has none.
func (f File) SHA256() string {
	h, ok := strings.CutPrefix(f.Hash, "sha256:")
	if !ok {
		return ""
	}
	return h
}

// Read decodes a uv.lock.
func Read(p string) (*Lock, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var l Lock
	if err := toml.Unmarshal(data, &l); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("%s:%d:%d: %s", p, row, col, de.Error())
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if l.Version != 1 {
		return nil, fmt.Errorf("%s: lock version %d; fwrelease reads uv's version 1 format", p, l.Version)
	}
	if len(l.Packages) == 0 {
		return nil, fmt.Errorf("%s: no [[package]] entries", p)
	}
	l.path = p
	l.byName = map[string][]int{}
	for i, pkg := range l.Packages {
		n := normalize(pkg.Name)
		l.byName[n] = append(l.byName[n], i)
	}
	return &l, nil
}

// Selected is one package to install for a target, and the wheel chosen.
type Selected struct {
	Name, Version string
	Wheel         File
}

// isProject reports whether p is the project itself (or a workspace
// member), which the lock describes but the tarball carries as source.
func (p Package) isProject() bool {
	_, virtual := p.Source["virtual"]
	_, editable := p.Source["editable"]
	return virtual || editable
}

// Select walks the locked graph from the project's dependencies, as
// `uv export --no-dev` does: dev dependency groups are left out, a
// dependency applies only when its marker holds for env, and an edge's
// extras bring in the optional dependencies they name. For every package
// it chooses the wheel the target's tags prefer.
func (l *Lock) Select(env Env, tags []string) ([]Selected, error) {
	// The patch release is unknown: any of X.Y will do (>=3.10.4 admits 3.10).
	ok, err := l.allows(env["python_version"] + ".0")
	if err == nil && !ok {
		ok, err = l.allows(env["python_version"] + ".999")
	}
	if err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("requires-python %q excludes Python %s", l.RequiresPython, env["python_version"])
		}
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	type key struct{ name, version string }
	type item struct {
		pkg    int
		extras []string
	}
	var queue []item
	for i, p := range l.Packages {
		if p.isProject() {
			queue = append(queue, item{pkg: i})
		}
	}
	if len(queue) == 0 {
		return nil, fmt.Errorf("%s: no package with source virtual or editable (the project itself)", l.path)
	}
	chosen := map[int]bool{}   // packages to install
	expanded := map[int]bool{} // packages whose own dependencies are queued
	seenExtra := map[key]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		p := l.Packages[it.pkg]
		var edges []Dependency
		if !expanded[it.pkg] {
			expanded[it.pkg] = true
			edges = append(edges, p.Dependencies...)
		}
		for _, x := range it.extras {
			k := key{p.Name, normalize(x)}
			if !seenExtra[k] {
				seenExtra[k] = true
				edges = append(edges, p.OptionalDependencies[x]...)
			}
		}
		for _, d := range edges {
			ok, err := Eval(d.Marker, env)
			if err != nil {
				return nil, fmt.Errorf("%s: package %s: %w", l.path, p.Name, err)
			}
			if !ok {
				continue
			}
			i, err := l.find(d)
			if err != nil {
				return nil, fmt.Errorf("%s: package %s: %w", l.path, p.Name, err)
			}
			chosen[i] = true
			queue = append(queue, item{pkg: i, extras: d.Extra})
		}
	}
	return l.wheels(chosen, tags)
}

// find returns the index of the package a dependency edge names: by
// name, and by version when the edge gives one (a name locked at two
// versions for different markers).
func (l *Lock) find(d Dependency) (int, error) {
	var hits []int
	for _, i := range l.byName[normalize(d.Name)] {
		if d.Version == "" || l.Packages[i].Version == d.Version {
			hits = append(hits, i)
		}
	}
	if len(hits) != 1 {
		return 0, fmt.Errorf("dependency %s %s: %d packages in the lock match", d.Name, d.Version, len(hits))
	}
	return hits[0], nil
}

// allows reports whether requires-python (">=3.10, <3.14") admits the
// Python version.
func (l *Lock) allows(python string) (bool, error) {
	spec, err := pep440.ParseSpecifiers(l.RequiresPython)
	if err != nil {
		return false, fmt.Errorf("requires-python: %w", err)
	}
	v, err := pep440.Parse(python)
	if err != nil {
		return false, err
	}
	return spec.Contains(v), nil
}

func (l *Lock) wheels(chosen map[int]bool, tags []string) ([]Selected, error) {
	rank := map[string]int{}
	for i, t := range tags {
		rank[t] = i
	}
	var out []Selected
	for i := range chosen {
		p := l.Packages[i]
		if p.isProject() {
			continue
		}
		best, bestRank := -1, len(tags)
		for w, f := range p.Wheels {
			if r, ok := wheelRank(f.Filename(), rank); ok && r < bestRank {
				best, bestRank = w, r
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("%s: package %s %s has no wheel for this target (its wheels: %s)", l.path, p.Name, p.Version, wheelNames(p.Wheels))
		}
		if p.Wheels[best].SHA256() == "" {
			return nil, fmt.Errorf("%s: package %s %s: wheel %s has no sha256 in the lock", l.path, p.Name, p.Version, p.Wheels[best].Filename())
		}
		out = append(out, Selected{Name: p.Name, Version: p.Version, Wheel: p.Wheels[best]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func wheelNames(ws []File) string {
	if len(ws) == 0 {
		return "none; sdists are not built"
	}
	var names []string
	for _, w := range ws {
		names = append(names, w.Filename())
	}
	return strings.Join(names, ", ")
}

var normalizeRE = regexp.MustCompile(`[-_.]+`)

// normalize is PEP 503's name normalisation.
func normalize(name string) string { return strings.ToLower(normalizeRE.ReplaceAllString(name, "-")) }

// Normalize is PEP 503's name normalisation, for callers matching names.
func Normalize(name string) string { return normalize(name) }
