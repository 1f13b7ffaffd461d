package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTargetsGolden(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
