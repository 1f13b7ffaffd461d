package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/slimrule"
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
		"pkg-1.0.dist-info/WHEEL":                    "Wheel-Version: 1.0\n",
		"pkg/py.typed":                               "",
		"pkg/setup.py":                               "from numpy.distutils.core import setup\n",
		"pkg/conftest.py":                            "import pytest\n",
		"pkg/pkg.i":                                  "%module pkg\n",
		"pkg/locale/de/LC_MESSAGES/pkg.po":           "msgid \"x\"\n",
		"pkg/locale/de/LC_MESSAGES/pkg.mo":           "de-catalogue",
		"pkg/locale/en/LC_MESSAGES/pkg.mo":           "en-catalogue",
		"old-2.0.egg-info/PKG-INFO":                  "Name: old\nVersion: 2.0\nDescription: long\n        | text\nLicense: MIT\n",
		"old-2.0.egg-info/SOURCES.txt":               "old/__init__.py\n",
		"old-2.0.egg-info/top_level.txt":             "old\n",
		"old-2.0.egg-info/entry_points.txt":          "[console_scripts]\nold = old:main\n",
		"old-2.0.egg-info/LICENSE":                   "MIT License\n\nCopyright old\n",
		"old/__init__.py":                            "",
		"old/LICENSE.txt":                            "MIT  License\nCopyright old\n",   // the same words: a duplicate
		"old/vendored/LICENSE":                       "BSD License\nCopyright vendor\n", // another licence: kept
		"other/LICENSE":                              "MIT License\n\nCopyright old\n",  // another distribution's: kept
	}
	files["pkg-1.0.dist-info/METADATA"] = "Name: pkg\nVersion: 1.0\n\n# pkg\n\nThe README, as a long description.\n"
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
		"packages the base image provides": {4, 1000 + 5000 + int64(len("Name: torch\nVersion: 2.7.0\n")) + 3000},
		"bytecode caches":                  {2, 8},
		"installer metadata":               {1, 4}, // INSTALLER; RECORD stays for run-time upgrades
		"packaging leftovers (egg-info file lists, zip-safe flags, WHEEL, py.typed)": {3, int64(len("Wheel-Version: 1.0\n") + len("old/__init__.py\n"))},
		"tests inside packages": {2, int64(len("import pkg\n"))},
		"build and test scripts inside packages (setup.py, conftest.py)": {2, int64(len("from numpy.distutils.core import setup\n") + len("import pytest\n"))},
		"docs and examples": {1, 4},
		"C sources, headers, static libraries and build interfaces": {3, int64(len("#define X 1\n") + 7 + len("%module pkg\n"))},
		"type stubs":                        {1, 7},
		"translation sources (*.po, *.pot)": {1, int64(len("msgid \"x\"\n"))},
		"licence files that repeat another of the same distribution": {1, int64(len("MIT  License\nCopyright old\n"))},
		"long descriptions in package metadata":                      {2, int64(len("\n# pkg\n\nThe README, as a long description.\n") + len("Description: long\n        | text\n"))},
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
	for _, kept := range []string{"pkg/testing/__init__.py", "api/tests/fixtures.py", "kept/tests/test_x.py", "tests/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD", "pkg/core.py",
		"old-2.0.egg-info/LICENSE", "old/vendored/LICENSE", "other/LICENSE", "old-2.0.egg-info/entry_points.txt", "old-2.0.egg-info/top_level.txt",
		"pkg/locale/de/LC_MESSAGES/pkg.mo", "pkg/locale/en/LC_MESSAGES/pkg.mo"} { // translations: off by default
		if _, err := os.Stat(filepath.Join(sp, kept)); err != nil {
			t.Errorf("%s must be kept", kept)
		}
	}
	for name, want := range map[string]string{
		"pkg-1.0.dist-info/METADATA": "Name: pkg\nVersion: 1.0\n",
		"old-2.0.egg-info/PKG-INFO":  "Name: old\nVersion: 2.0\nLicense: MIT\n",
	} {
		if got, _ := os.ReadFile(filepath.Join(sp, name)); string(got) != want {
			t.Errorf("%s = %q, want the headers only: %q", name, got, want)
		}
	}
}

