package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/containertest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// bin is fwrelease built once for the tests that run it as a user would.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "fwrelease-bin")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "fwrelease")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building fwrelease: %v\n%s", err, out)
		os.Exit(1)
	}
	code := containertest.Main(m) // m.Run, then the containers' storage removed
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs fwrelease in dir with extra environment variables.
func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func exampleConfig(t *testing.T) string {
	return filepath.Join(repoRoot(t), "examples", "flash-worker", "fwrelease.yaml")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestTargetsGolden(t *testing.T) {
	for _, tt := range []struct{ name, golden string }{{"table", "targets.golden.txt"}, {"json", "targets.golden.json"}} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--config", exampleConfig(t), "targets"}
			if tt.name == "json" {
				args = append(args, "--json")
			}
			r := run(t, t.TempDir(), nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			golden(t, tt.golden, r.stdout)
		})
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badCfg, []byte("name: flash-worker\nversion: \"1.2\"\nmatrix: {python: [\"3.11\"], arch: [arm64]}\nfiles: [{src: x}]\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"unknown flag", []string{"targets", "--colour"}, 2, []string{"unknown flag: --colour"}},
		{"missing argument", []string{"inspect"}, 2, []string{"accepts 1 arg"}},
		{"unknown target", []string{"--config", exampleConfig(t), "build", "--target", "py3.9-cpu-linux-x86_64"}, 2, []string{"unknown target py3.9-cpu-linux-x86_64", "py3.10-cpu-linux-x86_64"}},
		{"unknown channel", []string{"--config", exampleConfig(t), "--dist", dir, "release", "--to", "gcs"}, 2, []string{"--to gcs: not a channel (local, s3, github, oci)"}},
		{"unconfigured channel", []string{"--config", exampleConfig(t), "--dist", dir, "release", "--to", "s3"}, 1, []string{"--to s3: the config has no publish.s3 section"}},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.yaml"), "targets"}, 1, []string{"nope.yaml"}},
		{"bad config", []string{"--config", badCfg, "targets"}, 1, []string{"bad.yaml:2: version:", "bad.yaml:3: matrix.arch[0]:"}},
		{"inspect a non-tarball", []string{"inspect", badCfg}, 1, []string{"inspecting " + badCfg, "not a gzip or zstd"}},
		{"merge without shards", []string{"manifest", "merge", "--from", dir, "-o", filepath.Join(dir, "m.json")}, 1, []string{"no shards in " + filepath.Join(dir, "shards")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, dir, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, tt.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout must carry results only, got %q", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "m.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed merge left %s behind", filepath.Join(dir, "m.json"))
	}
}

// pythons finds the real interpreters of each version (pyenv's on this
// machine). A missing one fails the full run: the test would otherwise
// pass without checking anything.
func python(t *testing.T, version string) string {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	matches, _ := filepath.Glob(filepath.Join(root, "versions", version+".*", "bin", "python"+version))
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	// pyenv's shims run whichever version pyenv selects, not the one named.
	if p, err := exec.LookPath("python" + version); err == nil && !strings.Contains(p, "/shims/") {
		return p
	}
	{
		t.Fatalf("no Python %s interpreter under %s/versions or on PATH; install it (see .ci/run)", version, root)
	}
	return ""
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs pip and real interpreters; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the worker runs on linux only")
	}
}
