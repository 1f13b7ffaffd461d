package release

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// The kinds of release, each declared here once. The order is the
// contract of docs/publish.md: every artifact on every channel, then the
// signatures, then the manifest (its signature first), then the channels'
// releases made visible, then latest.json, so a failure at any step leaves
// consumers on the previous release and a re-run converges.

// Builder builds targets into a release's dist (*build.Builder).
type Builder interface {
	Build(ctx context.Context, targets []target.Target) ([]artifact.Artifact, error)
}

// Publishing is what the publishing steps are handed: the channels (from
// publish.Open, or a snapshot's; a dry run's publish nothing), the signer,
// and the checker that lets a re-run keep a signature already published.
type Publishing struct {
	Channels *publish.Set
	Signer   *sign.Signer
	Verifier BundleChecker // nil: a published signature with other bytes is an error
	Images   ImageSettings
}

// Full builds every target, signs, and publishes to every channel.
func Full(r *Release, b Builder, targets []target.Target, p Publishing) []Step {
	return append([]Step{
		&BuildStep{Builder: b, Targets: targets, Release: r},
		&SignStep{Signer: p.Signer, Release: r},
	}, publishing(r, p)...)
}

// PublishOnly publishes what `fwrelease build` (and perhaps `sign`) left in
// the release's directories, signing what is not signed yet.
func PublishOnly(r *Release, p Publishing) []Step {
	return append([]Step{
		&SignStep{Signer: p.Signer, Release: r, OnlyUnsigned: true},
	}, publishing(r, p)...)
}

// Snapshot is a full release into r.Dist only: the local tree dist/local
// and an OCI layout dist/oci (SnapshotChannels), signed with an ephemeral
// key whose public half is dist/snapshot.pub (SnapshotSigner). images
// name the overlay images' bases and the repository's URL, for the OCI
// source annotation.
func Snapshot(ctx context.Context, r *Release, b Builder, targets []target.Target, images ImageSettings, log *slog.Logger) ([]Step, error) {
	signer, err := SnapshotSigner(ctx, r.Dist)
	if err != nil {
		return nil, err
	}
	pubs, err := SnapshotChannels(r.Dist, images.Source)
	if err != nil {
		return nil, err
	}
	return Full(r, b, targets, Publishing{Channels: publish.NewSet(log, pubs...), Signer: signer, Images: images}), nil
}

// SnapshotChannels are the local tree dist/local and an OCI layout in
// dist/oci, both started afresh, since the snapshot's key signs
// differently every run. source is the repository's URL, for the OCI
// source annotation.
func SnapshotChannels(dist, source string) ([]publish.Publisher, error) {
	localDir, ociDir := filepath.Join(dist, "local"), filepath.Join(dist, "oci")
	for _, d := range []string{localDir, ociDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	layout, err := publish.NewOCILayout(ociDir)
	if err != nil {
		return nil, err
	}
	layout.Source = source
	return []publish.Publisher{&publish.Local{Dir: localDir}, layout}, nil
}

// SnapshotSigner makes an ephemeral key and writes its public half to
// dist/snapshot.pub, so the snapshot can be verified like a release.
func SnapshotSigner(ctx context.Context, dist string) (*sign.Signer, error) {
	sv, err := sign.Ephemeral()
	if err != nil {
		return nil, err
	}
	s, err := sign.New(ctx, sv)
	if err != nil {
		return nil, err
	}
	pub, err := s.PublicKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dist, "snapshot.pub"), pub, 0o644); err != nil {
		return nil, fmt.Errorf("writing the snapshot's public key: %w", err)
	}
	return s, nil
}

// publishing are the steps after signing. A dry run's channels neither
// finalize nor move latest, so those steps do nothing there.
func publishing(r *Release, p Publishing) []Step {
	steps := []Step{&LayerFilesStep{Release: r}, &PreflightStep{Channels: p.Channels, Release: r}}
	for _, ch := range p.Channels.Channels() {
		steps = append(steps, &PublishStep{Publisher: ch, Release: r})
	}
	for _, ch := range p.Channels.Channels() {
		steps = append(steps, &PublishStep{Publisher: ch, Release: r, Signatures: true, Verifier: p.Verifier})
	}
	return append(steps,
		&ImagesStep{Release: r, Channels: p.Channels.Channels(), Signer: p.Signer, Settings: p.Images},
		&IndexStep{Channels: p.Channels, Release: r},
		&ManifestStep{Release: r, Signer: p.Signer, Verifier: p.Verifier, Publishers: p.Channels.Channels()},
		&FinalizeStep{Channels: p.Channels, Release: r},
		&LatestStep{Channels: p.Channels, Release: r})
}
