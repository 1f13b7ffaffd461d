package pep440

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Specifier is one clause of a specifier set, such as ">=3.10" or "==2.*".
type Specifier struct {
	Op       string // ~=, ==, !=, <=, >=, <, >, ===
	Version  Version
	Wildcard bool   // "==2.*" and "!=2.*"
	Text     string // the version as written, for === and messages
}

// Specifiers is a comma-separated set: a version must satisfy every clause.
type Specifiers []Specifier

var clauseRE = regexp.MustCompile(`^(~=|===|==|!=|<=|>=|<|>)\s*(\S+)$`)

// ParseSpecifiers reads a set such as ">=3.10, <3.14" ("" is the empty
// set, which every version satisfies).
func ParseSpecifiers(s string) (Specifiers, error) {
	var out Specifiers
	for _, clause := range strings.Split(s, ",") {
		clause = strings.TrimSpace(clause)
		if clause == "" {
			if strings.TrimSpace(s) == "" {
				continue
			}
			return nil, fmt.Errorf("specifier %q: an empty clause", s)
		}
		c, err := parseClause(clause)
		if err != nil {
			return nil, fmt.Errorf("specifier %q: %w", s, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseClause(clause string) (Specifier, error) {
	m := clauseRE.FindStringSubmatch(clause)
	if m == nil {
		return Specifier{}, fmt.Errorf("cannot read %q", clause)
	}
	sp := Specifier{Op: m[1], Text: m[2]}
	if sp.Op == "===" {
		return sp, nil // arbitrary equality: compared as strings
	}
	text := m[2]
	if strings.HasSuffix(text, ".*") {
		if sp.Op != "==" && sp.Op != "!=" {
			return Specifier{}, fmt.Errorf("%q: a .* suffix only goes with == and !=", clause)
		}
		sp.Wildcard, text = true, strings.TrimSuffix(text, ".*")
	}
	v, err := Parse(text)
	if err != nil {
		return Specifier{}, fmt.Errorf("%q: %w", clause, err)
	}
	switch {
	case sp.Wildcard && (v.Local != nil || v.Dev >= 0 || v.Post >= 0 || v.Pre != ""):
		return Specifier{}, fmt.Errorf("%q: a .* prefix is a release only", clause)
	case v.Local != nil && sp.Op != "==" && sp.Op != "!=":
		return Specifier{}, fmt.Errorf("%q: a local version only goes with == and !=", clause)
	case sp.Op == "~=" && len(v.Release) < 2:
		return Specifier{}, fmt.Errorf("%q: ~= needs at least two release numbers", clause)
	}
	sp.Version = v
	return sp, nil
}

// String is the set as a comma-separated list.
func (s Specifiers) String() string {
	var parts []string
	for _, c := range s {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

func (c Specifier) String() string { return c.Op + c.Text }

// Contains reports whether v satisfies every clause. Pre-releases are
// admitted like any version: the question is whether a version someone
// chose fits, not which version a resolver should choose.
func (s Specifiers) Contains(v Version) bool {
	for _, c := range s {
		if !c.Contains(v) {
			return false
		}
	}
	return true
}

// Contains reports whether v satisfies the clause, by PEP 440's rules for
// each operator.
func (c Specifier) Contains(v Version) bool {
	spec := c.Version
	switch c.Op {
	case "===":
		return strings.EqualFold(strings.TrimSpace(v.source), c.Text)
	case "==":
		return c.equal(v)
	case "!=":
		return !c.equal(v)
	case "<=":
		return Compare(v.Public(), spec) <= 0
	case ">=":
		return Compare(v.Public(), spec) >= 0
	case "<":
		// <3.0 excludes 3.0's own pre-releases, unless it names one.
		if Compare(v, spec) >= 0 {
			return false
		}
		return spec.IsPre() || !v.IsPre() || Compare(v.Base(), spec.Base()) != 0
	case ">":
		// >3.0 excludes 3.0's post-releases (unless it names one) and
		// 3.0's local versions.
		if Compare(v.Public(), spec) <= 0 {
			return false
		}
		if !spec.IsPost() && v.IsPost() && Compare(v.Base(), spec.Base()) == 0 {
			return false
		}
		return v.Local == nil || Compare(v.Base(), spec.Base()) != 0
	case "~=":
		prefix := Specifier{Op: "==", Wildcard: true, Version: Version{Epoch: spec.Epoch, Release: spec.Release[:len(spec.Release)-1], Post: -1, Dev: -1}}
		return Compare(v.Public(), spec) >= 0 && prefix.equal(v)
	}
	return false
}

// equal is ==: with .*, v's release starts with the prefix (v's zero
// padded); without, v equals the version, ignoring v's local label unless
// the clause has one.
func (c Specifier) equal(v Version) bool {
	spec := c.Version
	if c.Wildcard {
		if v.Epoch != spec.Epoch {
			return false
		}
		rel := v.Release
		for len(rel) < len(spec.Release) {
			rel = append(slices.Clone(rel), 0)
		}
		return slices.Equal(rel[:len(spec.Release)], spec.Release)
	}
	if spec.Local == nil {
		v = v.Public()
	}
	return Compare(v, spec) == 0
}
