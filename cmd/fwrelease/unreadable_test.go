package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An unreadable source file fails the build naming the file, and leaves no
// manifest. The tests run as root, which reads anything, so this one runs
// fwrelease as nobody.
func TestUnreadableSource(t *testing.T) {
	skipShort(t)
	t.Parallel()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and setpriv to run fwrelease as another user")
	}
	dir, err := os.MkdirTemp("", "fwrelease-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	src := filepath.Join(dir, "src")
	copyExample(t, src, 0o644, 0o755)
	exe := filepath.Join(dir, "fwrelease")
	in, _ := os.Open(bin)
	out, _ := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	io.Copy(out, in)
	in.Close()
	out.Close()
	dist := filepath.Join(dir, "dist")
	os.MkdirAll(dist, 0o777)
	os.Chmod(dist, 0o777)
	secret := filepath.Join(src, "src", "handler.py")
	os.Chmod(secret, 0o000)

	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe,
		"--config", filepath.Join(src, "fwrelease.yaml"), "--dist", dist, "release", "--snapshot")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dist}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if err == nil {
		t.Fatal("a build with an unreadable source file succeeded")
	}
	if !strings.Contains(stderr.String(), secret) || !strings.Contains(stderr.String(), "permission denied") {
		t.Errorf("the error does not name the unreadable file:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dist, "manifest.json")); err == nil {
		t.Error("a failed build left dist/manifest.json")
	}
}
