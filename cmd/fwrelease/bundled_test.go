package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pbsArchive makes a python-build-standalone style "install_only" archive
// (top directory python/, RUNPATH $ORIGIN/../lib) from this machine's
// Python of the given version, trimmed of its test suite.
func pbsArchive(t *testing.T, version string) string {
	t.Helper()
	patchelf, err := exec.LookPath("patchelf")
	if err != nil {
		t.Fatal("patchelf is needed to make a relocatable interpreter (apt-get install patchelf; .ci/run does)")
	}
	prefix := filepath.Dir(filepath.Dir(python(t, version)))
	stage := filepath.Join(t.TempDir(), "python")
	excludes := []string{"--exclude=./lib/python" + version + "/test", "--exclude=__pycache__", "--exclude=./lib/python" + version + "/site-packages",
		"--exclude=./lib/python" + version + "/idlelib", "--exclude=./lib/python" + version + "/tkinter", "--exclude=./lib/python" + version + "/ensurepip",
		"--exclude=./include", "--exclude=./share", "--exclude=./lib/python" + version + "/config-" + version + "-x86_64-linux-gnu"}
	os.MkdirAll(stage, 0o755)
	copyCmd := fmt.Sprintf("tar cf - %s -C %s . | tar xf - -C %s", strings.Join(excludes, " "), prefix, stage)
	if out, err := exec.Command("sh", "-c", copyCmd).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", prefix, err, out)
	}
	if out, err := exec.Command(patchelf, "--set-rpath", "$ORIGIN/../lib", filepath.Join(stage, "bin", "python"+version)).CombinedOutput(); err != nil {
		t.Fatalf("patchelf: %v\n%s", err, out)
	}
	archive := filepath.Join(t.TempDir(), "cpython-"+version+"-x86_64-install_only.tar.gz")
	if out, err := exec.Command("tar", "czf", archive, "-C", filepath.Dir(stage), "python").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	return archive
}

// The bundled layout runs on a base image with no Python at all: its own
// interpreter, found through a relative venv, wherever it is unpacked.
func TestBundledLayout(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	archive := pbsArchive(t, "3.12")
	cfg := exampleWorker(t, src).
		set("matrix.python", []string{"3.12"}).
		set("layout", "bundled").
		set("bundled.archive", filepath.Join(filepath.Dir(archive), strings.Replace(filepath.Base(archive), "3.12", "{python}", 1))).
		set("files", []map[string]any{
			{"src": "src/*.py", "dst": "src/"},
			{"src": "scripts/bootstrap-bundled.sh", "dst": "bootstrap.sh", "mode": "0755"},
		}).
		write(t, filepath.Join(src, "fwrelease.yaml"))
	dist := filepath.Join(dir, "dist")
	r := run(t, dir, []string{"GITHUB_SHA=" + fixedCommit}, "--config", cfg, "--dist", dist, "build")
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	tarball := strings.TrimSpace(r.stdout)
	if ins := run(t, dir, nil, "inspect", tarball); ins.code != 0 || !strings.Contains(ins.stdout, "(interpreter)") {
		t.Errorf("inspect: %s%s", ins.stdout, ins.stderr)
	}

	// Unpacked somewhere other than /opt/flash-worker, with a PATH that has
	// no python at all.
	fw := filepath.Join(dir, "elsewhere", "flash-worker")
	os.MkdirAll(fw, 0o755)
	if out, err := exec.Command("tar", "xzf", tarball, "-C", fw, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	path := toolbox(t, "/bin/false", "sh", "cat", "grep", "printf", "mv", "dirname")
	os.Remove(filepath.Join(path, "python3"))
	// Nothing in the tree names the directory it was built in, and it runs
	// read-only: there is nothing to rewrite at start.
	work := filepath.Join(dist, ".work")
	filepath.WalkDir(fw, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(work)) {
				t.Errorf("%s holds the build path %s", p, work)
			}
		}
		return nil
	})
	venvCfg := string(readFile(t, filepath.Join(fw, "venv", "pyvenv.cfg")))
	if strings.Contains(venvCfg, "home") {
		t.Errorf("pyvenv.cfg names a home:\n%s", venvCfg)
	}
	exec.Command("chmod", "-R", "a-w", fw).Run()
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", fw).Run() })
	boot := exec.Command(filepath.Join(fw, "bootstrap.sh"))
	boot.Env = []string{"PATH=" + path, "FLASH_WORKER_SELFTEST=1"}
	if out, err := boot.CombinedOutput(); err != nil || string(out) != "flash-worker 1.2.0 ok python 3.12\n" {
		t.Fatalf("bundled bootstrap, read-only tree: %v\n%s", err, out)
	}
	if after := string(readFile(t, filepath.Join(fw, "venv", "pyvenv.cfg"))); after != venvCfg {
		t.Errorf("starting rewrote pyvenv.cfg:\n%s", after)
	}
	probe := exec.Command(filepath.Join(fw, "venv", "bin", "python"), "-c", "import sys, fwdemo_speedups; print(sys.base_prefix); print(fwdemo_speedups.__file__)")
	probe.Env = []string{"PATH=" + path}
	out, err := probe.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), filepath.Join(fw, "python")+"\n") || !strings.Contains(string(out), filepath.Join(fw, "venv", "lib", "python3.12", "site-packages")) {
		t.Errorf("the venv does not run the bundled interpreter with its own site-packages:\n%s %v", out, err)
	}
}
