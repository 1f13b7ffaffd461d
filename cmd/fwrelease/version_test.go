package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The values the release build stamps with -ldflags -X reach the output,
// plain and as JSON.
func TestVersionStamped(t *testing.T) {
	t.Parallel()
	stamped := filepath.Join(t.TempDir(), "fwrelease")
	ldflags := "-X main.version=9.8.7 -X main.commit=0123456789abcdef0123456789abcdef01234567 -X main.date=2026-11-29T10:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "fwrelease 9.8.7\ncommit 0123456789abcdef0123456789abcdef01234567\nbuilt 2026-11-29T10:00:00Z\n" + runtime.Version() + "\n"
	if string(out) != want {
		t.Errorf("version:\n%s\nwant:\n%s", out, want)
	}
	out, err = exec.Command(stamped, "--json", "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var b buildInfo
	if err := json.Unmarshal(out, &b); err != nil || b.Version != "9.8.7" || b.Date != "2026-11-29T10:00:00Z" || !strings.HasPrefix(b.Commit, "01234567") {
		t.Errorf("version --json: %v %s", err, out)
	}
}

// Without a stamp every field still has a value a person can read.
func TestVersionFallback(t *testing.T) {
	b := currentBuild()
	if b.Version == "" || b.Commit == "" || b.Date == "" || b.Go != runtime.Version() {
		t.Errorf("unstamped build info has empty fields: %+v", b)
	}
	r := run(t, t.TempDir(), nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "fwrelease ") || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("version: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}
