package build

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/uvlock"
)

func zipBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	return buf.Bytes()
}

// A wheel found on a loopback PEP 503 simple index is taken only with the
// lock's digest, whatever digest the index advertises.
func TestFetchWheelFromSimpleIndex(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	whl := zipBytes(t, map[string]string{"fast/__init__.py": "", "fast-0.3.0.dist-info/METADATA": "Name: fast\nVersion: 0.3.0\n"})
	srv, _ := serve(t, map[string][]byte{
		"/simple/my-fast/":                      []byte(`<html><body><a href="../../files/my_fast-0.3.0-py3-none-any.whl#sha256=00">my_fast-0.3.0-py3-none-any.whl</a></body></html>`),
		"/files/my_fast-0.3.0-py3-none-any.whl": whl,
	})
	sel := uvlock.Selected{Name: "My_Fast", Version: "0.3.0", Wheel: uvlock.File{URL: "https://files.example/my_fast-0.3.0-py3-none-any.whl", Hash: "sha256:" + sha(whl)}}
	b := &Builder{Config: &config.Config{Deps: config.Deps{IndexURL: srv.URL + "/simple/", NoIndex: true}}, Dist: t.TempDir(), AllowInsecure: true}
	cache, _ := cacheDir(b.Dist)
	got, err := b.fetchWheel(context.Background(), cache, sel)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(got); !bytes.Equal(data, whl) {
		t.Errorf("fetched %d bytes, not the wheel", len(data))
	}
	sel.Wheel.Hash = "sha256:" + strings.Repeat("1", 64)
	if _, err := b.fetchWheel(context.Background(), cache, sel); err == nil || !strings.Contains(err.Error(), "not the pinned 1111") {
		t.Errorf("a wheel with another digest: %v", err)
	}
	sel.Name = "other"
	if _, err := b.fetchWheel(context.Background(), cache, sel); err == nil || !strings.Contains(err.Error(), http.StatusText(404)) {
		t.Errorf("a project the index lacks: %v", err)
	}
}

func TestUnpackWheel(t *testing.T) {
	dir := t.TempDir()
	whl := filepath.Join(dir, "w.whl")
	os.WriteFile(whl, zipBytes(t, map[string]string{
		"pkg/__init__.py":                    "x = 1\n",
		"pkg-1.0.data/purelib/extra_mod.py":  "",
		"pkg-1.0.data/scripts/tool":          "#!python\nprint(1)\n",
		"pkg-1.0.data/headers/pkg.h":         "",
		"pkg-1.0.dist-info/METADATA":         "Name: pkg\nVersion: 1.0\n",
		"pkg-1.0.dist-info/entry_points.txt": "[console_scripts]\npkg-run = pkg.cli:main [fancy]\n[gui_scripts]\nnot-me = pkg:gui\n",
	}), 0o644)
	dest := filepath.Join(dir, "site")
	if err := unpackWheel(whl, dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"pkg/__init__.py": "x = 1\n",
		"extra_mod.py":    "",
		"bin/tool":        "#!python\nprint(1)\n",
		"bin/pkg-run":     "#!/usr/bin/env python3\nimport sys\nfrom pkg.cli import main\nif __name__ == \"__main__\":\n    sys.exit(main())\n",
	} {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, absent := range []string{"bin/not-me", "pkg.h", "include"} {
		if _, err := os.Stat(filepath.Join(dest, absent)); err == nil {
			t.Errorf("%s was installed", absent)
		}
	}
	for _, evil := range []string{"../escape.py", "pkg/../../escape.py", "/abs.py"} {
		os.WriteFile(whl, zipBytes(t, map[string]string{evil: ""}), 0o644)
		if err := unpackWheel(whl, filepath.Join(dir, "site2")); err == nil || !strings.Contains(err.Error(), "leaves the wheel") {
			t.Errorf("%s: %v, want a refusal", evil, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "escape.py")); err == nil {
		t.Error("a wheel wrote outside its destination")
	}
}
