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
	"time"

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
	tree, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := unpackWheel(whl, tree, "site", &unpackBudget{limit: 1 << 20}); err != nil {
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
		if err := unpackWheel(whl, tree, "site2", &unpackBudget{limit: 1 << 20}); err == nil || !strings.Contains(err.Error(), "leaves the wheel") {
			t.Errorf("%s: %v, want a refusal", evil, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "escape.py")); err == nil {
		t.Error("a wheel wrote outside its destination")
	}
}

// A symlink staged into the tree (from files) that leads outside it does
// not let a wheel entry, or a console script, write there: every write goes
// through an os.Root of the tree.
func TestUnpackWheelStaysInTree(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "flash-worker")
	os.MkdirAll(filepath.Join(root, "site-packages"), 0o755)
	os.MkdirAll(filepath.Join(tmp, "outside"), 0o755)
	os.Symlink("../../outside", filepath.Join(root, "site-packages", "evil"))
	os.Symlink("../../outside", filepath.Join(root, "site-packages", "bin"))
	whl := filepath.Join(tmp, "w.whl")
	tree, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	for name, files := range map[string]map[string]string{
		"entry":  {"evil/__init__.py": "owned = True\n"},
		"script": {"ok-1.0.dist-info/entry_points.txt": "[console_scripts]\nrun = ok:main\n"},
	} {
		os.WriteFile(whl, zipBytes(t, files), 0o644)
		err := unpackWheel(whl, tree, "site-packages", &unpackBudget{limit: 1 << 20})
		if err == nil || !strings.Contains(err.Error(), "path escapes from parent") {
			t.Errorf("%s through a symlink out of the tree: %v, want a refusal", name, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(tmp, "outside")); len(entries) > 0 {
		t.Errorf("a wheel wrote outside the tree: %s", entries[0].Name())
	}
}

// A wheel that inflates past slim.max_unpacked_size fails before any of
// its bytes are written, naming the bound; the budget spans every wheel
// of the target.
func TestUnpackWheelBounded(t *testing.T) {
	tmp := t.TempDir()
	tree, err := os.OpenRoot(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	small := filepath.Join(tmp, "small.whl")
	os.WriteFile(small, zipBytes(t, map[string]string{"small/__init__.py": strings.Repeat("#", 600)}), 0o644)
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, _ := zw.Create("bomb/data.bin")
	zero := make([]byte, 1<<20)
	for range 64 { // 64 MiB of zeros: 64 KiB deflated
		w.Write(zero)
	}
	zw.Close()
	big := filepath.Join(tmp, "bomb.whl")
	os.WriteFile(big, bomb.Bytes(), 0o644)
	budget := &unpackBudget{limit: 16 << 20}
	if err := unpackWheel(small, tree, "site", budget); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = unpackWheel(big, tree, "site", budget)
	if err == nil || !strings.Contains(err.Error(), "over slim.max_unpacked_size: 600 bytes unpacked already, 67108864 more would pass its 16777216 bytes") {
		t.Errorf("bomb: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "site", "bomb")); err == nil {
		t.Error("the bomb was (partly) written")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusing took %s: it must not inflate first", took)
	}
	if len(bomb.Bytes()) > 2<<20 {
		t.Errorf("the bomb is %d bytes compressed", len(bomb.Bytes()))
	}
}
