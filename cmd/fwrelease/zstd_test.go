package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// format: tar.zst gives .tar.zst files that tar --zstd extracts and that
// verify and the start command handle.
func TestZstdFormat(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	cfg := exampleWorker(t, src).set("format", "tar.zst").write(t, filepath.Join(src, "fwrelease.yaml"))
	s := releaseSnapshot(t, cfg, filepath.Join(dir, "dist"), "022", "UTC")
	a, _ := s.manifest.Find("py3.13-cpu-linux-x86_64")
	if a.File != "flash-worker-v1.2.0-py3.13-linux-x86_64.tar.zst" || a.Format != "tar+zstd" {
		t.Fatalf("artifact %s, format %s", a.File, a.Format)
	}
	if v := run(t, dir, nil, "verify", filepath.Join(s.dist, "manifest.json"), "--key", filepath.Join(s.dist, "snapshot.pub")); v.code != 0 {
		t.Errorf("verify: %s%s", v.stdout, v.stderr)
	}
	if r := run(t, dir, nil, "inspect", filepath.Join(s.dist, a.File)); r.code != 0 || !strings.Contains(r.stdout, "safe to extract") {
		t.Errorf("inspect: %s%s", r.stdout, r.stderr)
	}
	x := filepath.Join(dir, "x")
	os.MkdirAll(x, 0o755)
	if out, err := exec.Command("tar", "--zstd", "-xf", filepath.Join(s.dist, a.File), "-C", x, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("tar --zstd: %v\n%s", err, out)
	}
	boot := exec.Command(filepath.Join(x, "bootstrap.sh"))
	boot.Env = append(os.Environ(), "FLASH_WORKER_SELFTEST=1", "PATH="+pythonDir(t, dir, "3.13")+":"+os.Getenv("PATH"))
	if out, err := boot.CombinedOutput(); err != nil || string(out) != "flash-worker 1.2.0 ok python 3.13\n" {
		t.Errorf("boot: %v %s", err, out)
	}
	r := run(t, dir, nil, "inject", "--manifest", filepath.Join(s.dist, "manifest.json"), "--target", a.Target.ID, "--url", "https://example.com/x.tar.zst",
		"--key", filepath.Join(s.dist, "snapshot.pub"))
	if !strings.Contains(r.stdout, "zstd -dc 2>/dev/null\n") || !strings.Contains(r.stdout, "zstd -dc 2>/dev/null | copy\n") || !strings.Contains(r.stdout, ".tar.zst ") {
		t.Errorf("the start command does not unpack zstd:\n%s", r.stdout)
	}
}
