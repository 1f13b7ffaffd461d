// Package release runs a release as an ordered list of small steps: build,
// sign, publish the artifacts, write the manifest. pipeline.go declares the
// kinds of release, each in one place; a step is handed what it needs and
// says so when an earlier step has not provided it.
package release

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/event"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/sign"
	"github.com/runpod-workers/fwrelease/internal/target"
	"github.com/runpod-workers/fwrelease/schema"
)

// Step is one stage of a release.
type Step interface {
	String() string
	Run(ctx context.Context) error
}

// Run runs steps in order and stops at the first failure.
func Run(ctx context.Context, log *slog.Logger, steps []Step) error {
	for _, s := range steps {
		start := time.Now()
		log.Info("step", event.Attr(event.StepStarted{Name: s.String()}))
		if err := s.Run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		log.Debug("step done", event.Attr(event.StepDone{Name: s.String(), Took: time.Since(start).Round(time.Millisecond)}))
	}
	return nil
}

// Release is the state the steps hand on: the tarballs built (or loaded),
// their signatures, and where each was published. Shards and the manifest
// are made from it only when they are written.
type Release struct {
	Dist      string // where manifest.json and SHA256SUMS are written
	Artifacts []artifact.Artifact
	Manifest  *manifest.Manifest
}

// errNoManifest is what a step that needs the manifest says when the
// manifest step has not run.
var errNoManifest = errors.New("no manifest yet: the manifest step must run before this one")

// version is the release's version ("" before anything is built).
func (r *Release) version() string {
	if len(r.Artifacts) == 0 {
		return ""
	}
	return r.Artifacts[0].Release.Version
}

// BuildStep builds every target into the release's dist.
type BuildStep struct {
	Builder Builder
	Targets []target.Target
	Release *Release
}

func (s *BuildStep) String() string { return "build" }

func (s *BuildStep) Run(ctx context.Context) error {
	built, err := s.Builder.Build(ctx, s.Targets)
	if err != nil {
		return err
	}
	s.Release.Artifacts = append(s.Release.Artifacts, built...)
	return nil
}

// PreflightStep lets every channel refuse what it cannot take (GitHub's
// 2 GiB limit) before anything is uploaded anywhere.
type PreflightStep struct {
	Channels *publish.Set
	Release  *Release
}

func (s *PreflightStep) String() string { return "check the artifacts fit every channel" }

func (s *PreflightStep) Run(ctx context.Context) error {
	return s.Channels.Preflight(s.Release.files())
}

// PublishStep puts every tarball and its layer files (or, with
// Signatures, every tarball's bundle) on one channel and records where
// each went.
type PublishStep struct {
	Publisher  publish.Publisher
	Release    *Release
	Signatures bool
	// Verifier, when set, lets a re-run keep a bundle that is already
	// published and valid for the artifact, rather than fail because this
	// run's signature has other bytes (signatures are not deterministic).
	Verifier BundleChecker
}

// BundleChecker decides whether a published bundle signs an artifact:
// *sign.Verifier (a key), or sign.DigestMatcher (keyless re-runs).
type BundleChecker interface {
	VerifyDigest(b *bundle.Bundle, alg string, digest []byte) error
}

func (s *PublishStep) String() string {
	if s.Signatures {
		return "publish signatures to " + s.Publisher.Name()
	}
	return "publish artifacts to " + s.Publisher.Name()
}

