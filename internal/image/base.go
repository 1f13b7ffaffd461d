package image

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// BaseRef fills "{python}" in a configured base ("python:{python}-slim").
func BaseRef(configured, python string) string {
	return strings.ReplaceAll(configured, "{python}", python)
}

// Resolve reads the base ref names (a tag, or pinned by digest) and
// returns its image for platform, picked from an index when ref names one,
// and the reference by digest it resolved to: repository@sha256 of the
// platform's image manifest, what a release records.
func Resolve(ctx context.Context, ref string, platform v1.Platform, nameOpts []name.Option, opts ...remote.Option) (v1.Image, string, error) {
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, "", fmt.Errorf("base image %q: %w", ref, err)
	}
	opts = append(opts, remote.WithContext(ctx), remote.WithPlatform(platform))
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("reading base image %s: %w", ref, err)
	}
	// Image() picks the platform's manifest out of an index (WithPlatform).
	img, err := desc.Image()
	if err != nil {
		return nil, "", fmt.Errorf("base image %s for %s: %w", ref, platform, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("base image %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, "", fmt.Errorf("reading the config of base image %s: %w", ref, err)
	}
	if cfg.OS != platform.OS || cfg.Architecture != platform.Architecture {
		return nil, "", fmt.Errorf("base image %s is for %s/%s, not %s", ref, cfg.OS, cfg.Architecture, platform)
	}
	return img, r.Context().Digest(d.String()).String(), nil
}
