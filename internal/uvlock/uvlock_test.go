package uvlock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	py310 := TargetEnv("3.10", "x86_64")
	py313arm := TargetEnv("3.13", "aarch64")
	tests := []struct {
		marker string
		env    Env
		extras []string
		want   bool
	}{
		{"", py310, nil, true},
		{"python_full_version < '3.11'", py310, nil, true},
		{"python_full_version < '3.11'", py313arm, nil, false},
		{"python_version >= '3.10' and python_version < '3.12'", py310, nil, true},
		{"python_version > '3.9'", py310, nil, true}, // as versions: 3.10 > 3.9, though "3.10" < "3.9" as strings
		{"python_full_version >= '3.13.0rc1'", py313arm, nil, true},
		{"python_full_version == '3.10.*'", py310, nil, true},
		{"python_version ~= '3.10'", py313arm, nil, true},
		{"sys_platform == 'win32'", py310, nil, false},
		{"sys_platform != 'cygwin' and sys_platform != 'win32'", py310, nil, true},
		{"platform_machine == 'x86_64' or platform_machine == 'AMD64'", py310, nil, true},
		{"platform_machine == 'x86_64' or platform_machine == 'AMD64'", py313arm, nil, false},
		{"(platform_machine == 'aarch64' and sys_platform == 'linux') or sys_platform == 'darwin'", py313arm, nil, true},
		{"platform_python_implementation != 'PyPy' and sys_platform != 'cygwin'", py310, nil, true},
		{"implementation_name == 'cpython'", py310, nil, true},
		{"'linux' in sys_platform", py310, nil, true},
		{"sys_platform not in 'win32 cygwin'", py310, nil, true},
		{"extra == 'standard'", py310, []string{"standard"}, true},
		{"extra == 'standard'", py310, nil, false},
		{`python_version < "3.11" and extra == "Loud_Voice"`, py310, []string{"loud-voice"}, true},
	}
	for _, tt := range tests {
		got, err := Eval(tt.marker, tt.env, tt.extras...)
		if err != nil || got != tt.want {
			t.Errorf("Eval(%q, py%s %s, %v) = %v, %v; want %v", tt.marker, tt.env["python_version"], tt.env["platform_machine"], tt.extras, got, err, tt.want)
		}
	}
	for _, bad := range []string{"python_version <", "python_versio == '3'", "(python_version == '3.10'", "python_version == '3.10' or", "os_name == 'posix' xor"} {
		if _, err := Eval(bad, py310); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Eval(%q): %v, want an error quoting the marker", bad, err)
		}
	}
}

func TestWheelRank(t *testing.T) {
	rank := map[string]int{}
	for i, tag := range Tags("3.12", []string{"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"}) {
		rank[tag] = i
	}
	ordered := []string{
		"x-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"x-1-cp39-abi3-manylinux_2_17_x86_64.whl",
		"x-1-py3-none-manylinux_2_17_x86_64.whl",
		"x-1-py3-none-any.whl",
		"x-1-py2.py3-none-any.whl",
	}
	prev := -1
	for _, w := range ordered {
		r, ok := wheelRank(w, rank)
		if !ok || r < prev {
			t.Errorf("%s: rank %d ok %v, want after %d", w, r, ok, prev)
		}
		prev = r
	}
	for _, w := range []string{
		"x-1-cp311-cp311-manylinux_2_17_x86_64.whl",  // another CPython
		"x-1-cp312-cp312-manylinux_2_31_x86_64.whl",  // newer glibc than the target's
		"x-1-cp312-cp312-manylinux_2_17_aarch64.whl", // another arch
		"x-1-cp312-cp312-musllinux_1_2_x86_64.whl",
		"x-1-cp312-cp312-win_amd64.whl",
		"x-1-py2-none-any.whl",
		"x-1.tar.gz",
	} {
		if _, ok := wheelRank(w, rank); ok {
			t.Errorf("%s accepted for CPython 3.12 on manylinux_2_28 x86_64", w)
		}
	}
}

