package verify

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// Each layer file is checked on its channel for size and digest; a
// tampered one fails with an error naming the layer and its URL, and the
// others still pass.
func TestLayerFiles(t *testing.T) {
	dir := t.TempDir()
	good, tampered := []byte("deps layer bytes"), []byte("worker layer bytes")
	goodPath, badPath := filepath.Join(dir, "fw.deps.layer.tar.gz"), filepath.Join(dir, "fw.worker.layer.tar.gz")
	os.WriteFile(goodPath, good, 0o644)
	os.WriteFile(badPath, []byte("worker layer BYTES"), 0o644) // same size, other bytes
	layer := func(name string, data []byte, u string) manifest.Layer {
		sum := sha256.Sum256(data)
		return manifest.Layer{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data)), URLs: []string{u}}
	}
	tarball := "file://" + filepath.Join(dir, "fw.tar.gz")
	a := manifest.Artifact{
		Target:   manifest.Target{ID: "py3.11-cpu-linux-x86_64"},
		URLs:     []string{tarball},
		Channels: map[string]string{"local": tarball},
		Layers:   []manifest.Layer{layer("deps", good, "file://"+goodPath), layer("worker", tampered, "file://"+badPath)},
	}
	checks := Options{}.layerFiles(context.Background(), a)
	if len(checks) != 2 {
		t.Fatalf("%d checks, want 2: %+v", len(checks), checks)
	}
	if c := checks[0]; !c.OK || c.Layer != "deps" || c.Channel != "local" || c.Size != int64(len(good)) {
		t.Errorf("the good layer: %+v", c)
	}
	c := checks[1]
	if c.OK || c.Target != a.Target.ID || c.Layer != "worker" || c.Channel != "local" ||
		!strings.Contains(c.Error, "worker layer file://"+badPath) || !strings.Contains(c.Error, "manifest says "+a.Layers[1].Digest) {
		t.Errorf("the tampered layer: %+v", c)
	}
	// --channel s3 leaves the local channel's layer files out.
	if checks := (Options{Channels: []string{"s3"}}).layerFiles(context.Background(), a); len(checks) != 0 {
		t.Errorf("checks on another channel: %+v", checks)
	}
}

// A layer's uncompressed stream is checked against its diff_id and
// tar_size: a manifest whose diff ID does not describe the layer fails it.
func TestLayerDiffID(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("a tar stream, as far as this test cares"))
	zw.Close()
	p := filepath.Join(t.TempDir(), "fw.deps.layer.tar.gz")
	os.WriteFile(p, gz.Bytes(), 0o644)
	sum, diff := sha256.Sum256(gz.Bytes()), sha256.Sum256([]byte("a tar stream, as far as this test cares"))
	l := manifest.Layer{Name: "deps", Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(gz.Len()),
		DiffID: "sha256:" + hex.EncodeToString(diff[:]), TarSize: 39, URLs: []string{"file://" + p}}
	check := func(l manifest.Layer) Check {
		a := manifest.Artifact{Target: manifest.Target{ID: "py3.11-cpu-linux-x86_64"}, Layers: []manifest.Layer{l}}
		return Options{}.layerFiles(context.Background(), a)[0]
	}
	if c := check(l); !c.OK {
		t.Errorf("a layer matching its diff ID: %+v", c)
	}
	wrong := l
	wrong.DiffID = "sha256:" + strings.Repeat("0", 64)
	if c := check(wrong); c.OK || !strings.Contains(c.Error, "uncompressed 39 bytes "+l.DiffID+", manifest says 39 bytes "+wrong.DiffID) {
		t.Errorf("a wrong diff ID: %+v", c)
	}
	wrong = l
	wrong.TarSize = 38
	if c := check(wrong); c.OK || !strings.Contains(c.Error, "uncompressed 39 bytes") {
		t.Errorf("a wrong tar size: %+v", c)
	}
}

// A server that never stops sending a layer is read no further than the
// manifest's size plus one byte.
func TestLayerDownloadIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zeros := make([]byte, 1<<16)
		for r.Context().Err() == nil {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	o := Options{AllowInsecure: true, HTTP: &http.Client{Transport: countingTransport{http.DefaultTransport, &read}, Timeout: 20 * time.Second}}
	l := manifest.Layer{Name: "deps", Digest: "sha256:" + strings.Repeat("0", 64), Size: 1000}
	c := o.layerFile(context.Background(), manifest.Artifact{}, l, srv.URL+"/fw.deps.layer.tar.gz")
	if c.OK || !strings.Contains(c.Error, "more than the manifest's 1000 bytes") {
		t.Errorf("check %+v", c)
	}
	if n := read.Load(); n > 1000+1 {
		t.Errorf("read %d bytes of the body, want at most the manifest's 1000 + 1", n)
	}
}
