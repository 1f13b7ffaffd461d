package uvlock

import (
	"fmt"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/pep440"
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
		// PEP 508: when both sides are versions, compare as PEP 440 does
		// (the right side is the specifier's).
		if v, err := pep440.Parse(a); err == nil && op != "in" && op != "not in" {
			if spec, err := pep440.ParseSpecifiers(op + b); err == nil {
				return spec.Contains(v), nil
			}
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
	case "~=":
		return false, fmt.Errorf("~= needs versions, got %q and %q", a, b)
	}
	return false, fmt.Errorf("unknown operator %q", op)
}
