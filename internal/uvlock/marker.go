package uvlock

import (
	"fmt"
	"strconv"
	"strings"
)

// Env is the PEP 508 marker environment of the machine the tarball will
// run on (the target), which is not the machine that builds it.
type Env map[string]string

// TargetEnv is the environment of CPython X.Y on Linux for arch. The patch
// release is unknown at build time; it is taken as X.Y.0, which only a
// marker naming a patch release could tell apart.
func TargetEnv(python, arch string) Env {
	full := python + ".0"
	return Env{
		"python_version":                 python,
		"python_full_version":            full,
		"implementation_version":         full,
		"implementation_name":            "cpython",
		"platform_python_implementation": "CPython",
		"sys_platform":                   "linux",
		"platform_system":                "Linux",
		"os_name":                        "posix",
		"platform_machine":               arch,
		"platform_release":               "",
		"platform_version":               "",
	}
}

// versionKeys are compared as versions (PEP 508: when both sides are
// versions), the rest as strings.
var versionKeys = map[string]bool{"python_version": true, "python_full_version": true, "implementation_version": true}

// Eval evaluates a PEP 508 environment marker; extras are the extras being
// selected (the marker variable "extra"). An empty marker is true.
func Eval(marker string, env Env, extras ...string) (bool, error) {
	if strings.TrimSpace(marker) == "" {
		return true, nil
	}
	toks, err := tokenize(marker)
	if err != nil {
		return false, fmt.Errorf("marker %.80q…: %w", marker, err)
	}
	p := &markerParser{toks: toks, env: env, extras: extras}
	v, err := p.or()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return false, fmt.Errorf("marker %q: %w", marker, err)
	}
	return v, nil
}

type token struct {
	text   string
	quoted bool
}

// maxMarkerDepth bounds the nesting of parentheses: the parser recurses
// once per level, and a lock is input that must not crash the build.
const maxMarkerDepth = 32

func tokenize(s string) ([]token, error) {
	var toks []token
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			if c == '(' {
				depth++
			} else {
				depth--
			}
			if depth > maxMarkerDepth {
				return nil, fmt.Errorf("parentheses nested deeper than %d", maxMarkerDepth)
			}
			toks = append(toks, token{text: string(c)})
			i++
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				toks = append(toks, token{text: s[i:]}) // reported as unexpected
				return toks, nil
			}
			toks = append(toks, token{text: s[i+1 : i+1+j], quoted: true})
			i += j + 2
		case strings.ContainsRune("<>=!~", rune(c)):
			j := i
			for j < len(s) && strings.ContainsRune("<>=!~", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()'\"<>=!~", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

type markerParser struct {
	toks   []token
	pos    int
	env    Env
	extras []string
}

func (p *markerParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *markerParser) word(w string) bool {
	if t, ok := p.peek(); ok && !t.quoted && t.text == w {
		p.pos++
		return true
	}
	return false
}

func (p *markerParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.word("or") {
		var r bool
		r, err = p.and()
		v = v || r
	}
	return v, err
}

func (p *markerParser) and() (bool, error) {
	v, err := p.atom()
	for err == nil && p.word("and") {
		var r bool
		r, err = p.atom()
		v = v && r
	}
	return v, err
}

func (p *markerParser) atom() (bool, error) {
	if p.word("(") {
		v, err := p.or()
		if err != nil {
			return false, err
		}
		if !p.word(")") {
			return false, fmt.Errorf("missing )")
		}
		return v, nil
	}
	left, lkey, err := p.value()
	if err != nil {
		return false, err
	}
	op, ok := p.peek()
	if !ok {
		return false, fmt.Errorf("missing operator after %q", left)
	}
	p.pos++
	if !op.quoted && op.text == "not" {
		if !p.word("in") {
			return false, fmt.Errorf("want 'in' after 'not'")
		}
		op.text = "not in"
	}
	right, rkey, err := p.value()
	if err != nil {
		return false, err
	}
	if lkey == "extra" || rkey == "extra" {
		return p.compareExtra(op.text, left, right, lkey == "extra")
	}
	return compare(op.text, left, right, versionKeys[lkey] || versionKeys[rkey])
}

// value reads a quoted string or an environment variable, returning its
// value and, for a variable, its name.
func (p *markerParser) value() (string, string, error) {
	t, ok := p.peek()
	if !ok {
		return "", "", fmt.Errorf("missing value")
	}
	p.pos++
	if t.quoted {
		return t.text, "", nil
	}
	if t.text == "extra" {
		return "", "extra", nil
	}
	v, known := p.env[t.text]
	if !known {
		return "", "", fmt.Errorf("unknown marker variable %q", t.text)
	}
	return v, t.text, nil
}

func (p *markerParser) compareExtra(op, left, right string, extraLeft bool) (bool, error) {
	other := right
	if !extraLeft {
		other = left
	}
	has := false
	for _, e := range p.extras {
		has = has || normalize(e) == normalize(other)
	}
	switch op {
	case "==":
		return has, nil
	case "!=":
		return !has, nil
	}
	return false, fmt.Errorf("operator %q on extra", op)
}

func compare(op, a, b string, asVersion bool) (bool, error) {
	if asVersion || op == "~=" {
		va, okA := parseVersion(a)
		vb, okB := parseVersion(b)
		if okA && okB {
			return compareVersions(op, va, vb, b)
		}
	}
	switch op {
	case "==", "===":
		return a == b, nil
	case "!=":
		return a != b, nil
	case "in":
		return strings.Contains(b, a), nil
	case "not in":
		return !strings.Contains(b, a), nil
	case "<":
		return a < b, nil
	case "<=":
		return a <= b, nil
	case ">":
		return a > b, nil
	case ">=":
		return a >= b, nil
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

func compareVersions(op string, a, b version, bText string) (bool, error) {
	c := a.cmp(b)
	switch op {
	case "==", "===":
		if strings.HasSuffix(bText, ".*") {
			return a.hasPrefix(b), nil
		}
		return c == 0, nil
	case "!=":
		if strings.HasSuffix(bText, ".*") {
			return !a.hasPrefix(b), nil
		}
		return c != 0, nil
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	case ">=":
		return c >= 0, nil
	case "~=":
		if len(b.release) < 2 {
			return false, fmt.Errorf("~= needs two release numbers, got %q", bText)
		}
		prefix := version{release: b.release[:len(b.release)-1]}
		return c >= 0 && a.hasPrefix(prefix), nil
	case "in", "not in":
		return false, fmt.Errorf("operator %q on versions", op)
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

// version is the release part of a PEP 440 version (what markers about
// Python versions compare); a pre-release sorts before its release.
type version struct {
	release []int
	pre     bool
}

func parseVersion(s string) (version, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".*")
	var v version
	for _, part := range strings.Split(s, ".") {
		digits := part
		if j := strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits, v.pre = part[:j], true // 3.13.0rc1
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return version{}, false
		}
		v.release = append(v.release, n)
		if v.pre {
			break
		}
	}
	return v, true
}

func (a version) cmp(b version) int {
	for i := 0; i < max(len(a.release), len(b.release)); i++ {
		x, y := at(a.release, i), at(b.release, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre && !b.pre:
		return -1
	case !a.pre && b.pre:
		return 1
	}
	return 0
}

func (a version) hasPrefix(p version) bool {
	for i, n := range p.release {
		if at(a.release, i) != n {
			return false
		}
	}
	return true
}

func at(xs []int, i int) int {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}
