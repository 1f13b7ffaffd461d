package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An interpreter archive is extracted through its directory: an entry
// written through a symlink the archive made earlier stays inside, or is
// refused, and nothing lands where the symlink pointed.
func TestUnpackInterpreterStaysInside(t *testing.T) {
	tests := []struct {
		name    string
		headers []*tar.Header
		want    string
	}{
		{"through an absolute symlink", []*tar.Header{
			{Name: "python/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "python/escape", Typeflag: tar.TypeSymlink, Linkname: "$OUTSIDE"},
			{Name: "python/escape/PWNED", Typeflag: tar.TypeReg, Mode: 0o644},
		}, `handling file: python/escape/PWNED: mkdirat escape: statat escape: path escapes from parent`},
		{"through a relative symlink", []*tar.Header{
			{Name: "python/up", Typeflag: tar.TypeSymlink, Linkname: "../../outside"},
			{Name: "python/up/PWNED", Typeflag: tar.TypeReg, Mode: 0o644},
		}, `handling file: python/up/PWNED: mkdirat up: statat up: path escapes from parent`},
		{"dot-dot", []*tar.Header{
			{Name: "python/../../PWNED", Typeflag: tar.TypeReg, Mode: 0o644},
		}, `entry "python/../../PWNED" leaves the archive's python/ directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			outside := filepath.Join(tmp, "outside")
			os.Mkdir(outside, 0o755)
			for _, h := range tt.headers {
				h.Linkname = strings.ReplaceAll(h.Linkname, "$OUTSIDE", outside)
			}
			archive := filepath.Join(tmp, "cpython.tar.gz")
			writeTarGz(t, archive, tt.headers)
			dst := filepath.Join(tmp, "a", "python")
			err := unpackInterpreter(context.Background(), archive, dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("unpackInterpreter error = %v, want %q", err, tt.want)
			}
			filepath.WalkDir(tmp, func(p string, _ os.DirEntry, _ error) error {
				if filepath.Base(p) == "PWNED" && !strings.HasPrefix(p, dst+"/") {
					t.Errorf("the archive wrote %s outside its directory", p)
				}
				return nil
			})
		})
	}
}

func writeTarGz(t *testing.T, path string, headers []*tar.Header) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = 5
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("pwned"))
		}
	}
	tw.Close()
	zw.Close()
	f.Close()
}

// The bundled layout's console scripts are in venv/bin, as in any venv,
// and start with the venv's python whatever PATH holds, after the tree is
// moved and when called through a link; RECORD names them there.
func TestScriptsMovedToVenv(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Debian's python3; skipped with -short")
	}
	py := "/usr/bin/python3" // a real interpreter, not a pyenv shim
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s: %v (apt-get install -y python3; .ci/run does)", py, err)
	}
	root := filepath.Join(t.TempDir(), "built")
	sp := filepath.Join(root, "venv", "lib", "python3.X", "site-packages")
	writeFile(t, filepath.Join(sp, "bin", "tool"), "#!/usr/bin/env python3\nimport sys\nprint(sys.prefix)\n", 0o755)
	writeFile(t, filepath.Join(sp, "bin", "run.sh"), "#!/bin/sh\necho sh\n", 0o755)
	writeFile(t, filepath.Join(sp, "tool-1.0.dist-info", "RECORD"), "tool/__init__.py,sha256=abc,3\nbin/tool,,\nbin/run.sh,sha256=x,19\n", 0o644)
	writeFile(t, filepath.Join(root, "venv", "pyvenv.cfg"), "include-system-site-packages = false\n", 0o644)
	os.MkdirAll(filepath.Join(root, "venv", "bin"), 0o755)
	if err := os.Symlink(py, filepath.Join(root, "venv", "bin", "python")); err != nil {
		t.Fatal(err)
	}
	if err := moveScriptsToVenv(root, sp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sp, "bin")); err == nil {
		t.Error("site-packages/bin is still there")
	}
	if got, _ := os.ReadFile(filepath.Join(sp, "tool-1.0.dist-info", "RECORD")); string(got) != "tool/__init__.py,sha256=abc,3\n../../../bin/tool,,\n../../../bin/run.sh,sha256=x,19\n" {
		t.Errorf("RECORD = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "venv", "bin", "run.sh")); string(got) != "#!/bin/sh\necho sh\n" {
		t.Errorf("a shell script was rewritten: %q", got)
	}
	moved := filepath.Join(filepath.Dir(root), "elsewhere")
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "tool")
	os.Symlink(filepath.Join(moved, "venv", "bin", "tool"), link)
	for _, argv0 := range []string{filepath.Join(moved, "venv", "bin", "tool"), link} {
		cmd := exec.Command(argv0)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if want := filepath.Join(moved, "venv") + "\n"; err != nil || string(out) != want {
			t.Errorf("%s: %v, printed %q, want the venv's prefix %q", argv0, err, out, want)
		}
	}
}
