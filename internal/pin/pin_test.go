package pin

import (
	"errors"
	"os"
	"os/exec"
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

// An SDK without the FLASH_WORKER_VERSION constant (or without the
// constants file) gets the module only; a tree that is not the SDK's gets
// nothing.
func TestPlanModuleOnly(t *testing.T) {
	for name, constants := range map[string]string{"no constant": "X = 1\n", "no constants file": ""} {
		t.Run(name, func(t *testing.T) {
			dir := sdk(t, constants)
			path := filepath.Join(dir, ConstantsFile)
			if constants == "" {
				os.Remove(path)
			}
			f, err := Plan(dir, release(t))
			if err != nil {
				t.Fatal(err)
			}
			if !f.ModuleOnly() || !strings.Contains(string(f.Module), `VERSION = "1.2.0"`) {
				t.Fatalf("module only %v, module %d bytes", f.ModuleOnly(), len(f.Module))
			}
			if err := Write(f); err != nil {
				t.Fatal(err)
			}
			if err := Check(f); err != nil {
				t.Errorf("Check after a module-only Write: %v", err)
			}
			got, err := os.ReadFile(path)
			if constants == "" && !errors.Is(err, os.ErrNotExist) || constants != "" && string(got) != constants {
				t.Errorf("the constants changed: %q, %v", got, err)
			}
		})
	}
	if _, err := Plan(t.TempDir(), release(t)); err == nil || !strings.Contains(err.Error(), "not the SDK's checkout") {
		t.Errorf("a tree without the SDK's package: %v", err)
	}
}

func TestPlanRefuses(t *testing.T) {
	tests := []struct {
		name, constants, want string
		change                func(*Release)
	}{
		{"two assignments", constantsPy + "FLASH_WORKER_VERSION = \"1.0.0\"\n", "found 2", nil},
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

// image() and mount() return the references by digest the manifest
// records, run by a real Python; a target without one, or a snapshot's
// local layout reference, is a LookupError naming what there is.
func TestModuleImages(t *testing.T) {
	py := needPython(t)
	r := release(t)
	ref := func(c string) string { return "registry.example/flash-worker@sha256:" + strings.Repeat(c, 64) }
	r.Manifest.Artifacts[0].Images = &manifest.Images{Mount: ref("a"), Overlay: map[string]string{"cpu": ref("b")}}
	r.Manifest.Artifacts[1].Images = &manifest.Images{Mount: "/home/me/dist/oci@sha256:" + strings.Repeat("c", 64)}
	f, err := Plan(sdk(t, constantsPy), r)
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(t.TempDir(), "flash_worker_release.py")
	if err := os.WriteFile(mod, f.Module, 0o644); err != nil {
		t.Fatal(err)
	}
	check := `import sys
sys.path.insert(0, sys.argv[1])
import flash_worker_release as rel
assert rel.image("3.11") == "` + ref("b") + `", rel.image("3.11")
assert rel.image("3.11", "cpu", "x86_64", base="cpu") == "` + ref("b") + `"
assert rel.mount("3.11") == "` + ref("a") + `", rel.mount("3.11")
def lookup_error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except LookupError as e:
        return str(e)
    raise SystemExit("no LookupError from %s%r" % (fn.__name__, args))
assert "on base cu128; it has: cpu" in lookup_error(rel.image, "3.11", base="cu128")
assert "no mount image of py3.10-cpu-linux-x86_64" in lookup_error(rel.mount, "3.10")
assert "it has: none" in lookup_error(rel.image, "3.10")
assert "py3.10-cpu-linux-x86_64" in lookup_error(rel.mount, "3.9")
`
	if out, err := exec.Command(py, "-I", "-c", check, filepath.Dir(mod)).CombinedOutput(); err != nil {
		t.Errorf("the module's image() and mount(): %v\n%s", err, out)
	}
}

// start_script(layers=True) is the script inject renders with Layers, run
// by a real Python; a target whose layers a container cannot download
// (file:// only), or that has none, is a LookupError naming it; an
// override tarball wins over layers.
func TestModuleLayers(t *testing.T) {
	py := needPython(t)
	r := release(t)
	layer := func(name, c string, urls ...string) manifest.Layer {
		return manifest.Layer{Name: name, Digest: "sha256:" + strings.Repeat(c, 64), Size: 100, DiffID: "sha256:" + strings.Repeat(c+"1", 32), TarSize: 10240, URLs: urls}
	}
	a := &r.Manifest.Artifacts[0] // py3.11: layers over https
	a.Layers = []manifest.Layer{
		layer("deps", "d", "https://example.com/v1.2.0/x.deps.layer.tar.gz"),
		layer("worker", "e", "file:///dist/x.worker.layer.tar.gz", "https://example.com/v1.2.0/x.worker.layer.tar.gz"),
	}
	want, err := inject.Script("1.2.0", a, inject.Options{Layers: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := inject.Script("1.2.0", a, inject.Options{})
	b := &r.Manifest.Artifacts[1] // py3.10: file:// layers only
	b.Layers = []manifest.Layer{layer("deps", "d", "file:///dist/y.deps.layer.tar.gz"), layer("worker", "f", "file:///dist/y.worker.layer.tar.gz")}
	f, err := Plan(sdk(t, constantsPy), r)
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(t.TempDir(), "flash_worker_release.py")
	os.WriteFile(mod, f.Module, 0o644)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "want"), []byte(want), 0o644)
	os.WriteFile(filepath.Join(dir, "plain"), []byte(plain), 0o644)
	check := `import os, shlex, sys
sys.path.insert(0, sys.argv[1])
import flash_worker_release as rel
want, plain = (open(os.path.join(sys.argv[2], n)).read() for n in ("want", "plain"))
assert rel.start_script("3.11", layers=True) == want, "start_script(layers=True) is not inject's layered script"
assert rel.start_script("3.11") == plain
assert shlex.split(rel.docker_args("3.11", layers=True)) == ["bash", "-c", want]
try:
    rel.start_script("3.10", layers=True)
    raise SystemExit("no LookupError for file:// layers")
except LookupError as e:
    assert "no layers of py3.10-cpu-linux-x86_64 that a container can download" in str(e), e
os.environ.update(FLASH_WORKER_TARBALL_URL="https://staging.example/fw.tar.gz", FLASH_WORKER_TARBALL_SHA256="ab" * 32)
s = rel.start_script("3.11", layers=True)
assert "https://staging.example/fw.tar.gz" in s and s != want, "the override tarball did not win over layers"
`
	if out, err := exec.Command(py, "-I", "-c", check, filepath.Dir(mod), dir).CombinedOutput(); err != nil {
		t.Errorf("the module's layered scripts: %v\n%s", err, out)
	}
}

// needPython skips under -short, else returns python3 or fails the test
// with how to install it.
func needPython(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs python3; skipped with -short")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed: apt-get install -y python3 (%v)", err)
	}
	return py
}