// Every rule has its switch under slim.rules: off, it removes nothing and
// has no report line; translations, off by default, can be switched on
// and keeps English.
func TestSlimRuleSwitches(t *testing.T) {
	sp := t.TempDir()
	files := []string{"pkg/__init__.py", "pkg/__pycache__/x.pyc", "pkg/tests/test_x.py", "pkg/x.pyi",
		"pkg/locale/de/LC_MESSAGES/pkg.mo", "pkg/locale/en_GB/LC_MESSAGES/pkg.mo", "pkg/data/x.mo"}
	for _, f := range files {
		writeFile(t, filepath.Join(sp, filepath.FromSlash(f)), "x", 0o644)
	}
	rules := slimrule.Switches{slimrule.Bytecode: false, slimrule.Tests: false, slimrule.Translations: true}
	results, err := (&slimmer{dir: sp, rules: rules}).run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Rule == "bytecode caches" || r.Rule == "tests inside packages" {
			t.Errorf("switched-off rule %q reported: %+v", r.Rule, r)
		}
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(sp, filepath.FromSlash(f)))
		gone := f == "pkg/x.pyi" || f == "pkg/locale/de/LC_MESSAGES/pkg.mo"
		if gone != (err != nil) {
			t.Errorf("%s: gone %v, want %v", f, err != nil, gone)
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

// A real extension module built with debug information loses its debug
// sections, then its symbol table (one report line each), keeps its
// dynamic symbols, and still imports and runs.
func TestStripDebugAndSymbols(t *testing.T) {
	so := buildExtension(t, t.TempDir(), "pkg/_m", "static int helper(int x) { int y = x * 2; return y + 1; }\n"+
		"static PyObject *f(PyObject *self, PyObject *arg) { return PyLong_FromLong(helper(PyLong_AsLong(arg))); }\n")
	sp := filepath.Dir(filepath.Dir(so))
	before, _ := os.Stat(so)
	results, err := (&slimmer{dir: sp}).strip(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(so)
	if len(results) != 2 || results[0].Files != 1 || results[1].Files != 1 || results[0].Bytes <= 0 || results[1].Bytes <= 0 ||
		results[0].Bytes+results[1].Bytes != before.Size()-after.Size() {
		t.Errorf("strip: %+v (before %d, after %d)", results, before.Size(), after.Size())
	}
	out, _ := exec.Command("objdump", "-h", so).Output()
	if strings.Contains(string(out), ".debug_info") || strings.Contains(string(out), ".symtab") || !strings.Contains(string(out), ".dynsym") {
		t.Errorf("sections after strip:\n%s", out)
	}
	py := exec.Command("/usr/bin/python3", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); from pkg import _m; print(_m.f(20))", sp)
	if out, err := py.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "41" {
		t.Errorf("the stripped module: %v\n%s", err, out)
	}
	// Stripped already: no process run, nothing reported.
	results, _ = (&slimmer{dir: sp}).strip(context.Background())
	if results[0].Files != 0 || results[1].Files != 0 {
		t.Errorf("second strip: %+v", results)
	}

	results, _ = (&slimmer{dir: sp, rules: slimrule.Switches{slimrule.SymbolTables: false}}).strip(context.Background())
	if len(results) != 1 || results[0].Rule != "debug sections of shared objects" {
		t.Errorf("symbol_tables off: %+v", results)
	}
	buildExtension(t, sp, "pkg/_n", "")
	t.Setenv("PATH", t.TempDir())
	results, _ = (&slimmer{dir: sp}).strip(context.Background())
	if !strings.Contains(results[0].Note, "strip (binutils) not found") || !strings.Contains(results[1].Note, "--strip-unneeded") {
		t.Errorf("without strip: %+v; want it said plainly", results)
	}
}

// buildExtension compiles a Python extension module rel (pkg/_name) under
// sp with gcc -g against /usr/bin/python3's headers; the module has one
// function, f, which code may define (else f returns its argument).
func buildExtension(t *testing.T, sp, rel, code string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs gcc and python3; skipped with -short")
	}
	inc, err := exec.Command("/usr/bin/python3", "-c", "import sysconfig; print(sysconfig.get_paths()['include'])").Output()
	if err != nil {
		t.Fatal("no /usr/bin/python3; .ci/run installs it")
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(inc)), "Python.h")); err != nil {
		t.Fatal("no Python.h to build an extension module with (apt-get install python3-dev); .ci/run installs it")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("no gcc to build an extension module with; .ci/run installs it")
	}
	name := filepath.Base(rel)
	if code == "" {
		code = "static PyObject *f(PyObject *self, PyObject *arg) { Py_INCREF(arg); return arg; }\n"
	}
	src := filepath.Join(t.TempDir(), name+".c")
	os.WriteFile(src, []byte("#include <Python.h>\n"+code+
		"static PyMethodDef methods[] = {{\"f\", f, METH_O, NULL}, {NULL, NULL, 0, NULL}};\n"+
		"static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, \""+name+"\", NULL, -1, methods};\n"+
		"PyMODINIT_FUNC PyInit_"+name+"(void) { return PyModule_Create(&mod); }\n"), 0o644)
	so := filepath.Join(sp, filepath.FromSlash(rel)+".cpython-311-x86_64-linux-gnu.so")
	os.MkdirAll(filepath.Dir(so), 0o755)
	writeFile(t, filepath.Join(filepath.Dir(so), "__init__.py"), "", 0o644)
	if out, err := exec.Command("gcc", "-g", "-shared", "-fPIC", "-I"+strings.TrimSpace(string(inc)), "-o", so, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return so
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
	if got := LargestPackages(entries, 2); got != "a 400 B, b 400 B" {
		t.Errorf("LargestPackages = %q", got)
	}
}

