package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// pushBase pushes a stand-in base image (linux/amd64, an environment of
// its own) to repo, tagged {python}-slim for each version, and returns its
// digest.
func pushBase(t *testing.T, repo string, pythons ...string) v1.Hash {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cfg.Config.Cmd = []string{"python3"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	for _, py := range pythons {
		ref, err := name.ParseReference(repo+":"+py+"-slim", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := img.Digest()
	return d
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Created      string `json:"created"`
	Config       struct {
		Env        []string `json:"Env"`
		Entrypoint []string `json:"Entrypoint"`
		Cmd        []string `json:"Cmd"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// checkImages reads every target's images with crane and oras, as a host
// would: the mount image is the manifest's layers and nothing else, the
// overlay image the base's layers and then the tree's, with the base's
// environment and bootstrap.sh as its entrypoint; both signed.
func checkImages(t *testing.T, dir string, m *manifest.Manifest, repo string, base v1.Hash) {
	t.Helper()
	for _, a := range m.Artifacts {
		if len(a.Layers) != 2 || a.Layers[0].Name != "deps" || a.Layers[1].Name != "worker" || a.Images == nil {
			t.Fatalf("%s: layers %+v, images %+v", a.Target.ID, a.Layers, a.Images)
		}
		overlay := a.Images.Overlay["cpu"]
		if !strings.HasPrefix(a.Images.Mount, repo+"@sha256:") || !strings.HasPrefix(overlay, repo+"@sha256:") {
			t.Fatalf("%s: images %+v", a.Target.ID, a.Images)
		}
		var mm v1.Manifest
		json.Unmarshal([]byte(tool(t, "crane", craneModule, "manifest", "--insecure", a.Images.Mount)), &mm)
		for i, l := range mm.Layers {
			if i >= len(a.Layers) || l.Digest.String() != a.Layers[i].Digest || l.Size != a.Layers[i].Size {
				t.Errorf("%s: mount image layer %d is %s, the manifest lists %+v", a.Target.ID, i, l.Digest, a.Layers)
			}
		}
		var mc imageConfig
		json.Unmarshal([]byte(tool(t, "crane", craneModule, "config", "--insecure", a.Images.Mount)), &mc)
		if mc.OS != "linux" || mc.Architecture != "amd64" || mc.Created != m.Created || len(mc.RootFS.DiffIDs) != 2 {
			t.Errorf("%s: mount image config %+v", a.Target.ID, mc)
		}
		var oc imageConfig
		json.Unmarshal([]byte(tool(t, "oras", orasModule, "manifest", "fetch-config", "--plain-http", overlay)), &oc)
		if !slices.Equal(oc.Config.Entrypoint, []string{"/opt/flash-worker/bootstrap.sh"}) || oc.Config.Cmd != nil ||
			!slices.Contains(oc.Config.Env, "LANG=C.UTF-8") || len(oc.RootFS.DiffIDs) != 4 {
			t.Errorf("%s: overlay image config %+v", a.Target.ID, oc)
		}
		var om v1.Manifest
		json.Unmarshal([]byte(tool(t, "oras", orasModule, "manifest", "fetch", "--plain-http", overlay)), &om)
		if om.Annotations["org.opencontainers.image.base.digest"] != base.String() {
			t.Errorf("%s: overlay image's base %q, want %s", a.Target.ID, om.Annotations["org.opencontainers.image.base.digest"], base)
		}
		for _, ref := range []string{a.Images.Mount, overlay} {
			disc := tool(t, "oras", orasModule, "discover", "--plain-http", "--format", "json", ref)
			if !strings.Contains(disc, "application/vnd.dev.sigstore.bundle.v0.3+json") {
				t.Errorf("oras discover finds no signature of %s:\n%s", ref, disc)
			}
		}
	}
	// cosign checks an image's signature independently: the bundle signs
	// the image manifest's bytes (whose sha256 is the image's digest), so
	// verify-blob of those bytes accepts it, and of any other bytes does not.
	a := m.Artifacts[0]
	raw := tool(t, "crane", craneModule, "manifest", "--insecure", a.Images.Mount)
	mfile := filepath.Join(dir, "mount-manifest.json")
	os.WriteFile(mfile, []byte(raw), 0o644)
	pulled := filepath.Join(dir, "mount-signature")
	// oras 1.3 lists them as referrers, earlier ones as manifests.
	var refs struct {
		Referrers []struct {
			Digest string `json:"digest"`
		} `json:"referrers"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	disc := tool(t, "oras", orasModule, "discover", "--plain-http", "--format", "json", a.Images.Mount)
	json.Unmarshal([]byte(disc), &refs)
	refs.Referrers = append(refs.Referrers, refs.Manifests...)
	if len(refs.Referrers) != 1 {
		t.Fatalf("%d referrers of %s:\n%s", len(refs.Referrers), a.Images.Mount, disc)
	}
	repoName, _, _ := strings.Cut(a.Images.Mount, "@")
	var sigManifest v1.Manifest
	json.Unmarshal([]byte(tool(t, "oras", orasModule, "manifest", "fetch", "--plain-http", repoName+"@"+refs.Referrers[0].Digest)), &sigManifest)
	if len(sigManifest.Layers) != 1 {
		t.Fatalf("the referrer %s has %d layers", refs.Referrers[0].Digest, len(sigManifest.Layers))
	}
	tool(t, "oras", orasModule, "blob", "fetch", "--plain-http", "--output", pulled, repoName+"@"+sigManifest.Layers[0].Digest.String())
	pub := filepath.Join(dir, "release.pub")
	if out, err := cosignVerify(t, pub, mfile, pulled); err != nil || !strings.Contains(out, "Verified OK") {
		t.Errorf("cosign verify-blob of the mount image's manifest: %v\n%s", err, out)
	}
	os.WriteFile(mfile, []byte(strings.Replace(raw, `"size":`, `"size": `, 1)), 0o644)
	if out, err := cosignVerify(t, pub, mfile, pulled); err == nil {
		t.Errorf("cosign accepted the image's signature for other manifest bytes:\n%s", out)
	}
}

// tamperImages breaks a snapshot's mount images two ways, and verify
// refuses each: a signature that is another image's, and a layer whose
// tree no longer matches MANIFEST.json.
func tamperImages(t *testing.T, dir string, s snapshot, mpath, pub string) {
	t.Helper()
	layoutDir := filepath.Join(s.dist, "oci")
	a, b := s.manifest.Artifacts[0], s.manifest.Artifacts[1]
	bundleA, bundleB := referrerBlob(t, layoutDir, a.Images.Mount), referrerBlob(t, layoutDir, b.Images.Mount)
	orig, _ := os.ReadFile(bundleA)
	other, _ := os.ReadFile(bundleB)
	os.WriteFile(bundleA, other, 0o644)
	v := run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "oci")
	if v.code != 1 || !strings.Contains(v.stdout, a.Target.ID+"  oci (mount image)") || strings.Count(v.stdout, "FAIL") != 1 || !strings.Contains(v.stdout, " bad ") {
		t.Errorf("verify of a mount image signed by another image's bundle: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	os.WriteFile(bundleA, orig, 0o644)

	// The worker layer's blob, rewritten with a changed file: verify reads
	// the tree and finds it is not the one MANIFEST.json describes.
	worker := filepath.Join(layoutDir, "blobs", "sha256", strings.TrimPrefix(a.Layers[1].Digest, "sha256:"))
	tampered(t, worker, func(data []byte) []byte {
		data[len(data)/2] ^= 0xff
		return data
	})
	v = run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "oci")
	if v.code != 1 || !strings.Contains(v.stdout, "mount image: layer "+a.Layers[1].Digest) {
		t.Errorf("verify of a mount image with a changed layer: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}

// referrerBlob is the path of the bundle blob attached to ref
// (layout@sha256:…) in an OCI layout.
func referrerBlob(t *testing.T, layoutDir, ref string) string {
	t.Helper()
	_, digest, _ := strings.Cut(ref, "@")
	var index v1.IndexManifest
	data, _ := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	json.Unmarshal(data, &index)
	for _, d := range index.Manifests {
		raw, err := os.ReadFile(filepath.Join(layoutDir, "blobs", "sha256", d.Digest.Hex))
		if err != nil {
			continue
		}
		var m v1.Manifest
		if json.Unmarshal(raw, &m) == nil && m.Subject != nil && m.Subject.Digest.String() == digest && len(m.Layers) == 1 {
			return filepath.Join(layoutDir, "blobs", "sha256", m.Layers[0].Digest.Hex)
		}
	}
	t.Fatalf("no signature of %s in %s", ref, layoutDir)
	return ""
}
