package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImagePublisher is a channel that takes OCI images (the worker's mount and
// overlay images) and their signatures.
type ImagePublisher interface {
	Publisher
	// PushImage pushes img tagged tag and returns its reference by digest
	// and its descriptor. A tag that names other content is ErrExists
	// unless the channel was made to replace.
	PushImage(ctx context.Context, tag string, img v1.Image) (string, v1.Descriptor, error)
	// AttachSignature attaches a Sigstore bundle, made by bundle, as a
	// referrer of subject, unless one is attached already (then bundle is
	// not called: a re-run signs nothing again).
	AttachSignature(ctx context.Context, subject v1.Descriptor, bundle func() ([]byte, error)) error
}

var _ ImagePublisher = (*OCI)(nil)

func (o *OCI) PushImage(ctx context.Context, tag string, img v1.Image) (string, v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return "", v1.Descriptor{}, fmt.Errorf("image %s: %w", tag, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return "", v1.Descriptor{}, fmt.Errorf("image %s: %w", tag, err)
	}
	sum := sha256.Sum256(raw)
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	if have, ok, err := o.store.tagged(ctx, tag); err != nil {
		return "", desc, fmt.Errorf("reading tag %s: %w", tag, err)
	} else if ok && have != desc.Digest && !o.Replace {
		return "", desc, fmt.Errorf("pushing %s:%s: %w (there: %s, ours: %s); pass --replace to move the tag", o.Repository, tag, ErrExists, have, desc.Digest)
	}
	if err := o.store.writeImage(ctx, tag, img, raw, mt); err != nil {
		return "", desc, fmt.Errorf("pushing %s:%s: %w", o.Repository, tag, err)
	}
	return o.Repository + "@" + desc.Digest.String(), desc, nil
}

func (o *OCI) AttachSignature(ctx context.Context, subject v1.Descriptor, sign func() ([]byte, error)) error {
	has, err := o.store.hasReferrer(ctx, subject.Digest, BundleArtifactType)
	if err != nil || has {
		return err
	}
	bundle, err := sign()
	if err != nil {
		return err
	}
	configDesc, err := o.writeEmptyConfig(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(bundle)
	bd := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := o.store.writeBlob(ctx, bd, int64(len(bundle)), BundleArtifactType, content{data: bundle}); err != nil {
		return err
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	raw, _, err := encode(ociManifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: BundleArtifactType,
		Config:  configDesc,
		Layers:  []v1.Descriptor{{MediaType: BundleArtifactType, Digest: bd, Size: int64(len(bundle))}},
		Subject: &sub,
	})
	if err != nil {
		return err
	}
	return o.store.putManifest(ctx, "", types.OCIManifestSchema1, raw)
}

// writeImage pushes an image's blobs (those the registry lacks, a base's
// mounted from its repository where the registry allows) and its manifest.
func (r *registryStore) writeImage(ctx context.Context, tag string, img v1.Image, _ []byte, _ types.MediaType) error {
	return retryTransient(ctx, func() error { return remote.Write(r.repo.Tag(tag), img, r.opts(ctx)...) })
}

// writeImage writes an image's blobs into the layout and tags its
// manifest.
func (l *layoutStore) writeImage(ctx context.Context, tag string, img v1.Image, raw []byte, mt types.MediaType) error {
	if err := l.path.WriteImage(img); err != nil {
		return err
	}
	return l.putManifest(ctx, tag, mt, raw)
}
