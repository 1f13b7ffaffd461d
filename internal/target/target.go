// Package target names the Python × accelerator × architecture combinations
// a flash-worker release is built for (docs/targets-and-tarball.md).
package target

import (
	"fmt"
	"regexp"
	"strings"
)

// Target is one cell of the build matrix.
type Target struct {
	Python string `json:"python"` // "3.11"
	Accel  string `json:"accel"`  // "cpu", "cu128", …
	OS     string `json:"os"`     // always "linux"
	Arch   string `json:"arch"`   // "x86_64" or "aarch64"
}

// ID is the stable name of a target, e.g. "py3.11-cpu-linux-x86_64".
func (t Target) ID() string {
	return fmt.Sprintf("py%s-%s-%s-%s", t.Python, t.Accel, t.OS, t.Arch)
}

func (t Target) String() string { return t.ID() }

// Platform is the OCI platform of the target ("linux/amd64").
func (t Target) Platform() string {
	return t.OS + "/" + ociArch[t.Arch]
}

var ociArch = map[string]string{"x86_64": "amd64", "aarch64": "arm64"}

// FileStem is the tarball name without its extension. The CPU target omits
// the accelerator so that the SDK's existing URL template keeps working.
func (t Target) FileStem(name, version string) string {
	if t.Accel == "cpu" {
		return fmt.Sprintf("%s-v%s-py%s-%s-%s", name, version, t.Python, t.OS, t.Arch)
	}
	return fmt.Sprintf("%s-v%s-py%s-%s-%s-%s", name, version, t.Python, t.Accel, t.OS, t.Arch)
}

var (
	pythonRE = regexp.MustCompile(`^3\.(8|9|[1-9][0-9])$`)
	accelRE  = regexp.MustCompile(`^(cpu|cu[0-9]{2,3}|rocm[0-9]+(\.[0-9]+)*)$`)
)

// CheckPython reports whether v is a Python minor version such as "3.11".
func CheckPython(v string) error {
	if !pythonRE.MatchString(v) {
		return fmt.Errorf("python version %q is not of the form 3.N (3.8 or later), e.g. \"3.11\"", v)
	}
	return nil
}

// CheckAccel reports whether a is "cpu" or a CUDA/ROCm tag such as "cu128".
func CheckAccel(a string) error {
	if !accelRE.MatchString(a) {
		return fmt.Errorf("accelerator %q is not \"cpu\", a CUDA tag such as \"cu128\" or a ROCm tag such as \"rocm6.2\"", a)
	}
	return nil
}

// CheckArch reports whether a is a supported CPU architecture.
func CheckArch(a string) error {
	if _, ok := ociArch[a]; !ok {
		return fmt.Errorf("architecture %q is not one of x86_64, aarch64", a)
	}
	return nil
}

// Exclude removes every target that matches all of its non-empty fields.
type Exclude struct {
	Python string `yaml:"python" json:"python,omitempty"`
	Accel  string `yaml:"accel" json:"accel,omitempty"`
	Arch   string `yaml:"arch" json:"arch,omitempty"`
}

func (e Exclude) matches(t Target) bool {
	return (e.Python == "" || e.Python == t.Python) &&
		(e.Accel == "" || e.Accel == t.Accel) &&
		(e.Arch == "" || e.Arch == t.Arch)
}

// Expand lists the matrix in a stable order: Python, then accelerator, then
// architecture, each in the order the config gives.
func Expand(pythons, accels, arches []string, excludes []Exclude) []Target {
	var out []Target
	for _, py := range pythons {
		for _, acc := range accels {
			for _, arch := range arches {
				t := Target{Python: py, Accel: acc, OS: "linux", Arch: arch}
				if !excluded(t, excludes) {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func excluded(t Target, excludes []Exclude) bool {
	for _, e := range excludes {
		if e.matches(t) {
			return true
		}
	}
	return false
}

// Select picks targets by ID from all, in the order of all. An ID that is not
// in the matrix is an error that lists the valid ones.
func Select(all []Target, ids []string) ([]Target, error) {
	if len(ids) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []Target
	for _, t := range all {
		if want[t.ID()] {
			out = append(out, t)
			delete(want, t.ID())
		}
	}
	if len(want) > 0 {
		var missing, valid []string
		for _, id := range ids {
			if want[id] {
				missing = append(missing, id)
			}
		}
		for _, t := range all {
			valid = append(valid, t.ID())
		}
		return nil, fmt.Errorf("unknown target %s; the matrix has: %s", strings.Join(missing, ", "), strings.Join(valid, ", "))
	}
	return out, nil
}
