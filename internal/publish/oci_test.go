package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// inProcessRegistry is go-containerregistry's registry, with the referrers
// API, counting blob uploads.
func inProcessRegistry(t *testing.T) (host string, uploads *atomic.Int32) {
	uploads = &atomic.Int32{}
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), uploads
}

// ociObjects are one target's tarball and signature, as a release step
// describes them to every channel.
type ociObjects struct{ art, sig artifact.Artifact }

func ociArtifact(t *testing.T, dir, id, content string) ociObjects {
	obj := writeObject(t, dir, "flash-worker-v1.2.0-"+id+".tar.gz", []byte(content))
	f := strings.Split(strings.TrimPrefix(id, "py"), "-") // py3.11-cpu-linux-x86_64
	tg := target.Target{Python: f[0], Accel: f[1], OS: f[2], Arch: f[3]}
	if tg.ID() != id {
		t.Fatalf("target %s read as %s", id, tg)
	}
	obj.Kind, obj.Target, obj.Format = artifact.Tarball, tg, "tar+gzip"
	obj.Release.Source.Commit, obj.Release.Created = strings.Repeat("a", 40), "2026-01-01T00:00:00Z"
	obj.SignedBy(writeObject(t, dir, obj.File+".sigstore.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)))
	return ociObjects{obj, *obj.Signature}
}

// push publishes the tarball, then its signature, as a release does.
func (a ociObjects) push(ctx context.Context, o *OCI) (string, error) {
	at, err := o.Publish(ctx, a.art)
	if err != nil {
		return "", err
	}
	if !at.Ref || at.Channel != "oci" {
		return "", fmt.Errorf("location %+v, want a reference on oci", at)
	}
	_, err = o.Publish(ctx, a.sig)
	return at.URL, err
}

func newOCI(t *testing.T, repo string) *OCI {
	o, err := NewOCIRegistry(repo, true, true)
	if err != nil {
		t.Fatal(err)
	}
	o.Source = "https://github.com/runpod-workers/flash"
	return o
}

func TestOCIPushAndRepublish(t *testing.T) {
	ctx := context.Background()
	host, uploads := inProcessRegistry(t)
	repo := host + "/runpod/flash-worker"
	dir := t.TempDir()
	a := ociArtifact(t, dir, "py3.11-cpu-linux-x86_64", "tarball bytes")

	o := newOCI(t, repo)
	ref, err := a.push(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.PushIndex(ctx, "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, repo+"@sha256:") {
		t.Errorf("ref %s", ref)
	}
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	var m ociManifest
	json.Unmarshal(desc.Manifest, &m)
	if m.ArtifactType != ArtifactTypeGzip || m.Config.MediaType != emptyConfigType || len(m.Layers) != 1 ||
		m.Layers[0].Annotations[titleAnnotation] != a.art.File || m.Annotations["org.opencontainers.image.created"] != a.art.Release.Created ||
		m.Annotations["org.opencontainers.image.source"] != o.Source {
		t.Errorf("artifact manifest: %s", desc.Manifest)
	}
	refs, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := refs.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("referrers: %+v", im.Manifests)
	}
	sig, err := remote.Get(d.Context().Digest(im.Manifests[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	var sm ociManifest
	json.Unmarshal(sig.Manifest, &sm)
	if sm.ArtifactType != BundleArtifactType || sm.Subject == nil || sm.Subject.Digest.String() != d.DigestStr() {
		t.Errorf("signature referrer: %s", sig.Manifest)
	}
	tag, _ := name.NewTag(repo+":v1.2.0", name.Insecure)
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	ixm, _ := idx.IndexManifest()
	if len(ixm.Manifests) != 1 || ixm.Manifests[0].Platform == nil || ixm.Manifests[0].Platform.Architecture != "amd64" || ixm.Manifests[0].Annotations[targetAnnotation] != a.art.Target.ID() {
		t.Errorf("index: %+v", ixm.Manifests)
	}

	// Publishing again pushes no blob, keeps the digest and adds no second
	// signature.
	before := uploads.Load()
	ref2, err := a.push(ctx, newOCI(t, repo))
	if err != nil {
		t.Fatal(err)
	}
	if ref2 != ref {
		t.Errorf("re-publish changed the digest: %s then %s", ref, ref2)
	}
	if n := uploads.Load() - before; n != 0 {
		t.Errorf("re-publish uploaded %d blobs", n)
	}
	refs, _ = remote.Referrers(d)
	if im, _ := refs.IndexManifest(); len(im.Manifests) != 1 {
		t.Errorf("re-publish added referrers: %d", len(im.Manifests))
	}

	// Different bytes under the same tag are refused.
	b := ociArtifact(t, t.TempDir(), "py3.11-cpu-linux-x86_64", "other bytes")
	if _, err := b.push(ctx, newOCI(t, repo)); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "v1.2.0-py3.11-cpu-linux-x86_64") {
		t.Errorf("overwrite: %v", err)
	}

	if _, err := NewOCIRegistry("registry.example.com/x", true, true); err == nil {
		t.Error("plain http to a remote registry accepted")
	}
	if _, err := NewOCIRegistry(repo, true, false); err == nil {
		t.Error("plain http without --allow-insecure accepted")
	}
}

// A registry that fails blob uploads for a while (500s): the push
// retries and lands, with the right digest.
func TestOCIFlakyRegistry(t *testing.T) {
	h := registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0)))
	var n, failed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A burst of failures: the first three upload requests, whatever
		// they are (session start, PATCH, PUT).
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && n.Add(1) <= 3 {
			failed.Add(1)
			http.Error(w, "flaky", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/runpod/flash-worker"
	a := ociArtifact(t, t.TempDir(), "py3.12-cpu-linux-x86_64", "flaky tarball")
	ref, err := a.push(context.Background(), newOCI(t, repo))
	if err != nil {
		t.Fatalf("push through a flaky registry: %v", err)
	}
	if failed.Load() == 0 {
		t.Fatal("the registry failed nothing; the test checked nothing")
	}
	d, _ := name.NewDigest(ref, name.Insecure)
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	var m ociManifest
	json.Unmarshal(desc.Manifest, &m)
	layer, err := remote.Layer(d.Context().Digest(m.Layers[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := layer.Compressed()
	got, _ := io.ReadAll(rc)
	if string(got) != "flaky tarball" {
		t.Errorf("the registry holds %q", got)
	}
}

// A snapshot's layout links the tarball it already holds instead of
// copying it; a signature whose tarball this run did not push is an error,
// and the manifest (and its signature) is not the registry's to carry.
func TestOCILayoutLinksAndRefusesOrphanSignatures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o, err := NewOCILayout(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	a := ociArtifact(t, dir, "py3.11-cpu-linux-x86_64", "tarball bytes")
	if _, err := o.Publish(ctx, a.sig); err == nil || !strings.Contains(err.Error(), "was not pushed") {
		t.Errorf("a signature before its tarball: %v", err)
	}
	if _, err := a.push(ctx, o); err != nil {
		t.Fatal(err)
	}
	blob, err := os.Stat(filepath.Join(dir, "oci", "blobs", "sha256", a.art.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := os.Stat(a.art.Path); !os.SameFile(blob, src) {
		t.Error("the layout holds a copy of the tarball, not a link to it")
	}

	mf := writeObject(t, dir, "manifest.json", []byte(`{"schema_version":1}`))
	mf.SignedBy(writeObject(t, dir, "manifest.json.sigstore.json", []byte(`{}`)))
	for _, x := range []artifact.Artifact{*mf.Signature, mf} {
		if at, err := o.Publish(ctx, x); err != nil || at.Carried() {
			t.Errorf("%s: %+v, %v; want nothing carried", x.File, at, err)
		}
	}
}
