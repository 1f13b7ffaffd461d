package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
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