// A private extension module that only a test suite or prose names goes;
// one that code imports, by statement, through importlib or from another
// extension module, stays, and everything still imports.
func TestUnusedExtensions(t *testing.T) {
	sp := t.TempDir()
	for _, m := range []string{"_used", "_dynamic", "_unused", "_prose", "_fromc"} {
		buildExtension(t, sp, "pkg/"+m, "")
	}
	buildExtension(t, sp, "pkg/_loader", "static PyObject *f(PyObject *self, PyObject *arg) { return PyImport_ImportModule(\"pkg._fromc\"); }\n")
	writeFile(t, filepath.Join(sp, "pkg", "__init__.py"), `"""pkg: see _prose, which is documented here only."""
import importlib
from . import _used, _loader  # not _prose
dynamic = importlib.import_module("pkg._dynamic")
`, 0o644)
	writeFile(t, filepath.Join(sp, "pkg", "tests", "test_unused.py"), "from pkg import _unused\n", 0o644)
	results, err := (&slimmer{dir: sp}).run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Rule == "private extension modules nothing imports" && r.Files != 2 {
			t.Errorf("%+v, want 2 files (_unused, _prose)", r)
		}
	}
	left, _ := filepath.Glob(filepath.Join(sp, "pkg", "_*.so"))
	var names []string
	for _, l := range left {
		names = append(names, strings.SplitN(filepath.Base(l), ".", 2)[0])
	}
	if strings.Join(names, " ") != "_dynamic _fromc _loader _used" {
		t.Errorf("left: %v", names)
	}
	py := exec.Command("/usr/bin/python3", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import pkg; print(pkg._loader.f(0).f(7) + pkg.dynamic.f(1))", sp)
	if out, err := py.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "8" {
		t.Errorf("after slimming: %v\n%s", err, out)
	}
}

func TestPythonCode(t *testing.T) {
	src := "'''doc _a'''\nx = '_b'  # _c\ny = \"\"\"_d\n\"\"\"\nz = \"it's _e\"\nw = '\\'_f'\n"
	var words []string
	forEachWord(pythonCode([]byte(src)), func(w []byte) { words = append(words, string(w)) })
	if got := strings.Join(words, " "); got != "_b _e _f" {
		t.Errorf("words in code: %q, want _b _e _f", got)
	}
}

// A top_level.txt (or RECORD) naming "../outside" or "../../.." does not
// make the duplicate-licences rule read outside the tree: only a plain
// directory name of the tree is a distribution's package.
func TestDuplicateLicensesStayInTree(t *testing.T) {
	tmp := t.TempDir()
	site := filepath.Join(tmp, "site-packages")
	mit := "MIT License\nCopyright old\n"
	writeFile(t, filepath.Join(tmp, "outside", "LICENSE"), mit, 0o644)
	writeFile(t, filepath.Join(site, "old-1.0.dist-info", "LICENSE"), mit, 0o644)
	writeFile(t, filepath.Join(site, "old-1.0.dist-info", "top_level.txt"), "../outside\n..\n/\nold\n", 0o644)
	writeFile(t, filepath.Join(site, "old", "LICENSE"), mit, 0o644)
	writeFile(t, filepath.Join(site, "rec-1.0.dist-info", "LICENSE"), mit, 0o644)
	writeFile(t, filepath.Join(site, "rec-1.0.dist-info", "RECORD"), "../outside/LICENSE,,\n/abs/LICENSE,,\n", 0o644)
	dups, err := findDuplicateLicenses(site)
	if err != nil {
		t.Fatal(err)
	}
	if len(dups) != 1 || !dups["old/LICENSE"] {
		t.Errorf("duplicates %v, want only old/LICENSE (nothing outside the tree)", dups)
	}
}
