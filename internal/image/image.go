// Package image makes the worker's OCI images from its layers, without a
// daemon (go-containerregistry's mutate, as ko and crane append do): the
// mount image, whose layers hold the tree at their root, for
// `--mount type=image,destination=/opt/flash-worker` or a Kubernetes image
// volume; and the overlay image, a base image with the tree appended under
// /opt/flash-worker, for a template's imageName. Every input that could
// vary is pinned, so the same layers and base give the same digest.
package image

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/runpod-workers/fwrelease/internal/layer"
)

// Dir is where the overlay image holds the tree, and where a mount image
// is meant to be mounted.
const Dir = "/opt/flash-worker"

// Annotation keys of ours on image manifests.
const (
	TargetAnnotation = "dev.runpod.flash-worker.target"
	LayerAnnotation  = "dev.runpod.flash-worker.layer"
)

// Meta is what an image says about itself.
type Meta struct {
	Platform v1.Platform // the target's: linux/amd64, linux/arm64
	Created  time.Time   // the release's source date, never the clock
	Version  string
	Source   string // the repository's URL
	Revision string // the source commit
	Target   string // the target ID
}

func (m Meta) annotations() map[string]string {
	a := map[string]string{
		"org.opencontainers.image.version": m.Version,
		"org.opencontainers.image.created": m.Created.UTC().Format(time.RFC3339),
		TargetAnnotation:                   m.Target,
	}
	if m.Source != "" {
		a["org.opencontainers.image.source"] = m.Source
	}
	if m.Revision != "" {
		a["org.opencontainers.image.revision"] = m.Revision
	}
	return a
}

// Mount is the worker image to mount at Dir: the layers on nothing, with a
// config that names the target's platform and no command (it is not run).
func Mount(layers []layer.Layer, m Meta) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := appendLayers(img, layers, types.OCILayer, m)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = m.Platform.OS, m.Platform.Architecture, m.Platform.Variant
	cfg.Config.Labels = m.annotations()
	return finish(img, cfg, m, nil)
}

// Overlay is base (already resolved to the target's platform) with the
// layers appended, the tree under Dir: entrypoint Dir/bootstrap.sh, the
// base's environment and the rest of its config kept. baseRef, the base
// by digest, is recorded in the manifest's base annotations.
func Overlay(base v1.Image, baseRef string, layers []layer.Layer, m Meta) (v1.Image, error) {
	mt, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading base %s: %w", baseRef, err)
	}
	// Layers of the base's own kind: a Docker manifest listing OCI layers
	// is refused by some registries.
	lt := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		lt = types.DockerLayer
	}
	img, err := appendLayers(base, layers, lt, m)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of base %s: %w", baseRef, err)
	}
	cfg = cfg.DeepCopy()
	if cfg.OS != m.Platform.OS || cfg.Architecture != m.Platform.Architecture {
		return nil, fmt.Errorf("base %s is for %s/%s, the target %s for %s", baseRef, cfg.OS, cfg.Architecture, m.Target, m.Platform)
	}
	cfg.Config.Entrypoint = []string{Dir + "/bootstrap.sh"}
	cfg.Config.Cmd = nil
	baseDigest, err := base.Digest()
	if err != nil {
		return nil, err
	}
	extra := map[string]string{
		"org.opencontainers.image.base.name":   baseRef,
		"org.opencontainers.image.base.digest": baseDigest.String(),
	}
	return finish(img, cfg, m, extra)
}

func appendLayers(img v1.Image, layers []layer.Layer, mt types.MediaType, m Meta) (v1.Image, error) {
	var adds []mutate.Addendum
	for _, l := range layers {
		fl, err := FileLayer(l, mt)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:     fl,
			MediaType: mt,
			History: v1.History{
				Created:   v1.Time{Time: m.Created},
				CreatedBy: "fwrelease: layer " + l.Name,
				Comment:   l.Name,
			},
			Annotations: map[string]string{LayerAnnotation: l.Name},
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers for %s: %w", m.Target, err)
	}
	return img, nil
}

// finish pins the config's time and sets the manifest's annotations.
func finish(img v1.Image, cfg *v1.ConfigFile, m Meta, extra map[string]string) (v1.Image, error) {
	cfg.Created = v1.Time{Time: m.Created}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the image config of %s: %w", m.Target, err)
	}
	ann := m.annotations()
	for k, v := range extra {
		ann[k] = v
	}
	return mutate.Annotations(img, ann).(v1.Image), nil
}

// FileLayer is a packed layer file as a v1.Layer: its digest and size are
// known already, its diff ID (the uncompressed digest) is taken when first
// asked for.
func FileLayer(l layer.Layer, mt types.MediaType) (v1.Layer, error) {
	h, err := v1.NewHash(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.Name, err)
	}
	return partial.CompressedToLayer(&fileLayer{l: l, digest: h, mt: mt})
}

type fileLayer struct {
	l      layer.Layer
	digest v1.Hash
	mt     types.MediaType

	once   sync.Once
	diffID v1.Hash
	err    error
}

func (f *fileLayer) Digest() (v1.Hash, error)            { return f.digest, nil }
func (f *fileLayer) Size() (int64, error)                { return f.l.Size, nil }
func (f *fileLayer) MediaType() (types.MediaType, error) { return f.mt, nil }
func (f *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(f.l.Path) }

func (f *fileLayer) DiffID() (v1.Hash, error) {
	f.once.Do(func() {
		if f.l.DiffID != "" {
			f.diffID, f.err = v1.NewHash(f.l.DiffID)
			return
		}
		f.diffID, f.err = uncompressedDigest(f.l.Path)
		if f.err != nil {
			f.err = fmt.Errorf("reading layer %s: %w", f.l.Path, f.err)
		}
	})
	return f.diffID, f.err
}

func uncompressedDigest(p string) (v1.Hash, error) {
	file, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, err
	}
	defer file.Close()
	zr, err := gzip.NewReader(file)
	if err != nil {
		return v1.Hash{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
