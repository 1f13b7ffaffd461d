package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// realisticTree assembles Debian's builds of aiohttp, pydantic, fastapi,
// uvicorn, requests, cloudpickle, numpy and yaml (with everything they
// import) into a site-packages tree; .ci/run installs them.
func realisticTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site-packages")
	out, err := exec.Command("/usr/bin/python3", filepath.Join(repoRoot(t), "bench", "realistic_tree.py"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("assembling the tree (apt-get install python3-aiohttp python3-pydantic python3-fastapi python3-uvicorn python3-requests python3-cloudpickle python3-numpy python3-yaml; .ci/run does): %v\n%s", err, out)
	}
	return dir
}

// depsDirConfig writes a config in dir that takes deps as the installed
// dependencies of Python 3.11, with extra settings by dotted key.
func depsDirConfig(t *testing.T, dir, deps string, extra map[string]any) string {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	boot, _ := os.ReadFile(filepath.Join(repoRoot(t), "examples", "flash-worker", "scripts", "bootstrap.sh"))
	os.WriteFile(filepath.Join(dir, "scripts", "bootstrap.sh"), boot, 0o755)
	return workerConfig{
		"name":              "flash-worker",
		"version":           "1.0.0",
		"source_date_epoch": 1767225600,
		"matrix":            map[string]any{"python": []string{"3.11"}},
		"files":             []map[string]any{{"src": "scripts/bootstrap.sh", "dst": "bootstrap.sh", "mode": "0755"}},
		"deps":              map[string]any{"dir": deps},
	}.setAll(extra).write(t, filepath.Join(dir, "fwrelease.yaml"))
}

// The slimmed tarball of a realistic tree is at least 61% smaller than
// `tar czf` of the same tree, every package still imports, numpy
// computes, and every module the slimmed tree still has imports as it did
// before slimming.
func TestSlimRealisticTree(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	tree := realisticTree(t)
	cfg := depsDirConfig(t, dir, tree, nil)
	r := run(t, dir, nil, "--config", cfg, "--dist", filepath.Join(dir, "dist"), "build")
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	slim, _ := os.Stat(strings.TrimSpace(r.stdout))
	plain := filepath.Join(dir, "plain.tar.gz")
	if out, err := exec.Command("tar", "czf", plain, "-C", filepath.Dir(tree), filepath.Base(tree)).CombinedOutput(); err != nil {
		t.Fatalf("tar czf: %v\n%s", err, out)
	}
	unslim, _ := os.Stat(plain)
	saving := 1 - float64(slim.Size())/float64(unslim.Size())
	t.Logf("slim %d bytes, tar czf %d bytes: %.1f%% smaller", slim.Size(), unslim.Size(), 100*saving)
	if saving < 0.61 {
		t.Errorf("slim tarball is only %.1f%% smaller than tar czf (%d vs %d bytes); want at least 61%%", 100*saving, slim.Size(), unslim.Size())
	}

	x := filepath.Join(dir, "x")
	os.MkdirAll(x, 0o755)
	if out, err := exec.Command("tar", "xzf", strings.TrimSpace(r.stdout), "-C", x, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	imp := exec.Command("/usr/bin/python3", "-S", "-c",
		"import sys; sys.path.insert(0, sys.argv[1]); import aiohttp, pydantic, fastapi, uvicorn, requests, cloudpickle, numpy, yaml; "+
			"assert all(m.__file__.startswith(sys.argv[1]) for m in (aiohttp, pydantic, fastapi, uvicorn, requests, cloudpickle, numpy, yaml)); "+
			"numpy.testing.assert_allclose(numpy.ones(3).sum(), 3.0); "+
			"import importlib.metadata as md; assert md.version('numpy') == numpy.__version__ and md.requires('aiohttp') and md.entry_points(group='console_scripts', name='uvicorn'); print('ok')", filepath.Join(x, "site-packages"))
	if out, err := imp.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("imports after slimming: %v\n%s", err, out)
	}
	before, after := importEach(t, tree, filepath.Join(x, "site-packages")), importEach(t, filepath.Join(x, "site-packages"), filepath.Join(x, "site-packages"))
	if len(after.ok) < 500 || strings.Join(after.failed, " ") != strings.Join(before.failed, " ") {
		t.Errorf("%d modules import after slimming; these failed after but not before, or the reverse:\nbefore: %v\nafter:  %v", len(after.ok), before.failed, after.failed)
	}
}