// A lock in uv's format: a virtual project with a dev group, an extra, a
// marker-gated dependency, a Windows-only one and a C extension per ABI.
const lockText = `version = 1
revision = 2
requires-python = ">=3.10"
resolution-markers = [
    "python_full_version >= '3.11'",
    "python_full_version < '3.11'",
]

[[package]]
name = "compat"
version = "1.0.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.example/compat-1.0.0-py3-none-any.whl", hash = "sha256:aaaa", size = 10 },
]

[[package]]
name = "devtool"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.example/devtool-2.0.0-py3-none-any.whl", hash = "sha256:bbbb", size = 10 },
]

[[package]]
name = "greet"
version = "0.1.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [
    { name = "wincolor", marker = "sys_platform == 'win32'" },
]
wheels = [
    { url = "https://files.example/greet-0.1.0-py3-none-any.whl", hash = "sha256:cccc", size = 10 },
]

[package.optional-dependencies]
loud = [
    { name = "text" },
]

[[package]]
name = "speedups"
version = "0.1.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.example/speedups-0.1.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "sha256:d310", size = 10 },
    { url = "https://files.example/speedups-0.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "sha256:d311", size = 10 },
    { url = "https://files.example/speedups-0.1.0-cp311-cp311-win_amd64.whl", hash = "sha256:dwin", size = 10 },
]

[[package]]
name = "text"
version = "0.1.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.example/text-0.1.0-py3-none-any.whl", hash = "sha256:eeee", size = 10 },
]

[[package]]
name = "wincolor"
version = "1.0.0"
source = { registry = "https://pypi.org/simple" }
wheels = [
    { url = "https://files.example/wincolor-1.0.0-py3-none-any.whl", hash = "sha256:ffff", size = 10 },
]

[[package]]
name = "worker"
version = "1.4.1"
source = { virtual = "." }
dependencies = [
    { name = "compat", marker = "python_full_version < '3.11'" },
    { name = "greet", extra = ["loud"] },
    { name = "speedups" },
]

[package.dev-dependencies]
dev = [
    { name = "devtool" },
]

[package.metadata]
requires-dist = [
    { name = "compat", marker = "python_full_version < '3.11'" },
    { name = "greet", extras = ["loud"] },
    { name = "speedups" },
]

[package.metadata.requires-dev]
dev = [{ name = "devtool" }]
`

