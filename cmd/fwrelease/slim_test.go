package main

import (
	"fmt"
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

func depsDirConfig(t *testing.T, dir, deps, extra string) string {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	boot, _ := os.ReadFile(filepath.Join(repoRoot(t), "examples", "flash-worker", "scripts", "bootstrap.sh"))
	os.WriteFile(filepath.Join(dir, "scripts", "bootstrap.sh"), boot, 0o755)
	cfg := filepath.Join(dir, "fwrelease.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`name: flash-worker
version: "1.0.0"
source_date_epoch: 1767225600
matrix: {python: ["3.11"]}
files: [{src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: "0755"}]
deps: {dir: %s}
%s`, deps, extra)), 0o644)
	return cfg
}

// The slimmed tarball of a realistic tree is at least 55% smaller than
// `tar czf` of the same tree, and every package still imports.
func TestSlimRealisticTree(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	tree := realisticTree(t)
	cfg := depsDirConfig(t, dir, tree, "")
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
	if saving < 0.55 {
		t.Errorf("slim tarball is only %.1f%% smaller than tar czf (%d vs %d bytes); want at least 55%%", 100*saving, slim.Size(), unslim.Size())
	}

	x := filepath.Join(dir, "x")
	os.MkdirAll(x, 0o755)
	if out, err := exec.Command("tar", "xzf", strings.TrimSpace(r.stdout), "-C", x, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	imp := exec.Command("/usr/bin/python3", "-S", "-c",
		"import sys; sys.path.insert(0, sys.argv[1]); import aiohttp, pydantic, fastapi, uvicorn, requests, cloudpickle, numpy, yaml; "+
			"assert all(m.__file__.startswith(sys.argv[1]) for m in (aiohttp, pydantic, fastapi, uvicorn, requests, cloudpickle, numpy, yaml)); "+
			"numpy.testing.assert_allclose(numpy.ones(3).sum(), 3.0); print('ok')", filepath.Join(x, "site-packages"))
	if out, err := imp.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("imports after slimming: %v\n%s", err, out)
	}
}

// A budget below the slim size fails the build, shows the size report,
// and leaves no tarball behind.
func TestSlimBudget(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cfg := depsDirConfig(t, dir, realisticTree(t), "slim: {max_size: 1MiB}\n")
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
		cfg := depsDirConfig(t, dir, tree, "")
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
