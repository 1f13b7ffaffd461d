package artifact

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// A shard read back describes the artifact build described, where it was
// published and its signature included, and the manifest entry made from
// it is the one written.
func TestShardRoundTrip(t *testing.T) {
	a := Artifact{
		Kind:    Tarball,
		Target:  target.Target{Python: "3.12", Accel: "cu128", OS: "linux", Arch: "aarch64"},
		Release: manifest.Release{Name: "flash-worker", Version: "1.2.0"},
		File:    "flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst",
		Path:    filepath.Join("dist", "flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst"),
		Format:  "tar+zstd", Size: 42, SHA256: "ab",
	}
	if a.Key() != "v1.2.0/flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst" || a.Tag() != "v1.2.0" {
		t.Errorf("key %s, tag %s", a.Key(), a.Tag())
	}
	s := a.Shard()
	if s.Target.ID != "py3.12-cu128-linux-aarch64" || s.StripComponents != 1 || s.URLs == nil || s.Channels != nil || s.Signature != nil {
		t.Errorf("entry before publishing %+v", s.Artifact)
	}
	if back := FromShard("dist", s); !reflect.DeepEqual(back, a) {
		t.Errorf("FromShard = %+v, want %+v", back, a)
	}

	a.SignedBy(Artifact{File: a.File + ".sigstore.json", Path: a.Path + ".sigstore.json"})
	a.Published(Location{Channel: "s3", URL: "https://s3.example/" + a.Key()})
	a.Published(Location{Channel: "s3", URL: "https://s3.example/" + a.Key()}) // a re-run: recorded once
	a.Published(Location{Channel: "oci", URL: "ghcr.io/x@sha256:ab", Ref: true})
	a.Published(Location{}) // a channel that does not carry it
	a.Signature.Published(Location{Channel: "s3", URL: "https://s3.example/" + a.Signature.Key()})
	e := a.Entry()
	if len(e.URLs) != 1 || e.Channels["s3"] != e.URLs[0] || e.OCI != "ghcr.io/x@sha256:ab" || len(e.Channels) != 1 {
		t.Errorf("entry after publishing: urls %v, channels %v, oci %q", e.URLs, e.Channels, e.OCI)
	}
	if e.Signature == nil || e.Signature.Bundle != a.File+".sigstore.json" || len(e.Signature.URLs) != 1 {
		t.Errorf("signature %+v", e.Signature)
	}
	if sig := a.Signature; sig.Kind != Signature || sig.Signs == nil || sig.Signs.Key() != a.Key() || sig.Signs.Kind != Tarball || sig.Key() != a.Key()+".sigstore.json" {
		t.Errorf("the signature does not say what it signs: %+v", sig)
	}

	back := FromShard("dist", a.Shard())
	if !reflect.DeepEqual(back.Entry(), e) {
		t.Errorf("read back, the entry is\n%+v\nwant\n%+v", back.Entry(), e)
	}
}

// A tarball's layers are files named beside it, whatever its compression,
// with the layer's digest; where each went becomes its layer's urls, and a
// tarball without layer files keeps the urls its layers have.
func TestLayerFiles(t *testing.T) {
	a := Artifact{Kind: Tarball, Release: manifest.Release{Version: "1.2.0"}, File: "flash-worker-v1.2.0-py3.12-linux-x86_64.tar.zst",
		Layers: []manifest.Layer{{Name: "deps", Digest: "sha256:" + "ab", Size: 7, URLs: []string{"https://old.example/deps"}}}}
	if got := a.Entry().Layers[0].URLs; len(got) != 1 || got[0] != "https://old.example/deps" {
		t.Errorf("without layer files, urls %v", got)
	}
	lf := a.LayerFile(a.Layers[0], "dist/layers/deps.tar.gz")
	if lf.Kind != Layer || lf.Key() != "v1.2.0/flash-worker-v1.2.0-py3.12-linux-x86_64.deps.layer.tar.gz" || lf.SHA256 != "ab" || lf.Size != 7 || lf.Path != "dist/layers/deps.tar.gz" {
		t.Errorf("layer file %+v", lf)
	}
	lf.Published(Location{Channel: "s3", URL: "https://s3.example/" + lf.Key()})
	lf.Published(Location{}) // the registry does not carry it
	a.LayerFiles = []Artifact{lf}
	if got := a.Entry().Layers[0]; len(got.URLs) != 1 || got.URLs[0] != "https://s3.example/"+lf.Key() || got.Digest != "sha256:ab" {
		t.Errorf("layer entry %+v", got)
	}
	if a.Layers[0].URLs[0] != "https://old.example/deps" {
		t.Error("Entry changed the artifact's own layers")
	}
}
