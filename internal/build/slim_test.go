package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

func TestSlimRules(t *testing.T) {
	sp := t.TempDir()
	files := map[string]string{
		"pkg/__init__.py":                            "from pkg import core\n",
		"pkg/core.py":                                "x = 1\n",
		"pkg/__pycache__/core.cpython-311.pyc":       "12345",
		"pkg/old.pyc":                                "123",
		"pkg/tests/__init__.py":                      "",
		"pkg/tests/test_core.py":                     "import pkg\n",
		"pkg/docs/index.rst":                         "docs",
		"pkg/include/pkg.h":                          "#define X 1\n",
		"pkg/libpkg.a":                               "archive",
		"pkg/core.pyi":                               "x: int\n",
		"pkg/testing/__init__.py":                    "def assert_close(): pass\n", // public API: never removed
		"api/__init__.py":                            "from .tests import fixtures\n",
		"api/tests/__init__.py":                      "",
		"api/tests/fixtures.py":                      "F = 1\n", // imported by api: kept
		"kept/tests/test_x.py":                       "",        // slim.keep protects it
		"tests/__init__.py":                          "",        // a top-level package named tests: kept
		"pkg-1.0.dist-info/METADATA":                 "Name: pkg\nVersion: 1.0\n",
		"pkg-1.0.dist-info/RECORD":                   "pkg/__init__.py,,\n",
		"pkg-1.0.dist-info/INSTALLER":                "pip\n",
		"torch/__init__.py":                          strings.Repeat("t", 1000),
		"torch/lib/libtorch.so":                      strings.Repeat("x", 5000),
		"torch-2.7.0.dist-info/METADATA":             "Name: torch\nVersion: 2.7.0\n",
		"torch-2.7.0.dist-info/RECORD":               "torch/__init__.py,,\ntorch/lib/libtorch.so,,\ntorch-2.7.0.dist-info/METADATA,,\n",
		"nvidia_cublas_cu12-12.8.dist-info/METADATA": "Name: nvidia-cublas-cu12\nVersion: 12.8\n",
		"nvidia_cublas_cu12-12.8.dist-info/RECORD":   "nvidia/cublas/lib/libcublas.so.12,,\n",
		"nvidia/cublas/lib/libcublas.so.12":          strings.Repeat("c", 3000),
	}
	for name, content := range files {
		writeFile(t, filepath.Join(sp, filepath.FromSlash(name)), content, 0o644)
	}
	s := &slimmer{dir: sp, keep: []string{"kept/tests"}, exclude: []string{"torch", "nvidia-*"}}
	results, err := s.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]SlimResult{}
	for _, r := range results {
		got[r.Rule] = r
	}
	want := map[string][2]int64{
		"packages the base image provides":        {4, 1000 + 5000 + int64(len("Name: torch\nVersion: 2.7.0\n")) + 3000},
		"bytecode caches":                         {2, 8},
		"installer metadata":                      {2, int64(len("pkg/__init__.py,,\n") + 4)},
		"tests inside packages":                   {2, int64(len("import pkg\n"))},
		"docs and examples":                       {1, 4},
		"C sources, headers and static libraries": {2, int64(len("#define X 1\n") + 7)},
		"type stubs":                              {1, 7},
	}
	for rule, w := range want {
		if r := got[rule]; int64(r.Files) != w[0] || r.Bytes != w[1] {
			t.Errorf("%s: %d files %d bytes, want %d files %d bytes", rule, r.Files, r.Bytes, w[0], w[1])
		}
	}
	for _, gone := range []string{"torch", "nvidia", "torch-2.7.0.dist-info", "pkg/tests", "pkg/docs", "pkg/include/pkg.h", "pkg/core.pyi", "pkg/__pycache__"} {
		if _, err := os.Stat(filepath.Join(sp, gone)); err == nil {
			t.Errorf("%s should be gone", gone)
		}
	}
	for _, kept := range []string{"pkg/testing/__init__.py", "api/tests/fixtures.py", "kept/tests/test_x.py", "tests/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg/core.py"} {
		if _, err := os.Stat(filepath.Join(sp, kept)); err != nil {
			t.Errorf("%s must be kept", kept)
		}
	}
}

