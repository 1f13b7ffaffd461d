// Package pep440 parses Python package versions and version specifiers
// (PEP 440, as the packaging library reads them), so that fwrelease can
// tell whether a locked version is one pyproject.toml allows and evaluate
// version markers, without Python.
package pep440

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a parsed PEP 440 version: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local].
type Version struct {
	Epoch   int
	Release []int
	// Pre is the pre-release phase ("a", "b", "rc") and number; "" for none.
	Pre    string
	PreN   int
	Post   int // -1: none
	Dev    int // -1: none
	Local  []string
	source string
}

// The pattern PEP 440's appendix gives for permissive parsing.
var versionRE = regexp.MustCompile(`(?i)^v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?(\d+)?)?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?` +
	`(?:[-_.]?(dev)[-_.]?(\d+)?)?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

var prePhase = map[string]string{"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc", "pre": "rc", "preview": "rc"}

// Parse reads a version, leniently as packaging does (case, separators,
// a leading "v", surrounding spaces).
func Parse(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a PEP 440 version", s)
	}
	v := Version{Post: -1, Dev: -1, source: s}
	var err error
	num := func(t string) int {
		if t == "" || err != nil {
			return 0
		}
		n, e := strconv.Atoi(t)
		if e != nil {
			err = fmt.Errorf("%q: number %s too large", s, t)
		}
		return n
	}
	v.Epoch = num(m[1])
	for _, part := range strings.Split(m[2], ".") {
		v.Release = append(v.Release, num(part))
	}
	if m[3] != "" {
		v.Pre, v.PreN = prePhase[strings.ToLower(m[3])], num(m[4])
	}
	switch {
	case m[5] != "":
		v.Post = num(m[5])
	case m[6] != "":
		v.Post = num(m[7])
	}
	if m[8] != "" {
		v.Dev = num(m[9])
	}
	if m[10] != "" {
		v.Local = strings.FieldsFunc(strings.ToLower(m[10]), func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	}
	return v, err
}

// MustParse is Parse for versions written in code.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String is the version as it was written.
func (v Version) String() string { return v.source }

// IsPre reports a pre-release or development release.
func (v Version) IsPre() bool { return v.Pre != "" || v.Dev >= 0 }

// IsPost reports a post-release.
func (v Version) IsPost() bool { return v.Post >= 0 }

// Public is v without its local label.
func (v Version) Public() Version { v.Local = nil; return v }

// Base is v's epoch and release only.
func (v Version) Base() Version {
	return Version{Epoch: v.Epoch, Release: v.Release, Post: -1, Dev: -1}
}

// Compare orders versions as PEP 440 does: -1, 0 or 1.
func Compare(a, b Version) int {
	if c := cmpInt(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	for i := range max(len(a.Release), len(b.Release)) {
		if c := cmpInt(at(a.Release, i), at(b.Release, i)); c != 0 {
			return c
		}
	}
	if c := cmpInt(preKey(a), preKey(b)); c != 0 {
		return c
	}
	if c := cmpInt(a.PreN, b.PreN); c != 0 && a.Pre != "" {
		return c
	}
	if c := cmpInt(a.Post, b.Post); c != 0 {
		return c
	}
	if c := cmpInt(devKey(a), devKey(b)); c != 0 {
		return c
	}
	return compareLocal(a.Local, b.Local)
}

// preKey ranks the pre-release phase: a development release of the
// release itself (1.0.dev1) before any pre-release, then a < b < rc, then
// no pre-release at all.
func preKey(v Version) int {
	switch {
	case v.Pre == "" && v.Post < 0 && v.Dev >= 0:
		return 0
	case v.Pre == "a":
		return 1
	case v.Pre == "b":
		return 2
	case v.Pre == "rc":
		return 3
	}
	return 4
}

// devKey puts a development release before the same version without one.
func devKey(v Version) int {
	if v.Dev < 0 {
		return int(^uint(0) >> 1)
	}
	return v.Dev
}

// compareLocal orders local labels: none first; segment by segment,
// numbers above strings, numbers by value, strings alphabetically; a
// label that is a prefix of another first.
func compareLocal(a, b []string) int {
	for i := range min(len(a), len(b)) {
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		switch {
		case errX == nil && errY == nil:
			if c := cmpInt(x, y); c != 0 {
				return c
			}
		case errX == nil:
			return 1
		case errY == nil:
			return -1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(a), len(b))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func at(xs []int, i int) int {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}
