package config

import (
	"fmt"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML accepts `version: "1.2.0"` or `version: {from: path}`.
func (v *Version) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v.Literal = n.Value
		return nil
	case yaml.MappingNode:
		var m struct {
			From string `yaml:"from"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		if m.From == "" {
			return typeErr("line %d: version.from is empty", n.Line)
		}
		v.From = m.From
		return nil
	}
	return typeErr("line %d: want a version string or {from: path}", n.Line)
}

// UnmarshalYAML accepts `sha256: HEX` or `sha256: {x86_64: HEX, aarch64: HEX}`.
func (d *Digests) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*d = Digests{"": n.Value}
		return nil
	case yaml.MappingNode:
		var m map[string]string
		if err := n.Decode(&m); err != nil {
			return err
		}
		*d = m
		return nil
	}
	return typeErr("line %d: want a sha256 or a map from arch to sha256", n.Line)
}

// Size is a byte count written as an integer or with a unit ("150MiB", "2GB").
type Size int64

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$`)

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	m := sizeRE.FindStringSubmatch(n.Value)
	if n.Kind != yaml.ScalarNode || m == nil {
		return typeErr("line %d: %q is not a size such as 150MiB or 2GB", n.Line, n.Value)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return typeErr("line %d: %q: %v", n.Line, n.Value, err)
	}
	*s = Size(v * sizeUnits[m[2]])
	return nil
}

// String is the size for a person: "1023 B", "4.5 KiB", "3.0 MiB". It is
// how fwrelease prints every byte count that is not exact.
func (s Size) String() string {
	const unit = 1024
	if s < unit {
		return fmt.Sprintf("%d B", int64(s))
	}
	f, suffix := float64(s)/unit, "KiB"
	for _, next := range []string{"MiB", "GiB"} {
		if f < unit {
			break
		}
		f, suffix = f/unit, next
	}
	return fmt.Sprintf("%.1f %s", f, suffix)
}

// typeErr reports through yaml.TypeError so the loader can name file and key.
func typeErr(format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf(format, args...)}}
}
