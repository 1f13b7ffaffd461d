package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
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
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// action.yml's installer against a fake release on a local file server, laid
// out as GoReleaser publishes one: the archive holds the real fwrelease.
func TestInstallScript(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bash and curl against a local server; skipped with -short")
	}
	// Not parallel: it signs in process, with the Sigstore environment set.
	if runtime.GOOS != "linux" {
		t.Skip("the fake release is built for linux")
	}
	archive := fmt.Sprintf("fwrelease_9.9.9_linux_%s.tar.gz", runtime.GOARCH)
	// fwrelease's own release identity, and an offline Sigstore that
	// certifies it (or another repository calling the same workflow).
	ss := testserver.StartSigstore(t, "https://github.com/runpod-workers/fwrelease/.github/workflows/goreleaser.yml@refs/tags/v9.9.9", "https://token.actions.githubusercontent.com")
	ss.Ref = "refs/tags/v9.9.9"
	for _, kv := range append(ss.Env(), "SIGSTORE_ID_TOKEN=") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	trusted := ss.TrustedRoot(t)
	signAs := func(t *testing.T, repo, file string) {
		ss.Repository = repo
		s, err := sign.NewKeyless(context.Background(), sign.KeylessOptions{FulcioURL: ss.Fulcio.URL, RekorURL: ss.Rekor.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignFile(context.Background(), file); err != nil {
			t.Fatal(err)
		}
	}
	cosignDir := filepath.Dir(cosignBin(t))
	fake := filepath.Join(t.TempDir(), archive) // packed once: a 100 MB binary
	sum := writeFakeArchive(t, fake)
	listed := func(sum string) string { return sum + "  " + archive + "\n" }
	tests := []struct {
		name      string
		checksums func(sum string) string
		version   string
		url       func(srv string) string
		signer    string // who signs checksums.txt: "" nobody
		cosign    bool   // cosign on PATH
		env       []string
		want      string // in the output; with a refusal unless install
		install   bool
	}{
		{name: "good checksum installs, saying the signature is not checked without cosign", checksums: listed, version: "v9.9.9", want: "signature is NOT verified", install: true},
		{name: "checksum mismatch refused", checksums: func(string) string { return strings.Repeat("0", 64) + "  " + archive + "\n" }, version: "v9.9.9", want: "refusing to install it"},
		{name: "archive not listed refused", checksums: func(sum string) string { return sum + "  fwrelease_9.9.9_darwin_arm64.tar.gz\n" }, version: "v9.9.9", want: "checksums.txt lists no " + archive},
		{name: "missing release", checksums: listed, version: "v9.9.8", want: "downloading http://127.0.0.1"},
		{name: "plain http off loopback refused", checksums: listed, version: "v9.9.9", url: func(string) string { return "http://example.com/dl" }, want: "must be https"},
		{name: "a host that only starts with 127 refused", checksums: listed, version: "v9.9.9", url: func(string) string { return "http://127.evil.invalid/dl" }, want: "must be https"},
		{name: "an octet over 255 refused", checksums: listed, version: "v9.9.9", url: func(string) string { return "http://127.0.0.256/dl" }, want: "must be https"},
		// curl fetches http://127.0.0.1:1@HOST/ from HOST: the old rule
		// saw "http://127." and let it through.
		{name: "userinfo before another host refused", checksums: listed, version: "v9.9.9", url: func(srv string) string { return "http://127.0.0.1:1@" + strings.TrimPrefix(srv, "http://") }, want: "user information"},
		{name: "signed checksums verify with cosign", checksums: listed, version: "v9.9.9", signer: "runpod-workers/fwrelease", cosign: true, want: "signed by https://github.com/runpod-workers/fwrelease/.github/workflows/goreleaser.yml@refs/tags/v9.9.9", install: true},
		{name: "checksums signed by another repository refused", checksums: listed, version: "v9.9.9", signer: "evil/fork", cosign: true, want: "does not verify"},
		{name: "unsigned checksums refused with cosign", checksums: listed, version: "v9.9.9", cosign: true, want: "checksums.txt.sigstore.json failed"},
		{name: "no cosign, signature required", checksums: listed, version: "v9.9.9", signer: "runpod-workers/fwrelease", env: []string{"FWRELEASE_REQUIRE_SIGNATURE=1"}, want: "no cosign on PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rel := filepath.Join(root, "v9.9.9")
			os.MkdirAll(rel, 0o755)
			if err := os.Link(fake, filepath.Join(rel, archive)); err != nil {
				t.Fatal(err)
			}
			checksums := filepath.Join(rel, "checksums.txt")
			os.WriteFile(checksums, []byte(tt.checksums(sum)), 0o644)
			if tt.signer != "" {
				signAs(t, tt.signer, checksums)
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(root)))
			defer srv.Close()
			url := srv.URL
			if tt.url != nil {
				url = tt.url(srv.URL)
			}
			dir := filepath.Join(t.TempDir(), "bin")
			ghPath := filepath.Join(t.TempDir(), "github_path")
			path := pathWithout(t, "cosign")
			if tt.cosign {
				path = cosignDir + ":" + path
			}
			cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "install-fwrelease.sh"))
			cmd.Env = append(os.Environ(), "PATH="+path, "FWRELEASE_VERSION="+tt.version, "FWRELEASE_DOWNLOAD_URL="+url,
				"FWRELEASE_INSTALL_DIR="+dir, "GITHUB_PATH="+ghPath, "FWRELEASE_TRUSTED_ROOT="+trusted)
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			installed := filepath.Join(dir, "fwrelease")
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("want output containing %q, got err %v:\n%s", tt.want, err, out)
			}
			if !tt.install {
				if err == nil {
					t.Errorf("installed; want a refusal")
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

// pathWithout is $PATH less the directories that hold an executable name.
func pathWithout(t *testing.T, name string) string {
	t.Helper()
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, name)); err != nil {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
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
