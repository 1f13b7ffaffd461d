package uvlock

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/runpod-workers/fwrelease/internal/pep440"
)

// Project is what pyproject.toml declares that uv.lock must agree with.
type Project struct {
	Name           string
	Version        string // "" when dynamic
	RequiresPython string
	Dependencies   []string
	Optional       map[string][]string
	Groups         map[string][]string // include-group entries left out: their group is checked itself

	path string
}

// ReadProject reads the [project] table and [dependency-groups] of a
// pyproject.toml.
func ReadProject(p string) (*Project, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Project struct {
			Name                 string              `toml:"name"`
			Version              string              `toml:"version"`
			RequiresPython       string              `toml:"requires-python"`
			Dependencies         []string            `toml:"dependencies"`
			OptionalDependencies map[string][]string `toml:"optional-dependencies"`
		} `toml:"project"`
		DependencyGroups map[string][]any `toml:"dependency-groups"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if doc.Project.Name == "" {
		return nil, fmt.Errorf("%s: no [project] name", p)
	}
	pr := &Project{
		Name: doc.Project.Name, Version: doc.Project.Version, RequiresPython: doc.Project.RequiresPython,
		Dependencies: doc.Project.Dependencies, Optional: doc.Project.OptionalDependencies,
		Groups: map[string][]string{}, path: p,
	}
	for g, entries := range doc.DependencyGroups {
		for _, e := range entries {
			if s, ok := e.(string); ok {
				pr.Groups[g] = append(pr.Groups[g], s)
			}
		}
	}
	return pr, nil
}

// ErrStale marks a lock that pyproject.toml has moved past.
var ErrStale = errors.New("the lock is stale: run `uv lock` and commit uv.lock")

// CheckFresh refuses a lock that does not match pyproject.toml, as `uv
// export --locked` would: the project's locked version is pyproject's,
// requires-python is the same, and every requirement (the dependencies,
// each extra and each dependency group) is locked at a version inside its
// specifier wherever its marker holds, with nothing locked that pyproject
// no longer asks for. "Wherever" is CPython 3.6–3.20 on Linux, x86_64 and
// aarch64, as far as requires-python admits: every place a tarball runs,
// whichever targets this build has.
func (l *Lock) CheckFresh(p *Project) error {
	var envs []Env
	for minor := 6; minor <= 20; minor++ {
		python := fmt.Sprintf("3.%d", minor)
		first, _ := l.allows(python + ".0")
		last, _ := l.allows(python + ".999")
		if !first && !last {
			continue
		}
		envs = append(envs, TargetEnv(python, "x86_64"), TargetEnv(python, "aarch64"))
	}
	if err := l.checkFresh(p, envs); err != nil {
		return fmt.Errorf("%s against %s: %w; %w", l.path, p.path, err, ErrStale)
	}
	return nil
}

func (l *Lock) checkFresh(p *Project, envs []Env) error {
	var proj *Package
	for i, pkg := range l.Packages {
		if pkg.isProject() && normalize(pkg.Name) == normalize(p.Name) {
			proj = &l.Packages[i]
		}
	}
	if proj == nil {
		return fmt.Errorf("no entry for the project %s", p.Name)
	}
	if p.Version != "" && proj.Version != "" && !sameVersion(p.Version, proj.Version) {
		return fmt.Errorf("the project %s is locked at version %s, pyproject.toml says %s", p.Name, proj.Version, p.Version)
	}
	if p.RequiresPython != "" && !sameSpecifiers(p.RequiresPython, l.RequiresPython) {
		return fmt.Errorf("requires-python is %q in the lock, %q in pyproject.toml", l.RequiresPython, p.RequiresPython)
	}
	if err := l.checkRequirements("[project] dependencies", p.Dependencies, proj.Dependencies, nil, envs); err != nil {
		return err
	}
	optional, lockedOptional := byNormalName(p.Optional), byNormalName(proj.OptionalDependencies)
	for _, x := range sortedKeys(optional, lockedOptional) {
		if err := l.checkRequirements("[project.optional-dependencies] "+x, optional[x], lockedOptional[x], []string{x}, envs); err != nil {
			return err
		}
	}
	groups, lockedGroups := byNormalName(p.Groups), byNormalName(proj.DevDependencies)
	for _, g := range sortedKeys(groups, lockedGroups) {
		if err := l.checkRequirements("[dependency-groups] "+g, groups[g], lockedGroups[g], nil, envs); err != nil {
			return err
		}
	}
	return nil
}

// checkRequirements checks one list of pyproject's requirements against
// the project's locked edges for the same list.
func (l *Lock) checkRequirements(list string, reqs []string, edges []Dependency, extras []string, envs []Env) error {
	wanted := map[string]bool{}
	for _, text := range reqs {
		r, err := parseRequirement(text)
		if err != nil {
			return fmt.Errorf("pyproject.toml's %s: %w", list, err)
		}
		wanted[normalize(r.name)] = true
		for _, env := range envs {
			if err := l.checkRequirement(list, r, edges, env, extras); err != nil {
				return err
			}
		}
	}
	for _, e := range edges {
		if !wanted[normalize(e.Name)] {
			return fmt.Errorf("the lock's %s has %s, which pyproject.toml no longer lists", list, e.Name)
		}
	}
	return nil
}

func (l *Lock) checkRequirement(list string, r requirement, edges []Dependency, env Env, extras []string) error {
	on, err := Eval(r.marker, env, extras...)
	if err != nil {
		return fmt.Errorf("pyproject.toml's %s: %s: %w", list, r.text, err)
	}
	if !on {
		return nil
	}
	found := false
	for _, e := range edges {
		if normalize(e.Name) != normalize(r.name) {
			continue
		}
		if on, err := Eval(e.Marker, env, extras...); err != nil || !on {
			if err != nil {
				return fmt.Errorf("package %s: %w", e.Name, err)
			}
			continue
		}
		found = true
		i, err := l.find(e)
		if err != nil {
			return err
		}
		locked := l.Packages[i].Version
		v, err := pep440.Parse(locked)
		if err != nil {
			return fmt.Errorf("package %s: %w", e.Name, err)
		}
		if !r.spec.Contains(v) {
			return fmt.Errorf("package %s is locked at %s, outside %q that pyproject.toml's %s asks for", l.Packages[i].Name, locked, r.spec.String(), list)
		}
	}
	if !found {
		return fmt.Errorf("pyproject.toml's %s asks for %q, which the lock does not have for Python %s", list, r.text, env["python_version"])
	}
	return nil
}

// requirement is a PEP 508 requirement: name[extras] specifier ; marker,
// or name[extras] @ url ; marker.
type requirement struct {
	name, marker, text string
	spec               pep440.Specifiers
}

var requirementRE = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(.*)$`)

func parseRequirement(text string) (requirement, error) {
	m := requirementRE.FindStringSubmatch(text)
	if m == nil {
		return requirement{}, fmt.Errorf("cannot read requirement %q", text)
	}
	r := requirement{name: m[1], text: strings.TrimSpace(text)}
	rest := m[2]
	if url, ok := strings.CutPrefix(rest, "@"); ok {
		// A marker after a URL is set off by whitespace: URLs may hold ';'.
		if i := strings.Index(url, " ;"); i >= 0 {
			r.marker = url[i+2:]
		}
		return r, nil // locked from a URL: any version fits
	}
	spec, marker, _ := strings.Cut(rest, ";")
	r.marker = strings.TrimSpace(marker)
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "(") && strings.HasSuffix(spec, ")") {
		spec = spec[1 : len(spec)-1]
	}
	s, err := pep440.ParseSpecifiers(spec)
	if err != nil {
		return requirement{}, fmt.Errorf("requirement %q: %w", text, err)
	}
	r.spec = s
	return r, nil
}

func sameVersion(a, b string) bool {
	va, errA := pep440.Parse(a)
	vb, errB := pep440.Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return pep440.Compare(va, vb) == 0
}

// sameSpecifiers compares two specifier sets clause by clause, in any
// order and spacing (uv writes ">=3.10, <3.14" for ">=3.10,<3.14").
func sameSpecifiers(a, b string) bool {
	sa, errA := pep440.ParseSpecifiers(a)
	sb, errB := pep440.ParseSpecifiers(b)
	if errA != nil || errB != nil || len(sa) != len(sb) {
		return false
	}
	sortSpec := func(s pep440.Specifiers) {
		sort.Slice(s, func(i, j int) bool {
			if s[i].Op != s[j].Op {
				return s[i].Op < s[j].Op
			}
			return pep440.Compare(s[i].Version, s[j].Version) < 0
		})
	}
	sortSpec(sa)
	sortSpec(sb)
	for i := range sa {
		if sa[i].Op != sb[i].Op || sa[i].Wildcard != sb[i].Wildcard || pep440.Compare(sa[i].Version, sb[i].Version) != 0 {
			return false
		}
	}
	return true
}

// byNormalName re-keys extras or groups by their normalised names, which
// is how uv writes them.
func byNormalName[V any](m map[string][]V) map[string][]V {
	out := map[string][]V{}
	for k, v := range m {
		out[normalize(k)] = append(out[normalize(k)], v...)
	}
	return out
}

// sortedKeys is the union of two maps' keys, sorted.
func sortedKeys[A, B any](a map[string]A, b map[string]B) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, dup := a[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
