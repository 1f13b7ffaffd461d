package pin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/inject"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

const constantsPy = `import os

FLASH_WORKER_VERSION = os.environ.get("FLASH_WORKER_VERSION", "1.1.1")
OTHER_VERSION = "1.1.1"
`

func release(t *testing.T) Release {
	t.Helper()
	m := &manifest.Manifest{Version: "1.2.0"}
	for _, py := range []string{"3.11", "3.10"} {
		file := "flash-worker-v1.2.0-py" + py + "-linux-x86_64.tar.gz"
		m.Artifacts = append(m.Artifacts, manifest.Artifact{
			Target: manifest.Target{ID: "py" + py + "-cpu-linux-x86_64", Python: py, Accel: "cpu", OS: "linux", Arch: "x86_64"},
			File:   file, Format: "tar+gzip", StripComponents: 1, Size: 1234,
			SHA256: strings.Repeat(py[2:], 32),
			URLs:   []string{"file:///dist/" + file, "https://example.com/v1.2.0/" + file},
		})
	}
	return Release{Manifest: m, SHA256: strings.Repeat("0f", 32)}
}

func sdk(t *testing.T, constants string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, ConstantsFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(constants), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPlanWritesModuleAndOneVersionLine(t *testing.T) {
	dir := sdk(t, constantsPy)
	r := release(t)
	f, err := Plan(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(constantsPy, `"FLASH_WORKER_VERSION", "1.1.1"`, `"FLASH_WORKER_VERSION", "1.2.0"`, 1)
	if string(f.Constants) != want {
		t.Errorf("constants:\n%s\nwant only the FLASH_WORKER_VERSION default changed:\n%s", f.Constants, want)
	}
	mod := string(f.Module)
	script, err := inject.Script("1.2.0", &r.Manifest.Artifacts[0], inject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"sha256:" + r.SHA256, `VERSION = "1.2.0"`, `"py3.10-cpu-linux-x86_64": {`,
		`"urls": ["https://example.com/v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz"]`,
		"def target_id(", "def start_script(", "def docker_args(", "raise LookupError(",
	} {
		if !strings.Contains(mod, s) {
			t.Errorf("the module lacks %q", s)
		}
	}
	if strings.Contains(mod, "file://") {
		t.Errorf("the module pins a file:// URL")
	}
	if strings.Index(mod, `"py3.10-cpu`) > strings.Index(mod, `"py3.11-cpu`) {
		t.Errorf("targets are not sorted, so the module would change with shard order")
	}
	// The script is embedded as a JSON string literal, which Python reads
	// the same; check the escaping round-trips the newlines and quotes.
	lit, _ := py(script)
	if !strings.Contains(mod, `"py3.11-cpu-linux-x86_64": `+lit+",") {
		t.Errorf("the module does not embed inject's script for py3.11")
	}

	if err := Check(f); !errors.Is(err, ErrOutOfDate) || !strings.Contains(err.Error(), ModuleFile) {
		t.Errorf("Check before Write = %v, want ErrOutOfDate naming %s", err, ModuleFile)
	}
	if err := Write(f); err != nil {
		t.Fatal(err)
	}
	if err := Check(f); err != nil {
		t.Errorf("Check after Write = %v", err)
	}
	again, err := Plan(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Module) != mod || string(again.Constants) != want {
		t.Errorf("a second pin of the same release changes the files")
	}
}

func TestPlanRefuses(t *testing.T) {
	tests := []struct {
		name, constants, want string
		change                func(*Release)
	}{
		{"two assignments", constantsPy + "FLASH_WORKER_VERSION = \"1.0.0\"\n", "found 2", nil},
		{"no assignment", "X = 1\n", "found 0", nil},
		{"no quoted version", "FLASH_WORKER_VERSION = os.environ[\"V\"]\n", "no quoted version", nil},
		{"file URLs only", constantsPy, "no usable URL", func(r *Release) {
			r.Manifest.Artifacts[1].URLs = r.Manifest.Artifacts[1].URLs[:1]
		}},
		{"bad version", constantsPy, "not a semantic version", func(r *Release) { r.Manifest.Version = "1.2.0\nimport os" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := release(t)
			if tt.change != nil {
				tt.change(&r)
			}
			_, err := Plan(sdk(t, tt.constants), r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}
