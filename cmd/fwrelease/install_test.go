package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/archive"
)

// action.yml's installer against a fake release on a local file server, laid
// out as GoReleaser publishes one: the archive holds the real fwrelease.
func TestInstallScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bash and curl against a local server; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the fake release is built for linux")
	}
	archive := fmt.Sprintf("fwrelease_9.9.9_linux_%s.tar.gz", runtime.GOARCH)
	tests := []struct {
		name      string
		checksums func(sum string) string
		version   string
		url       func(srv string) string
		want      string // in stderr; "" means it installs
	}{
		{"good checksum installs", func(sum string) string { return sum + "  " + archive + "\n" }, "v9.9.9", nil, ""},
		{"checksum mismatch refused", func(string) string { return strings.Repeat("0", 64) + "  " + archive + "\n" }, "v9.9.9", nil, "refusing to install it"},
		{"archive not listed refused", func(sum string) string { return sum + "  fwrelease_9.9.9_darwin_arm64.tar.gz\n" }, "v9.9.9", nil, "checksums.txt lists no " + archive},
		{"missing release", func(sum string) string { return sum + "  " + archive + "\n" }, "v9.9.8", nil, "downloading http://127.0.0.1"},
		{"plain http off loopback refused", func(sum string) string { return "" }, "v9.9.9", func(string) string { return "http://example.com/dl" }, "must be https"},
		{"a host that only starts with 127 refused", func(sum string) string { return "" }, "v9.9.9", func(string) string { return "http://127.evil.invalid/dl" }, "must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rel := filepath.Join(root, "v9.9.9")
			os.MkdirAll(rel, 0o755)
			sum := writeFakeArchive(t, filepath.Join(rel, archive))
			os.WriteFile(filepath.Join(rel, "checksums.txt"), []byte(tt.checksums(sum)), 0o644)
			srv := httptest.NewServer(http.FileServer(http.Dir(root)))
			defer srv.Close()
			url := srv.URL
			if tt.url != nil {
				url = tt.url(srv.URL)
			}
			dir := filepath.Join(t.TempDir(), "bin")
			ghPath := filepath.Join(t.TempDir(), "github_path")
			cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "install-fwrelease.sh"))
			cmd.Env = append(os.Environ(), "FWRELEASE_VERSION="+tt.version, "FWRELEASE_DOWNLOAD_URL="+url,
				"FWRELEASE_INSTALL_DIR="+dir, "GITHUB_PATH="+ghPath)
			out, err := cmd.CombinedOutput()
			installed := filepath.Join(dir, "fwrelease")
			if tt.want != "" {
				if err == nil || !strings.Contains(string(out), tt.want) {
					t.Errorf("want a refusal containing %q, got err %v:\n%s", tt.want, err, out)
				}
				if _, err := os.Stat(installed); err == nil {
					t.Errorf("a refused release left %s behind", installed)
				}
				return
			}
			if err != nil {
				t.Fatalf("install: %v\n%s", err, out)
			}
			v, err := exec.Command(installed, "version").Output()
			if err != nil || !strings.HasPrefix(string(v), "fwrelease ") {
				t.Errorf("the installed fwrelease: %v %q", err, v)
			}
			if p, _ := os.ReadFile(ghPath); string(p) != dir+"\n" {
				t.Errorf("GITHUB_PATH holds %q, want %q", p, dir+"\n")
			}
		})
	}
}

// writeFakeArchive packs the test's fwrelease binary as GoReleaser does and
// returns the archive's sha256.
func writeFakeArchive(t *testing.T, path string) string {
	t.Helper()
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, e := range []struct {
		name string
		mode int64
		body []byte
	}{{"README.md", 0o644, []byte("fwrelease\n")}, {"fwrelease", 0o755, body}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := archive.FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
