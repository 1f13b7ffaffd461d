package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// A mirror that sends the right bytes and then zeros forever: verify stops
// after the manifest's size plus one byte and says so.
func TestDownloadStopsAfterManifestSize(t *testing.T) {
	tarball := smallTarball(t)
	sum := sha256.Sum256(tarball)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(tarball)
		zeros := make([]byte, 1<<16)
		for r.Context().Err() == nil {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	client := &http.Client{Transport: countingTransport{http.DefaultTransport, &read}, Timeout: 20 * time.Second}
	o := Options{AllowInsecure: true, HTTP: client}
	a := manifest.Artifact{Size: int64(len(tarball)), SHA256: hex.EncodeToString(sum[:])}
	c := o.artifact(context.Background(), &manifest.Manifest{Version: "1.2.0"}, a, srv.URL+"/x.tar.gz")
	want := fmt.Sprintf("more than the manifest's %d bytes; stopped reading there", a.Size)
	if c.OK || c.Error != want {
		t.Errorf("check = %+v, want the error %q", c, want)
	}
	if n := read.Load(); n > a.Size+1 {
		t.Errorf("read %d bytes of the body, want at most the manifest's %d + 1", n, a.Size)
	}
}

func smallTarball(t *testing.T) []byte {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".version"), []byte("1.2.0\n"), 0o644)
	entries, err := archive.Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := archive.Pack(context.Background(), &buf, entries, archive.Options{Top: "flash-worker", Format: archive.TarGz}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// The tarball's uncompressed stream is checked against the manifest's
// diff_id and tar_size, which a start script trusts for the volume's copy.
func TestTarballDiffID(t *testing.T) {
	tarball := smallTarball(t)
	c, err := archive.Read(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tarball) }))
	defer srv.Close()
	sum := sha256.Sum256(tarball)
	o := Options{AllowInsecure: true, HTTP: srv.Client()}
	for _, tc := range []struct {
		diff    string
		size    int64
		refused bool
	}{
		{"sha256:" + c.TarSHA256, c.TarSize, false},
		{"sha256:" + strings.Repeat("0", 64), c.TarSize, true},
		{"sha256:" + c.TarSHA256, c.TarSize + 1, true},
	} {
		a := manifest.Artifact{Size: int64(len(tarball)), SHA256: hex.EncodeToString(sum[:]), DiffID: tc.diff, TarSize: tc.size}
		got := o.artifact(context.Background(), &manifest.Manifest{Version: "1.2.0"}, a, srv.URL+"/x.tar.gz")
		if refused := strings.Contains(got.Error, "(diff_id, tar_size)"); refused != tc.refused {
			t.Errorf("diff_id %s, tar_size %d: error %q, want refused=%v", tc.diff, tc.size, got.Error, tc.refused)
		}
	}
}
