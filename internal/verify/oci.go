package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/redact"
)

// ociSource reads one artifact manifest, from a registry or a layout.
type ociSource struct {
	manifest []byte
	blob     func(v1.Hash) (io.ReadCloser, error)
	bundle   func() ([]byte, error) // the signature referrer's bundle
}

type artifactManifest struct {
	ArtifactType string          `json:"artifactType"`
	Layers       []v1.Descriptor `json:"layers"`
	Subject      *v1.Descriptor  `json:"subject"`
}

const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// openOCI resolves "repository@sha256:…" (or "layout-dir@sha256:…").
func (o Options) openOCI(ctx context.Context, ref string) (*ociSource, error) {
	repo, digest, ok := strings.Cut(ref, "@")
	if !ok {
		return nil, fmt.Errorf("%s is not repository@sha256:…", ref)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(repo); err == nil && info.IsDir() {
		return openLayout(repo, h)
	}
	// A reference carries no plain_http: --allow-insecure asks for it, and
	// RegistryScheme grants it to loopback only.
	var opts []name.Option
	host, _, _ := strings.Cut(repo, "/")
	scheme, err := insecure.RegistryScheme(host, o.AllowInsecure, o.AllowInsecure)
	if err != nil {
		scheme = "https"
	}
	if scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	d, err := name.NewDigest(ref, opts...)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(redact.Keychain(authn.DefaultKeychain)),
		remote.WithTransport(insecure.Transport(remote.DefaultTransport, scheme))}
	desc, err := remote.Get(d, ropts...)
	if err != nil {
		return nil, err
	}
	src := &ociSource{manifest: desc.Manifest}
	src.blob = func(h v1.Hash) (io.ReadCloser, error) {
		l, err := remote.Layer(d.Context().Digest(h.String()), ropts...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}
	src.bundle = func() ([]byte, error) {
		idx, err := remote.Referrers(d, ropts...)
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, r := range im.Manifests {
			got, err := remote.Get(d.Context().Digest(r.Digest.String()), ropts...)
			if err != nil {
				return nil, err
			}
			if b, ok, err := bundleOf(got.Manifest, src.blob); ok || err != nil {
				return b, err
			}
		}
		return nil, errors.New("no Sigstore bundle attached as a referrer")
	}
	return src, nil
}

func openLayout(dir string, h v1.Hash) (*ociSource, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	raw, err := p.Bytes(h)
	if err != nil {
		return nil, err
	}
	src := &ociSource{manifest: raw, blob: p.Blob}
	src.bundle = func() ([]byte, error) {
		idx, err := p.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			m, err := p.Bytes(d.Digest)
			if err != nil {
				continue
			}
			var am artifactManifest
			if json.Unmarshal(m, &am) != nil || am.Subject == nil || am.Subject.Digest != h {
				continue
			}
			if b, ok, err := bundleOf(m, p.Blob); ok || err != nil {
				return b, err
			}
		}
		return nil, errors.New("no Sigstore bundle attached as a referrer")
	}
	return src, nil
}

func bundleOf(raw []byte, blob func(v1.Hash) (io.ReadCloser, error)) ([]byte, bool, error) {
	var m artifactManifest
	if err := json.Unmarshal(raw, &m); err != nil || m.ArtifactType != bundleType || len(m.Layers) != 1 {
		return nil, false, nil
	}
	rc, err := blob(m.Layers[0].Digest)
	if err != nil {
		return nil, true, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSmall))
	return b, true, err
}

// tarball returns the artifact's single layer as a stream, after checking
// that the manifest says it is the tarball the release manifest names.
func (s *ociSource) tarball(sha string, size int64) (io.ReadCloser, error) {
	var m artifactManifest
	if err := json.Unmarshal(s.manifest, &m); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(m.ArtifactType, "application/vnd.runpod.flash-worker.v1+") || len(m.Layers) != 1 {
		return nil, fmt.Errorf("not a flash-worker artifact (artifactType %q, %d layers)", m.ArtifactType, len(m.Layers))
	}
	if l := m.Layers[0]; l.Digest.Hex != sha || l.Size != size {
		return nil, fmt.Errorf("the artifact's layer is %s (%d bytes), the manifest says sha256:%s (%d bytes)", l.Digest, l.Size, sha, size)
	}
	return s.blob(m.Layers[0].Digest)
}