func readLock(t *testing.T, text string) *Lock {
	t.Helper()
	p := filepath.Join(t.TempDir(), "uv.lock")
	os.WriteFile(p, []byte(text), 0o644)
	l, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSelect(t *testing.T) {
	l := readLock(t, lockText)
	plats := []string{"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"}
	tests := []struct {
		python string
		want   string
	}{
		{"3.10", "compat 1.0.0 aaaa, greet 0.1.0 cccc, speedups 0.1.0 d310, text 0.1.0 eeee"},
		{"3.11", "greet 0.1.0 cccc, speedups 0.1.0 d311, text 0.1.0 eeee"},
	}
	for _, tt := range tests {
		sel, err := l.Select(TargetEnv(tt.python, "x86_64"), Tags(tt.python, plats))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sel {
			got = append(got, s.Name+" "+s.Version+" "+s.Wheel.SHA256())
		}
		if strings.Join(got, ", ") != tt.want {
			t.Errorf("py%s: selected %s\nwant %s", tt.python, strings.Join(got, ", "), tt.want)
		}
	}
	l.RequiresPython = ">=3.10, <3.12"
	if _, err := l.Select(TargetEnv("3.12", "x86_64"), Tags("3.12", plats)); err == nil || !strings.Contains(err.Error(), `uv.lock: requires-python ">=3.10, <3.12" excludes Python 3.12`) {
		t.Errorf("py3.12 outside requires-python: %v", err)
	}
	l.RequiresPython = ">=3.11.4"
	if _, err := l.Select(TargetEnv("3.11", "x86_64"), Tags("3.11", plats)); err != nil {
		t.Errorf("py3.11 with requires-python >=3.11.4: %v", err)
	}
	l.RequiresPython = ">=3.10"
	_, err := l.Select(TargetEnv("3.12", "x86_64"), Tags("3.12", plats))
	if err == nil || !strings.Contains(err.Error(), "package speedups 0.1.0 has no wheel for this target") {
		t.Errorf("py3.12 without a cp312 wheel: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"broken.lock":  "version = 1\n[[package]\n",
		"v2.lock":      "version = 2\n",
		"empty.lock":   "version = 1\n",
		"noproj.lock":  "version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { registry = \"x\" }\n",
		"missing.lock": "",
	} {
		p := filepath.Join(dir, name)
		if name != "missing.lock" {
			os.WriteFile(p, []byte(text), 0o644)
		}
		l, err := Read(p)
		if err == nil {
			_, err = l.Select(TargetEnv("3.11", "x86_64"), nil)
		}
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

// A marker nested five million parentheses deep is an error naming the
// package that carries it, not a stack overflow (the parser recurses once
// per level).
func TestDeepMarker(t *testing.T) {
	deep := strings.Repeat("(", 5_000_000) + "sys_platform == 'linux'" + strings.Repeat(")", 5_000_000)
	if _, err := Eval(deep, TargetEnv("3.11", "x86_64")); err == nil || !strings.Contains(err.Error(), "nested deeper than") || len(err.Error()) > 300 {
		t.Fatalf("Eval: %.300v, want a short error about the nesting", err)
	}
	ok := strings.Repeat("(", maxMarkerDepth) + "sys_platform == 'linux'" + strings.Repeat(")", maxMarkerDepth)
	if v, err := Eval(ok, TargetEnv("3.11", "x86_64")); err != nil || !v {
		t.Errorf("a marker %d deep: %v, %v", maxMarkerDepth, v, err)
	}
	text := strings.Replace(lockText, `{ name = "speedups" },
]

[package.dev`, `{ name = "speedups", marker = "`+strings.ReplaceAll(deep, "'", "\\\"")+`" },
]

[package.dev`, 1)
	l := readLock(t, text)
	_, err := l.Select(TargetEnv("3.11", "x86_64"), Tags("3.11", []string{"manylinux_2_17_x86_64"}))
	if err == nil || !strings.Contains(err.Error(), "package worker: marker") || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("Select: %.300v, want an error naming the package worker", err)
	}
}

// pyproject.toml of lockText's project, as uv locked it.
const pyprojectText = `[project]
name = "Worker"
version = "1.4.1"
requires-python = ">=3.10"
dependencies = [
    "compat>=1.0; python_full_version < '3.11'",
    "greet[loud] (>=0.1)",
    "speedups",
]

[dependency-groups]
dev = ["devtool>=2", {include-group = "other"}]
`

// A lock that pyproject.toml has moved past is refused as `uv export
// --locked` would refuse it, naming the package, the locked version and
// the specifier; one that matches (spacing, order and spelling aside)
// passes.
func TestCheckFresh(t *testing.T) {
	l := readLock(t, lockText)
	tests := []struct {
		name, from, to, want string
	}{
		{"matches", "", "", ""},
		{"spelling", `requires-python = ">=3.10"`, `requires-python = ">= 3.10.0"`, ""},
		{"version", `version = "1.4.1"`, `version = "1.4.2"`, "the project Worker is locked at version 1.4.1, pyproject.toml says 1.4.2"},
		{"specifier", `"compat>=1.0;`, `"compat>=1.1;`, `package compat is locked at 1.0.0, outside ">=1.1" that pyproject.toml's [project] dependencies asks for`},
		{"specifier under a marker", `"compat>=1.0; python_full_version < '3.11'"`, `"compat>=1.1; python_full_version < '3.11' and platform_machine == 'aarch64'"`, `package compat is locked at 1.0.0, outside ">=1.1"`},
		{"requires-python", `requires-python = ">=3.10"`, `requires-python = ">=3.11"`, `requires-python is ">=3.10" in the lock, ">=3.11" in pyproject.toml`},
		{"new dependency", `"speedups",`, `"speedups", "newdep>=1",`, `pyproject.toml's [project] dependencies asks for "newdep>=1", which the lock does not have for Python 3.10`},
		{"dropped dependency", `"speedups",`, ``, `the lock's [project] dependencies has speedups, which pyproject.toml no longer lists`},
		{"dev group", `"devtool>=2"`, `"devtool>=3"`, `package devtool is locked at 2.0.0, outside ">=3" that pyproject.toml's [dependency-groups] dev asks for`},
		{"new extra", `[dependency-groups]`, "[project.optional-dependencies]\nfast = [\"speedups>=0.2\"]\n\n[dependency-groups]", `pyproject.toml's [project.optional-dependencies] fast asks for "speedups>=0.2", which the lock does not have`},
		{"unreadable", `"speedups",`, `"speedups >= one",`, `requirement "speedups >= one"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(pyprojectText, tt.from, tt.to, 1)
			if tt.from != "" && text == pyprojectText {
				t.Fatalf("%q is not in the pyproject", tt.from)
			}
			p := filepath.Join(t.TempDir(), "pyproject.toml")
			os.WriteFile(p, []byte(text), 0o644)
			proj, err := ReadProject(p)
			if err != nil {
				t.Fatal(err)
			}
			err = l.CheckFresh(proj)
			if tt.want == "" {
				if err != nil {
					t.Errorf("a fresh lock refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) || !errors.Is(err, ErrStale) {
				t.Errorf("err = %v\nwant it to name %s and say %q", err, p, tt.want)
			}
		})
	}
}

// FuzzEval: whatever the marker, Eval returns (it never panics or
// overflows the stack), and parseRequirement too.
func FuzzEval(f *testing.F) {
	for _, m := range []string{"python_full_version < '3.11'", "(os_name == 'posix' and (extra == 'x'))", "python_version ~= '3.10'", "a @ https://x/y.whl ; sys_platform == 'linux'"} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, marker string) {
		Eval(marker, TargetEnv("3.11", "x86_64"), "x")
		parseRequirement(marker)
	})
}
