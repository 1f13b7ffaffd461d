package release

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/image"
	"github.com/runpod-workers/fwrelease/internal/insecure"
	"github.com/runpod-workers/fwrelease/internal/layer"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/redact"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

// ImageSettings configure the images step.
type ImageSettings struct {
	Bases         map[string]string // accelerator → base image ("python:{python}-slim@sha256:…")
	Source        string            // the repository's URL, for the source annotation
	AllowInsecure bool              // a loopback base registry may be plain HTTP
}

// ImagesStep makes each target's images from its layers — the mount image,
// and the overlay image when its accelerator has a base — pushes them to
// every channel that takes images, signs each (a bundle over the image
// manifest's digest, attached as a referrer) and records the references in
// the shards. It runs after the tarballs are published.
type ImagesStep struct {
	Release  *Release
	Channels []publish.Publisher
	Signer   *sign.Signer
	Settings ImageSettings
	bases    map[string]resolvedBase // by reference and platform
}

type resolvedBase struct {
	img v1.Image
	ref string
}

func (s *ImagesStep) String() string { return "publish the images" }

func (s *ImagesStep) Run(ctx context.Context) error {
	var chans []publish.ImagePublisher
	for _, ch := range s.Channels {
		if ip, ok := ch.(publish.ImagePublisher); ok {
			chans = append(chans, ip)
		}
	}
	if len(chans) == 0 {
		return nil
	}
	for i := range s.Release.Artifacts {
		a := &s.Release.Artifacts[i]
		if a.Kind != artifact.Tarball || len(a.Layers) == 0 {
			continue
		}
		if err := s.target(ctx, chans, a); err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID(), err)
		}
	}
	return nil
}

// target makes, pushes and signs one target's images; its layer files are
// beside its tarball.
func (s *ImagesStep) target(ctx context.Context, chans []publish.ImagePublisher, a *artifact.Artifact) error {
	t, rel := a.Target, a.Release
	platform, err := v1.ParsePlatform(t.Platform())
	if err != nil {
		return err
	}
	created, err := time.Parse(time.RFC3339, rel.Created)
	if err != nil {
		return fmt.Errorf("the release's created time %q: %w", rel.Created, err)
	}
	meta := image.Meta{Platform: *platform, Created: created, Version: rel.Version, Source: s.Settings.Source, Revision: rel.Source.Commit, Target: t.ID()}
	dir := filepath.Dir(a.Path)
	mountLayers, err := layerFiles(build.LayerDir(dir, t.ID(), "mount"), a.Layers, true)
	if err != nil {
		return err
	}
	mount, err := image.Mount(mountLayers, meta)
	if err != nil {
		return err
	}
	tag := a.Tag() + "-" + t.ID()
	imgs := &manifest.Images{}
	if imgs.Mount, err = s.publish(ctx, chans, tag+"-mount", mount); err != nil {
		return err
	}
	if baseRef, ok := s.Settings.Bases[t.Accel]; ok {
		overlay, err := s.overlay(ctx, image.BaseRef(baseRef, t.Python), *platform, build.LayerDir(dir, t.ID(), "overlay"), a.Layers, meta)
		if err != nil {
			return err
		}
		ref, err := s.publish(ctx, chans, tag+"-overlay-"+t.Accel, overlay)
		if err != nil {
			return err
		}
		imgs.Overlay = map[string]string{t.Accel: ref}
	}
	a.Images = imgs
	return nil
}

func (s *ImagesStep) overlay(ctx context.Context, baseRef string, platform v1.Platform, dir string, listed []manifest.Layer, meta image.Meta) (v1.Image, error) {
	key := baseRef + " " + platform.String()
	b, ok := s.bases[key]
	if !ok {
		img, ref, err := image.Resolve(ctx, baseRef, platform, s.nameOptions(baseRef), remote.WithAuthFromKeychain(redact.Keychain(authn.DefaultKeychain)),
			remote.WithTransport(insecure.Transport(remote.DefaultTransport, s.scheme(baseRef))))
		if err != nil {
			return nil, fmt.Errorf("images.bases.%s: %w", meta.Target, err)
		}
		b = resolvedBase{img: img, ref: ref}
		if s.bases == nil {
			s.bases = map[string]resolvedBase{}
		}
		s.bases[key] = b
	}
	layers, err := layerFiles(dir, listed, false)
	if err != nil {
		return nil, err
	}
	return image.Overlay(b.img, b.ref, layers, meta)
}

// scheme is http only for a loopback registry with --allow-insecure.
func (s *ImagesStep) scheme(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	scheme, err := insecure.RegistryScheme(host, s.Settings.AllowInsecure, s.Settings.AllowInsecure)
	if err != nil {
		return "https"
	}
	return scheme
}

func (s *ImagesStep) nameOptions(ref string) []name.Option {
	if s.scheme(ref) == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
}

// publish pushes img to every channel and attaches its signature where
// none is; it signs at most once, and only when a channel needs it. It
// returns the reference of the last channel (the registry, or a
// snapshot's layout).
func (s *ImagesStep) publish(ctx context.Context, chans []publish.ImagePublisher, tag string, img v1.Image) (string, error) {
	var bundle []byte
	var ref string
	for _, ch := range chans {
		r, desc, err := ch.PushImage(ctx, tag, img)
		if err != nil {
			return "", err
		}
		ref = r
		if s.Signer == nil {
			continue
		}
		sign := func() ([]byte, error) {
			if bundle != nil {
				return bundle, nil
			}
			digest, _ := hex.DecodeString(desc.Digest.Hex)
			b, err := s.Signer.SignDigest(ctx, digest)
			if err != nil {
				return nil, fmt.Errorf("signing %s: %w", r, err)
			}
			if bundle, err = b.MarshalJSON(); err != nil {
				return nil, fmt.Errorf("encoding the signature of %s: %w", r, err)
			}
			return bundle, nil
		}
		if err := ch.AttachSignature(ctx, desc, sign); err != nil {
			return "", fmt.Errorf("attaching the signature of %s: %w", r, err)
		}
	}
	return ref, nil
}

// layerFiles are the layer files in dir named by the manifest's layers;
// with checked, their digests and sizes are the manifest's (the mount
// layers); else they are read for theirs (the overlay's, which the
// manifest does not list).
func layerFiles(dir string, listed []manifest.Layer, checked bool) ([]layer.Layer, error) {
	var out []layer.Layer
	for _, l := range listed {
		p := filepath.Join(dir, l.Name+".tar.gz")
		sum, size, err := fileDigest(p)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w; build the target again (with images.bases as now, for an overlay image's layers)", l.Name, err)
		}
		if checked && ("sha256:"+sum != l.Digest || size != l.Size) {
			return nil, fmt.Errorf("%s is %d bytes sha256:%s, its shard says %d bytes %s; build the target again", p, size, sum, l.Size, l.Digest)
		}
		ll := layer.Layer{Name: l.Name, Path: p, Digest: "sha256:" + sum, Size: size}
		if checked {
			ll.DiffID, ll.TarSize = l.DiffID, l.TarSize
		}
		out = append(out, ll)
	}
	return out, nil
}

func fileDigest(p string) (string, int64, error) {
	info, err := os.Stat(p)
	if err != nil {
		return "", 0, err
	}
	sum, err := archive.FileSHA256(p)
	return sum, info.Size(), err
}
