package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// buildRealisticTree builds a tarball of Debian's realistic tree and
// returns the tree, the extracted tarball and the build's stderr.
func buildRealisticTree(t *testing.T, extra map[string]any) (tree, x string, r result) {
	t.Helper()
	dir := t.TempDir()
	tree = realisticTree(t)
	cfg := depsDirConfig(t, dir, tree, extra)
	r = run(t, dir, nil, "--config", cfg, "--dist", filepath.Join(dir, "dist"), "build")
	if r.code != 0 {
		return tree, "", r
	}
	x = filepath.Join(dir, "x")
	os.MkdirAll(x, 0o755)
	if out, err := exec.Command("tar", "xzf", strings.TrimSpace(r.stdout), "-C", x, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	return tree, x, r
}

// MANIFEST.json lists every distribution Python itself finds in the tree:
// Debian installs most as *.egg-info, the rest as *.dist-info. The same
// build shows the default shared-library report.
func TestManifestListsEggInfo(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tree, x, r := buildRealisticTree(t, nil)
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	out, err := exec.Command("/usr/bin/python3", "-S", "-c",
		"import sys; from importlib import metadata; "+
			"print('\\n'.join(sorted({'%s==%s' % (d.metadata['Name'], d.version) for d in metadata.distributions(path=[sys.argv[1]])}, key=str.lower)))", tree).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))
	var meta struct {
		Packages []struct{ Name, Version string } `json:"packages"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(x, "MANIFEST.json")), &meta); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range meta.Packages {
		got = append(got, p.Name+"=="+p.Version)
	}
	sort.Slice(got, func(i, j int) bool { return strings.ToLower(got[i]) < strings.ToLower(got[j]) })
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("MANIFEST.json packages (%d):\n  %s\nwhat importlib.metadata finds in the tree (%d):\n  %s", len(got), strings.Join(got, " "), len(want), strings.Join(want, " "))
	}
	// The default report: a warning naming the library and who needs it,
	// and nothing about what every base image has.
	if !strings.Contains(r.stderr, `msg="shared library in neither the tarball nor the base image" target=py3.11-cpu-linux-x86_64 library=libyaml-0.so.2 base_image=python-slim needed_by=site-packages/yaml/_yaml.cpython-`) {
		t.Errorf("no warning naming libyaml-0.so.2 and yaml/_yaml (python3-yaml's C extension):\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "library=libc.so.6") || strings.Contains(r.stderr, "library=libpython") {
		t.Errorf("a library every base image has was reported:\n%s", r.stderr)
	}
	eggs, _ := filepath.Glob(filepath.Join(tree, "*.egg-info"))
	if len(eggs) == 0 || len(got) < 20 {
		t.Errorf("the tree has %d egg-info and the manifest %d packages; the test needs Debian's tree", len(eggs), len(got))
	}
	t.Logf("%d packages, %d of them egg-info", len(got), len(eggs))
}

// Debian builds yaml's C extension against the system libyaml, which
// python:3.X-slim does not have: with shared_libs.missing: fail the build
// fails naming it (TestManifestListsEggInfo sees the default warning, and
// internal/build's tests the provided list).
func TestSharedLibraryReportFails(t *testing.T) {
	skipShort(t)
	t.Parallel()
	_, _, r := buildRealisticTree(t, map[string]any{"shared_libs.missing": "fail"})
	if r.code != 1 || !strings.Contains(r.stderr, "shared libraries are in neither the tarball nor the python-slim base image:\n") ||
		!strings.Contains(r.stderr, "\n  libyaml-0.so.2, needed by site-packages/yaml/_yaml.cpython-") {
		t.Errorf("missing: fail: exit %d, want 1 and an error naming libyaml-0.so.2:\n%s", r.code, r.stderr)
	}
}
