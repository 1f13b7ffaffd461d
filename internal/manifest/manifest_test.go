package manifest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func shard(id, sha string) Shard {
	py := strings.TrimPrefix(strings.SplitN(id, "-", 2)[0], "py")
	return Shard{
		Artifact: Artifact{
			Target:          Target{ID: id, Python: py, Accel: "cpu", OS: "linux", Arch: "x86_64"},
			File:            "flash-worker-v1.2.0-py" + py + "-linux-x86_64.tar.gz",
			Format:          "tar+gzip",
			StripComponents: 1,
			Size:            1234,
			SHA256:          sha,
			URLs:            []string{"https://example.com/v1.2.0/flash-worker-v1.2.0-py" + py + "-linux-x86_64.tar.gz"},
			Channels:        map[string]string{"s3": "https://example.com/v1.2.0/flash-worker-v1.2.0-py" + py + "-linux-x86_64.tar.gz"},
		},
		Release: Release{Name: "flash-worker", Version: "1.2.0", Source: Source{Repository: "runpod-workers/flash", Commit: "0123456789abcdef0123456789abcdef01234567", Tag: "v1.2.0"}, Created: "2026-01-01T00:00:00Z"},
	}
}

func TestNewGolden(t *testing.T) {
	m, err := New([]Shard{shard("py3.12-cpu-linux-x86_64", strings.Repeat("b", 64)), shard("py3.11-cpu-linux-x86_64", strings.Repeat("a", 64))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("manifest differs from %s (run go test -update):\n%s", golden, got)
	}
	back, err := Decode(got)
	if err != nil || len(back.Artifacts) != 2 || back.Artifacts[0].Target.ID != "py3.11-cpu-linux-x86_64" {
		t.Errorf("Decode(Marshal(m)) = %+v, %v", back, err)
	}
}

func TestNewRefusesConflicts(t *testing.T) {
	other := shard("py3.12-cpu-linux-x86_64", strings.Repeat("c", 64))
	other.Release.Version = "1.3.0"
	tests := []struct {
		name   string
		shards []Shard
		want   string
	}{
		{"same target, two digests", []Shard{shard("py3.11-cpu-linux-x86_64", strings.Repeat("a", 64)), shard("py3.11-cpu-linux-x86_64", strings.Repeat("b", 64))}, "target py3.11-cpu-linux-x86_64 appears twice with different tarballs"},
		{"mixed versions", []Shard{shard("py3.11-cpu-linux-x86_64", strings.Repeat("a", 64)), other}, "is of release flash-worker 1.3.0"},
		{"nothing", nil, "no shards"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.shards)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want %q", err, tt.want)
			}
		})
	}
	same := shard("py3.11-cpu-linux-x86_64", strings.Repeat("a", 64))
	if m, err := New([]Shard{same, same}); err != nil || len(m.Artifacts) != 1 {
		t.Errorf("the same shard twice must merge to one artifact: %v, %v", m, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, _ := Marshal(mustNew(t))
	tests := []struct{ name, data, want string }{
		{"truncated", string(good[:len(good)/2]), "decoding manifest"},
		{"other schema", strings.Replace(string(good), `"schema_version": 1`, `"schema_version": 2`, 1), "schema_version 2 is not 1"},
		{"unknown field", strings.Replace(string(good), `"name":`, `"nom": "x", "name":`, 1), "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %v, want %q", err, tt.want)
			}
		})
	}
}

func mustNew(t *testing.T) *Manifest {
	m, err := New([]Shard{shard("py3.11-cpu-linux-x86_64", strings.Repeat("a", 64))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
