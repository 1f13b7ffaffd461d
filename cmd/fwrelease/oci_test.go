package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/testserver"
)

// countingRegistry fronts the registry, counting blob uploads.
func countingRegistry(t *testing.T, addr string) (host string, uploads *atomic.Int32) {
	uploads = &atomic.Int32{}
	target, _ := url.Parse("http://" + addr)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploads.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), uploads
}

const (
	orasModule  = "oras.land/oras/cmd/oras@v1.3.6"
	craneModule = "github.com/google/go-containerregistry/cmd/crane@v0.22.1"
)

// The registry, and two independent clients, read what fwrelease pushes.
func TestReleaseToOCIRegistry(t *testing.T) {
	skipShort(t)
	t.Parallel()
	host, uploads := countingRegistry(t, testserver.StartRegistry(t))
	repo := host + "/runpod/flash-worker"
	dir := t.TempDir()
	// The registry in place of the S3 channel the helper adds, and overlay
	// images on a base in the same registry, one tag per Python.
	base := pushBase(t, host+"/library/python", "3.10", "3.11", "3.12", "3.13")
	cfg, _ := releaseConfig(t, dir, "http://127.0.0.1:1", map[string]any{
		"publish.s3":   nil,
		"publish.oci":  map[string]any{"repository": repo, "plain_http": true},
		"images.bases": map[string]any{"cpu": host + "/library/python:{python}-slim"},
	})
	dist := filepath.Join(dir, "dist")
	env := []string{"GITHUB_SHA=" + fixedCommit}

	r := run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("release: exit %d\n%s", r.code, r.stderr)
	}
	mdata, _ := os.ReadFile(filepath.Join(dist, "manifest.json"))
	m, err := manifest.Decode(mdata)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Find("py3.11-cpu-linux-x86_64")
	if !strings.HasPrefix(a.OCI, repo+"@sha256:") {
		t.Fatalf("oci field %q", a.OCI)
	}
	tag := repo + ":v1.2.0-py3.11-cpu-linux-x86_64"

	// oras pulls the tarball byte for byte, under its title.
	out := filepath.Join(dir, "pulled")
	tool(t, "oras", orasModule, "pull", "--plain-http", "-o", out, tag)
	pulled, err := os.ReadFile(filepath.Join(out, a.File))
	if err != nil {
		t.Fatal(err)
	}
	built, _ := os.ReadFile(filepath.Join(dist, a.File))
	if string(pulled) != string(built) {
		t.Error("oras pulled different bytes")
	}
	var om struct {
		ArtifactType string `json:"artifactType"`
	}
	json.Unmarshal([]byte(tool(t, "oras", orasModule, "manifest", "fetch", "--plain-http", tag)), &om)
	if om.ArtifactType != "application/vnd.runpod.flash-worker.v1+tar+gzip" {
		t.Errorf("artifactType %q", om.ArtifactType)
	}
	disc := tool(t, "oras", orasModule, "discover", "--plain-http", "--format", "json", a.OCI)
	if !strings.Contains(disc, "application/vnd.dev.sigstore.bundle.v0.3+json") {
		t.Errorf("oras discover finds no signature:\n%s", disc)
	}

	// crane reads the index and resolves the same digests.
	var idx struct {
		Manifests []struct {
			Digest   string            `json:"digest"`
			Platform map[string]string `json:"platform"`
		} `json:"manifests"`
	}
	json.Unmarshal([]byte(tool(t, "crane", craneModule, "manifest", "--insecure", repo+":v1.2.0")), &idx)
	if len(idx.Manifests) != 4 {
		t.Fatalf("index has %d manifests, want 4", len(idx.Manifests))
	}
	for _, e := range idx.Manifests {
		if e.Platform["os"] != "linux" || e.Platform["architecture"] != "amd64" {
			t.Errorf("index entry platform %v", e.Platform)
		}
	}
	if d := strings.TrimSpace(tool(t, "crane", craneModule, "digest", "--insecure", tag)); repo+"@"+d != a.OCI {
		t.Errorf("crane digest %s, manifest says %s", d, a.OCI)
	}

	checkImages(t, dir, m, repo, base)

	// fwrelease verify reads the registry too: tarball, digest, referrer;
	// and each image's tree and signature.
	v := run(t, dir, nil, "--allow-insecure", "verify", filepath.Join(dist, "manifest.json"), "--key", filepath.Join(dir, "release.pub"), "--channel", "oci")
	if v.code != 0 || strings.Count(v.stdout, " oci ") != 12 || strings.Count(v.stdout, " ok ") != 12 ||
		strings.Count(v.stdout, "(mount image)") != 4 || strings.Count(v.stdout, "(overlay cpu image)") != 4 {
		t.Errorf("verify --channel oci: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}

	// A re-run pushes no blob twice and keeps every digest.
	before := uploads.Load()
	r = run(t, dir, env, "--config", cfg, "--dist", dist, "--allow-insecure", "release")
	if r.code != 0 {
		t.Fatalf("re-run: %s", r.stderr)
	}
	if n := uploads.Load() - before; n != 0 {
		t.Errorf("the re-run uploaded %d blobs", n)
	}
	m2data, _ := os.ReadFile(filepath.Join(dist, "manifest.json"))
	if string(m2data) != string(mdata) {
		t.Error("the re-run changed the manifest")
	}
}

// A snapshot's OCI layout is readable by oras as it is. It tampers with
// the shared snapshot, so it does not run in parallel.
func TestSnapshotOCILayout(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := sharedSnapshot(t)
	layout := filepath.Join(s.dist, "oci")
	out := filepath.Join(dir, "pulled")
	tool(t, "oras", orasModule, "pull", "--oci-layout", "-o", out, layout+":v1.2.0-py3.12-cpu-linux-x86_64")
	a, _ := s.manifest.Find("py3.12-cpu-linux-x86_64")
	pulled, _ := os.ReadFile(filepath.Join(out, a.File))
	built, _ := os.ReadFile(filepath.Join(s.dist, a.File))
	if len(pulled) == 0 || string(pulled) != string(built) {
		t.Error("oras pulled different bytes from the layout")
	}
	if a.OCI != layout+"@"+strings.SplitN(a.OCI, "@", 2)[1] {
		t.Errorf("oci field %q does not name the layout", a.OCI)
	}
	disc := tool(t, "oras", orasModule, "discover", "--oci-layout", "--format", "json", a.OCI)
	if !strings.Contains(disc, "application/vnd.dev.sigstore.bundle.v0.3+json") {
		t.Errorf("oras discover finds no signature in the layout:\n%s", disc)
	}

	mpath, pub := filepath.Join(s.dist, "manifest.json"), filepath.Join(s.dist, "snapshot.pub")
	if v := run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "oci"); v.code != 0 || strings.Count(v.stdout, " ok ") != 8 || strings.Count(v.stdout, "(mount image)") != 4 {
		t.Errorf("verify --channel oci of the layout: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	tamperImages(t, dir, s, mpath, pub)
	// A blob changed in the layout is caught.
	tampered(t, filepath.Join(layout, "blobs", "sha256", a.SHA256), func(data []byte) []byte {
		data[len(data)/2] ^= 0xff
		return data
	})
	if v := run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "oci"); v.code != 1 || !strings.Contains(v.stdout, a.Target.ID) || !strings.Contains(v.stdout, "FAIL") {
		t.Errorf("verify of a corrupted layout blob: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}