// Slimming must never break an import: the slimmed tree imports with a
// real interpreter, including the test package that the package uses.
func TestSlimKeepsImportsWorking(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3; skipped with -short")
	}
	sp := t.TempDir()
	writeFile(t, filepath.Join(sp, "api", "__init__.py"), "from .tests import fixtures\nfrom api import testing\n", 0o644)
	writeFile(t, filepath.Join(sp, "api", "tests", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(sp, "api", "tests", "fixtures.py"), "F = 1\n", 0o644)
	writeFile(t, filepath.Join(sp, "api", "testing.py"), "OK = True\n", 0o644)
	writeFile(t, filepath.Join(sp, "lib", "__init__.py"), "from lib.test import helper\n", 0o644)
	writeFile(t, filepath.Join(sp, "lib", "test", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(sp, "lib", "test", "helper.py"), "H = 2\n", 0o644)
	if _, err := (&slimmer{dir: sp}).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import api, lib; assert api.fixtures.F == 1 and api.testing.OK and lib.helper.H == 2; print('ok')", sp)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("imports broke after slimming: %v\n%s", err, out)
	}
}

func TestStripDebug(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc to build a shared object with debug sections")
	}
	sp := t.TempDir()
	src := filepath.Join(t.TempDir(), "m.c")
	os.WriteFile(src, []byte("int f(int x) { int y = x * 2; return y + 1; }\n"), 0o644)
	so := filepath.Join(sp, "pkg", "_m.cpython-311-x86_64-linux-gnu.so")
	os.MkdirAll(filepath.Dir(so), 0o755)
	if out, err := exec.Command("gcc", "-g", "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	before, _ := os.Stat(so)
	res, err := (&slimmer{dir: sp}).stripDebug(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(so)
	if res.Files != 1 || res.Bytes != before.Size()-after.Size() || res.Bytes <= 0 {
		t.Errorf("strip: %+v (before %d, after %d)", res, before.Size(), after.Size())
	}
	if out, _ := exec.Command("objdump", "-h", so).Output(); strings.Contains(string(out), ".debug_info") {
		t.Error(".debug_info survived")
	}
	t.Setenv("PATH", t.TempDir())
	os.WriteFile(src, []byte("int g(void) { return 3; }\n"), 0o644)
	res, _ = (&slimmer{dir: sp}).stripDebug(context.Background())
	if !strings.Contains(res.Note, "strip (binutils) not found") {
		t.Errorf("without strip: %+v; want it said plainly", res)
	}
}

func TestLinkDuplicatesAndSizeReport(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "site-packages", "a", "LICENSE"), strings.Repeat("MIT ", 100), 0o644)
	writeFile(t, filepath.Join(root, "site-packages", "b", "LICENSE"), strings.Repeat("MIT ", 100), 0o644)
	writeFile(t, filepath.Join(root, "site-packages", "b", "other"), strings.Repeat("BSD ", 100), 0o644)
	writeFile(t, filepath.Join(root, "bootstrap.sh"), "#!/bin/sh\n", 0o755)
	entries, err := archive.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := archive.LinkDuplicates(entries, nil)
	if err != nil || saved.Files != 1 || saved.Bytes != 400 {
		t.Fatalf("LinkDuplicates = %+v, %v", saved, err)
	}
	// b/LICENSE is now a link to a/LICENSE: b counts one file of 400
	// bytes, a one of 400, the worker one of 10; largest first, names last.
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(SizeReport(entries, 10)), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	want := []string{"PACKAGE FILES BYTES", "a 1 400", "b 1 400", "(worker) 1 10", "total 810"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("report rows %q, want %q", rows, want)
	}
	if got := LargestPackages(entries, 2); got != "a=400B b=400B" {
		t.Errorf("LargestPackages = %q", got)
	}
}
