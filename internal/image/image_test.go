package image

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/layer"
)

var epoch = time.Unix(1767225600, 0).UTC()

func testLayers(t *testing.T, prefix string) []layer.Layer {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{"bootstrap.sh": "#!/bin/sh\n", "site-packages/a.py": "a\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := archive.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := layer.Write(context.Background(), entries, layer.Defaults("overlay"), layer.Options{Dir: t.TempDir(), Prefix: prefix, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return layers
}

func meta(arch string) Meta {
	return Meta{Platform: v1.Platform{OS: "linux", Architecture: arch}, Created: epoch, Version: "1.2.0", Source: "https://github.com/o/r", Revision: "abc", Target: "py3.11-cpu-linux-x86_64"}
}

// The mount image holds the layers as they are, with a config that names
// their diff IDs, the target's platform and the release's time; the same
// layers give the same digest.
func TestMount(t *testing.T) {
	layers := testLayers(t, "")
	img, err := Mount(layers, meta("amd64"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	for i, l := range layers {
		if m.Layers[i].Digest.String() != l.Digest || m.Layers[i].Size != l.Size || m.Layers[i].Annotations[LayerAnnotation] != l.Name {
			t.Errorf("layer %d: %+v, want %+v", i, m.Layers[i], l)
		}
		if cfg.RootFS.DiffIDs[i] == m.Layers[i].Digest {
			t.Errorf("diff ID %d is the compressed digest", i)
		}
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || !cfg.Created.Time.Equal(epoch) || len(cfg.RootFS.DiffIDs) != 2 {
		t.Errorf("config %+v", cfg)
	}
	if m.Annotations["org.opencontainers.image.created"] != "2026-01-01T00:00:00Z" || m.Annotations[TargetAnnotation] != "py3.11-cpu-linux-x86_64" {
		t.Errorf("annotations %v", m.Annotations)
	}
	again, err := Mount(testLayers(t, ""), meta("amd64"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("same layers, two digests: %s and %s", d1, d2)
	}
}

// A base pushed as a two-platform index: Resolve picks the target's
// platform and returns it by digest; Overlay appends the layers, keeps the
// base's environment, sets the entrypoint, and repeats its digest.
func TestOverlay(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.OS, cfg.Architecture = "linux", arch
		cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin", "PYTHON_VERSION=3.11.9"}
		cfg.Config.Cmd = []string{"python3"}
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, err := name.ParseReference(host+"/python:3.11-slim", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}

	base, baseRef, err := Resolve(context.Background(), BaseRef(host+"/python:{python}-slim", "3.11"), v1.Platform{OS: "linux", Architecture: "arm64"}, []name.Option{name.Insecure})
	if err != nil {
		t.Fatal(err)
	}
	armDigest, _ := adds[1].Add.(v1.Image).Digest()
	if baseRef != host+"/python@"+armDigest.String() {
		t.Errorf("resolved to %s, want the arm64 image %s", baseRef, armDigest)
	}
	layers := testLayers(t, "opt/flash-worker")
	img, err := Overlay(base, baseRef, layers, meta("arm64"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/opt/flash-worker/bootstrap.sh"}) || cfg.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if !slices.Contains(cfg.Config.Env, "PYTHON_VERSION=3.11.9") || cfg.Architecture != "arm64" || len(cfg.RootFS.DiffIDs) != 4 {
		t.Errorf("config %+v", cfg)
	}
	m, _ := img.Manifest()
	if m.Layers[2].Digest.String() != layers[0].Digest || m.Layers[3].Digest.String() != layers[1].Digest {
		t.Errorf("layers %+v", m.Layers)
	}
	if m.Annotations["org.opencontainers.image.base.digest"] != armDigest.String() {
		t.Errorf("annotations %v", m.Annotations)
	}
	again, err := Overlay(base, baseRef, testLayers(t, "opt/flash-worker"), meta("arm64"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("same inputs, two digests: %s and %s", d1, d2)
	}

	if _, err := Overlay(base, baseRef, layers, meta("amd64")); err == nil || !strings.Contains(err.Error(), "arm64") {
		t.Errorf("a base of another platform: %v", err)
	}
	if _, _, err := Resolve(context.Background(), host+"/python:3.11-slim", v1.Platform{OS: "linux", Architecture: "s390x"}, []name.Option{name.Insecure}); err == nil {
		t.Error("resolved a platform the index lacks")
	}
}