type imports struct{ ok, failed []string }

// importEach imports, one by one in a fresh interpreter, every module the
// tree modules has (except __main__ modules, which run programs), with
// sys.path set to dir.
func importEach(t *testing.T, dir, modules string) imports {
	t.Helper()
	const script = `
import importlib, os, sys, warnings
warnings.simplefilter("ignore")
dir, modules = sys.argv[1], sys.argv[2]
sys.path.insert(0, dir)
names = set()
for root, dirs, files in os.walk(modules):
    dirs[:] = [d for d in dirs if "-info" not in d and d != "bin"]
    rel = os.path.relpath(root, modules).replace(os.sep, ".")
    for f in files:
        if f.endswith(".py") or f.endswith(".so"):
            name = f.split(".")[0]
            mod = rel if name == "__init__" else (name if rel == "." else rel + "." + name)
            if mod != "." and not mod.endswith("__main__"):
                names.add(mod)
for n in sorted(names):
    try:
        importlib.import_module(n)
        print("import-ok", n)
    except BaseException:
        print("import-failed", n)
`
	out, err := exec.Command("/usr/bin/python3", "-S", "-c", script, dir, modules).Output()
	if err != nil {
		t.Fatalf("importing each module under %s: %v", dir, err)
	}
	var r imports
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch res, mod, _ := strings.Cut(line, " "); res { // other lines: what modules print
		case "import-ok":
			r.ok = append(r.ok, mod)
		case "import-failed":
			r.failed = append(r.failed, mod)
		}
	}
	return r
}

// A budget below the slim size fails the build, shows the size report,
// and leaves no tarball behind. (The unpacked tree's bound, by default 8 ×
// max_size, is raised here: it is not what this test is about.)
func TestSlimBudget(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	cfg := depsDirConfig(t, dir, realisticTree(t), map[string]any{"slim.max_size": "1MiB", "slim.max_unpacked_size": "1GiB"})
	dist := filepath.Join(dir, "dist")
	r := run(t, dir, nil, "--config", cfg, "--dist", dist, "build")
	if r.code != 1 || !strings.Contains(r.stderr, "over slim.max_size of 1048576 bytes") || !strings.Contains(r.stderr, "PACKAGE") || !strings.Contains(r.stderr, "numpy") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(dist, "*.tar.gz")); len(m) != 0 {
		t.Errorf("an over-budget tarball was left: %v", m)
	}
}

// deps.dir is hard-linked, not copied: the build must never write through
// a link into the tree it was given.
func TestDepsDirIsLeftAlone(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	tree := filepath.Join(dir, "site-packages")
	files := map[string]string{
		"bin/tool":                     "#!/opt/python/bin/python3.11\nimport tool\n",
		"tool/__init__.py":             "X = 1\n",
		"tool/__pycache__/x.pyc":       "bytecode",
		"tool-1.0.dist-info/METADATA":  "Name: tool\nVersion: 1.0\n",
		"tool-1.0.dist-info/RECORD":    "bin/tool,sha256=abc,40\ntool/__init__.py,,\n",
		"tool-1.0.dist-info/INSTALLER": "pip\n",
	}
	for name, content := range files {
		p := filepath.Join(tree, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o600)
	}
	for _, slim := range [][]string{nil, {"--no-slim"}} {
		cfg := depsDirConfig(t, dir, tree, nil)
		r := run(t, dir, nil, append([]string{"--config", cfg, "--dist", filepath.Join(dir, "dist"), "build"}, slim...)...)
		if r.code != 0 {
			t.Fatalf("build %v: %s", slim, r.stderr)
		}
		for name, content := range files {
			p := filepath.Join(tree, filepath.FromSlash(name))
			got, err := os.ReadFile(p)
			info, _ := os.Stat(p)
			if err != nil || string(got) != content || info.Mode().Perm() != 0o600 {
				t.Errorf("build %v changed deps.dir's %s: %q (mode %v, %v)", slim, name, got, info.Mode(), err)
			}
		}
	}
}