func (s *PublishStep) Run(ctx context.Context) error {
	for i := range s.Release.Artifacts {
		a := &s.Release.Artifacts[i]
		if s.Signatures {
			if a.Signature == nil {
				return fmt.Errorf("%s is not signed; run fwrelease sign first", a.File)
			}
			a = a.Signature
		}
		at, err := s.Publisher.Publish(ctx, *a)
		if s.Signatures && errors.Is(err, publish.ErrExists) {
			at, err = keepPublishedBundle(ctx, s.Publisher, s.Verifier, a, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID(), err)
		}
		a.Published(at)
		if err := s.publishLayers(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// publishLayers puts a tarball's layer files on the channel, after the
// tarball; a signature has none.
func (s *PublishStep) publishLayers(ctx context.Context, a *artifact.Artifact) error {
	for j := range a.LayerFiles {
		lf := &a.LayerFiles[j]
		at, err := s.Publisher.Publish(ctx, *lf)
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", a.Target.ID(), a.Layers[j].Name, err)
		}
		lf.Published(at)
	}
	return nil
}

// keepPublishedBundle accepts the bundle already published under sig's
// key if it is a valid signature, by our key, of what sig signs.
func keepPublishedBundle(ctx context.Context, p publish.Publisher, v BundleChecker, sig *artifact.Artifact, cause error) (artifact.Location, error) {
	r, ok := p.(publish.Reader)
	if !ok || v == nil || sig.Signs == nil {
		return artifact.Location{}, cause
	}
	body, err := r.Fetch(ctx, sig.Key())
	if err != nil {
		return artifact.Location{}, errors.Join(cause, err)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return artifact.Location{}, errors.Join(cause, err)
	}
	b, err := sign.ParseBundle(data)
	if err != nil {
		return artifact.Location{}, errors.Join(cause, err)
	}
	digest, _ := hex.DecodeString(sig.Signs.SHA256)
	if err := v.VerifyDigest(b, "sha256", digest); err != nil {
		return artifact.Location{}, fmt.Errorf("%w; and the published bundle is not a valid signature of it: %v", cause, err)
	}
	return artifact.Location{Channel: p.Name(), URL: r.URL(sig.Key())}, nil
}

// smallFile describes a small file of the release in dir (the manifest, a
// bundle), reading it for its digest. Tarballs are never read this way:
// their digest is the one the pack computed.
func smallFile(dir string, rel manifest.Release, file string) (artifact.Artifact, error) {
	p := filepath.Join(dir, file)
	info, err := os.Stat(p)
	if err != nil {
		return artifact.Artifact{}, err
	}
	sum, err := archive.FileSHA256(p)
	if err != nil {
		return artifact.Artifact{}, err
	}
	return artifact.Artifact{Release: rel, File: file, Path: p, Size: info.Size(), SHA256: sum}, nil
}

// ManifestFile is the release manifest's name in dist/ and on every channel.
const ManifestFile = "manifest.json"

// ManifestStep makes the manifest from the artifacts, writes it to
// dist/manifest.json, signs it, and publishes the signature and then the
// manifest. It runs after every artifact and signature is in place, so the
// manifest never names a missing file; it sets Release.Manifest.
type ManifestStep struct {
	Release    *Release
	Signer     *sign.Signer  // nil: unsigned
	Verifier   BundleChecker // accepts an already-published manifest signature
	Publishers []publish.Publisher
}

func (s *ManifestStep) String() string { return "write, sign and publish the manifest" }

func (s *ManifestStep) Run(ctx context.Context) error {
	m, err := s.Release.manifest()
	if err != nil {
		return err
	}
	s.Release.Manifest = m
	mpath := filepath.Join(s.Release.Dist, ManifestFile)
	if err := manifest.WriteFile(mpath, m); err != nil {
		return err
	}
	rel := s.Release.Artifacts[0].Release
	mf, err := smallFile(s.Release.Dist, rel, ManifestFile)
	if err != nil {
		return err
	}
	if s.Signer != nil {
		b, err := s.Signer.SignFile(ctx, mpath)
		if err != nil {
			return err
		}
		sig, err := smallFile(s.Release.Dist, rel, filepath.Base(b))
		if err != nil {
			return err
		}
		mf.SignedBy(sig)
	}
	for _, p := range s.Publishers {
		if err := s.publish(ctx, p, mf); err != nil {
			return err
		}
	}
	return nil
}

// publish puts the manifest on p, its signature first: whoever finds the
// manifest finds its signature too.
func (s *ManifestStep) publish(ctx context.Context, p publish.Publisher, mf artifact.Artifact) error {
	if sig := mf.Signature; sig != nil {
		_, err := p.Publish(ctx, *sig)
		if errors.Is(err, publish.ErrExists) {
			_, err = keepPublishedBundle(ctx, p, s.Verifier, sig, err)
		}
		if err != nil {
			return fmt.Errorf("publishing %s: %w", sig.File, err)
		}
	}
	if _, err := p.Publish(ctx, mf); err != nil {
		return fmt.Errorf("publishing %s: %w", ManifestFile, err)
	}
	return nil
}

// manifest is the release's manifest, made from its artifacts and checked
// against the schema its consumers hold it to.
func (r *Release) manifest() (*manifest.Manifest, error) {
	shards := make([]manifest.Shard, len(r.Artifacts))
	for i := range r.Artifacts {
		shards[i] = r.Artifacts[i].Shard()
	}
	m, err := manifest.New(shards)
	if err != nil {
		return nil, err
	}
	data, err := manifest.Marshal(m)
	if err != nil {
		return nil, err
	}
	return m, schema.ValidateManifest(data)
}

// IndexStep ties the release's artifacts together on the channels that
// index them (OCI's image index), once every artifact is published.
type IndexStep struct {
	Channels *publish.Set
	Release  *Release
}

func (s *IndexStep) String() string { return "index the artifacts" }

func (s *IndexStep) Run(ctx context.Context) error {
	if len(s.Release.Artifacts) == 0 {
		return nil
	}
	return s.Channels.PushIndex(ctx, s.Release.version())
}

// FinalizeStep makes each channel's release visible (GitHub un-drafts it),
// after the manifest is in place and before latest moves. It needs the
// manifest.
type FinalizeStep struct {
	Channels *publish.Set
	Release  *Release
}

func (s *FinalizeStep) String() string { return "publish the releases" }

func (s *FinalizeStep) Run(ctx context.Context) error {
	if s.Release.Manifest == nil {
		return errNoManifest
	}
	return s.Channels.Finalize(ctx, s.Release.Manifest.Version)
}

// LatestStep moves each channel's latest.json to this release, last of
// all, and only forward. It needs the manifest.
type LatestStep struct {
	Channels *publish.Set
	Release  *Release
}

func (s *LatestStep) String() string { return "move latest" }

func (s *LatestStep) Run(ctx context.Context) error {
	m := s.Release.Manifest
	if m == nil {
		return errNoManifest
	}
	body, err := manifest.Marshal(publish.Latest{Name: m.Name, Version: m.Version, Manifest: artifact.Key(m.Version, ManifestFile)})
	if err != nil {
		return err
	}
	_, err = s.Channels.MoveLatest(ctx, m.Version, body)
	return err
}
