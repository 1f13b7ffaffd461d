package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// tarGz makes a .tar.gz holding the given files.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// serve answers each path with its bytes and counts the requests.
func serve(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestExtraFiles(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	uvX86 := tarGz(t, map[string]string{"uv-x86_64-unknown-linux-musl/uv": "#!/bin/sh\necho uv x86_64\n", "uv-x86_64-unknown-linux-musl/uvx": "x"})
	uvArm := tarGz(t, map[string]string{"uv-aarch64-unknown-linux-musl/uv": "#!/bin/sh\necho uv aarch64\n"})
	srv, requests := serve(t, map[string][]byte{
		"/uv-x86_64-unknown-linux-musl.tar.gz":  uvX86,
		"/uv-aarch64-unknown-linux-musl.tar.gz": uvArm,
	})
	local := filepath.Join(t.TempDir(), "LICENSE.uv")
	writeFile(t, local, "MIT\n", 0o600)
	extras := []config.Extra{
		{URL: srv.URL + "/uv-{arch}-unknown-linux-musl.tar.gz", SHA256: config.Digests{"x86_64": sha(uvX86), "aarch64": sha(uvArm)}, Extract: "uv", Mode: "0755"},
		{Path: local, SHA256: config.Digests{"": sha([]byte("MIT\n"))}, Dst: "licenses/uv.txt"},
	}
	targets := []target.Target{
		{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"},
		{Python: "3.12", Accel: "cpu", OS: "linux", Arch: "x86_64"},
		{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "aarch64"},
	}
	b := &Builder{Config: &config.Config{ExtraFiles: extras}, Dist: t.TempDir(), AllowInsecure: true}
	for round := range 2 {
		cached, err := b.fetchExtras(context.Background(), targets)
		if err != nil {
			t.Fatal(err)
		}
		if got := requests.Load(); got != 2 {
			t.Errorf("round %d: %d downloads, want 2 (one per arch, then none from the cache)", round, got)
		}
		for _, tg := range targets {
			root := t.TempDir()
			if err := b.addExtras(context.Background(), tg, root, cached); err != nil {
				t.Fatal(err)
			}
			checkFile(t, filepath.Join(root, "uv"), "#!/bin/sh\necho uv "+tg.Arch+"\n", 0o755)
			checkFile(t, filepath.Join(root, "licenses", "uv.txt"), "MIT\n", 0o644)
		}
	}
}

func checkFile(t *testing.T, p, want string, mode os.FileMode) {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != want || info.Mode().Perm() != mode {
		t.Errorf("%s: %q mode %o, want %q mode %o", p, got, info.Mode().Perm(), want, mode)
	}
}

func TestExtraFilesRefused(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	body := tarGz(t, map[string]string{"a/uv": "1", "b/uv": "2"})
	srv, _ := serve(t, map[string][]byte{"/uv.tar.gz": body})
	x86 := []target.Target{{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}}
	wrong := strings.Repeat("0", 64)
	tests := []struct {
		name     string
		extra    config.Extra
		insecure bool
		want     string
	}{
		{"digest mismatch", config.Extra{URL: srv.URL + "/uv.tar.gz", SHA256: config.Digests{"": wrong}}, true,
			"extra_files[0]: " + srv.URL + "/uv.tar.gz has sha256 " + sha(body) + ", not the pinned " + wrong},
		{"plain http without --allow-insecure", config.Extra{URL: srv.URL + "/uv.tar.gz", SHA256: config.Digests{"": sha(body)}}, false,
			"is plain http; pass --allow-insecure"},
		{"not found", config.Extra{URL: srv.URL + "/nope.tar.gz", SHA256: config.Digests{"": wrong}}, true,
			"downloading " + srv.URL + "/nope.tar.gz: 404"},
		{"member ambiguous", config.Extra{URL: srv.URL + "/uv.tar.gz", SHA256: config.Digests{"": sha(body)}, Extract: "uv"}, true,
			`extract "uv": several files match (a/uv, b/uv)`},
		{"member missing", config.Extra{URL: srv.URL + "/uv.tar.gz", SHA256: config.Digests{"": sha(body)}, Extract: "uvx"}, true,
			`extract "uvx": no such file in the archive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Builder{Config: &config.Config{ExtraFiles: []config.Extra{tt.extra}}, Dist: t.TempDir(), AllowInsecure: tt.insecure}
			cached, err := b.fetchExtras(context.Background(), x86)
			if err == nil {
				err = b.addExtras(context.Background(), x86[0], t.TempDir(), cached)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A cached file that no longer has its digest is fetched again, not used.
func TestExtraFilesCorruptCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	body := []byte("real bytes")
	srv, requests := serve(t, map[string][]byte{"/f": body})
	os.MkdirAll(filepath.Join(cache, "fwrelease", "sha256"), 0o755)
	writeFile(t, filepath.Join(cache, "fwrelease", "sha256", sha(body)), "tampered", 0o644)
	b := &Builder{Config: &config.Config{ExtraFiles: []config.Extra{{URL: srv.URL + "/f", SHA256: config.Digests{"": sha(body)}}}}, Dist: t.TempDir(), AllowInsecure: true}
	x86 := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	cached, err := b.fetchExtras(context.Background(), []target.Target{x86})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := b.addExtras(context.Background(), x86, root, cached); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(root, "f"), "real bytes", 0o644)
	if requests.Load() != 1 {
		t.Errorf("%d downloads, want 1", requests.Load())
	}
}

// An extra file is not written through a symlink staged before it that
// leads outside the staging directory.
func TestExtraFilesStayInside(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tmp := t.TempDir()
	root := filepath.Join(tmp, "stage")
	os.MkdirAll(filepath.Join(tmp, "outside"), 0o755)
	os.MkdirAll(root, 0o755)
	os.Symlink("../outside", filepath.Join(root, "link"))
	local := filepath.Join(tmp, "LICENSE.uv")
	writeFile(t, local, "MIT\n", 0o644)
	tg := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	b := &Builder{Config: &config.Config{ExtraFiles: []config.Extra{{Path: local, SHA256: config.Digests{"": sha([]byte("MIT\n"))}, Dst: "link/evil"}}}, Dist: t.TempDir()}
	cached, err := b.fetchExtras(context.Background(), []target.Target{tg})
	if err != nil {
		t.Fatal(err)
	}
	err = b.addExtras(context.Background(), tg, root, cached)
	if err == nil || !strings.Contains(err.Error(), "path escapes from parent") {
		t.Errorf("addExtras error = %v, want a refusal to write through the link", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "outside", "evil")); err == nil {
		t.Error("an extra file was written outside the staging directory")
	}
}

// An extract member stored as a tar hard link gets its target's bytes, not
// the link entry's empty body; a link to nothing in the archive is refused.
func TestExtractHardLink(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	archive := func(linkTo string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		body := "#!/bin/sh\necho real uv\n"
		tw.WriteHeader(&tar.Header{Name: "dist/uv-real", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
		tw.WriteHeader(&tar.Header{Name: "dist/uv", Mode: 0o755, Typeflag: tar.TypeLink, Linkname: linkTo})
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	good, dangling := archive("dist/uv-real"), archive("dist/gone")
	srv, _ := serve(t, map[string][]byte{"/good.tar.gz": good, "/dangling.tar.gz": dangling})
	x86 := target.Target{Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"}
	for _, tt := range []struct{ file, sum, want string }{
		{"/good.tar.gz", sha(good), ""},
		{"/dangling.tar.gz", sha(dangling), `extract "uv": a hard link to dist/gone, which is not one regular file of the archive`},
	} {
		b := &Builder{Config: &config.Config{ExtraFiles: []config.Extra{{URL: srv.URL + tt.file, SHA256: config.Digests{"": tt.sum}, Extract: "uv", Mode: "0755"}}}, Dist: t.TempDir(), AllowInsecure: true}
		cached, err := b.fetchExtras(context.Background(), []target.Target{x86})
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		err = b.addExtras(context.Background(), x86, root, cached)
		if tt.want == "" {
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, filepath.Join(root, "uv"), "#!/bin/sh\necho real uv\n", 0o755)
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.file, err, tt.want)
		}
	}
}
