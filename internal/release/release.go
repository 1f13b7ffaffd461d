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
	"slices"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
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
		log.Info("step", "name", s.String())
		if err := s.Run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		log.Debug("step done", "name", s.String(), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Release is the state the steps hand on: what was built, where it went.
type Release struct {
	Dist     string            // where manifest.json and new files are written
	Dirs     map[string]string // target ID → directory holding its files, when not Dist
	Shards   []manifest.Shard
	Manifest *manifest.Manifest
}

// dir is where a target's tarball and bundle are.
func (r *Release) dir(id string) string {
	if d, ok := r.Dirs[id]; ok {
		return d
	}
	return r.Dist
}

// errNoManifest is what a step that needs the manifest says when the
// manifest step has not run.
var errNoManifest = errors.New("no manifest yet: the manifest step must run before this one")

// artifact describes shard a's tarball as build did, checked against the
// file on disk.
func (r *Release) artifact(a *manifest.Shard) (publish.Object, error) {
	want := artifact.FromShard(r.dir(a.Target.ID), *a)
	obj, err := objectFor(r.dir(a.Target.ID), a.Release.Version, a.File)
	if err != nil {
		return obj, err
	}
	if obj.SHA256 != want.SHA256 || obj.Size != want.Size {
		return obj, fmt.Errorf("%s is %d bytes sha256 %s, but its shard says %d bytes sha256 %s; rebuild it", obj.Path, obj.Size, obj.SHA256, want.Size, want.SHA256)
	}
	obj.Artifact, obj.Kind = want, publish.KindArtifact
	obj.Revision, obj.Created = a.Release.Source.Commit, a.Release.Created
	return obj, nil
}

// signature describes shard a's Sigstore bundle.
func (r *Release) signature(a *manifest.Shard) (publish.Object, error) {
	if a.Signature == nil {
		return publish.Object{}, fmt.Errorf("%s is not signed; run fwrelease sign first", a.File)
	}
	obj, err := objectFor(r.dir(a.Target.ID), a.Release.Version, a.Signature.Bundle)
	if err != nil {
		return obj, err
	}
	signed := artifact.FromShard(r.dir(a.Target.ID), *a)
	obj.Kind, obj.Signs, obj.Target = publish.KindSignature, signed.Key(), signed.Target
	return obj, nil
}

// BuildStep builds every target into the release's dist.
type BuildStep struct {
	Builder Builder
	Targets []target.Target
	Release *Release
}

func (s *BuildStep) String() string { return "build" }

func (s *BuildStep) Run(ctx context.Context) error {
	results, err := s.Builder.Build(ctx, s.Targets)
	if err != nil {
		return err
	}
	for _, r := range results {
		s.Release.Shards = append(s.Release.Shards, r.Shard)
	}
	return nil
}

// PreflightStep lets every channel refuse what it cannot take (GitHub's
// 2 GiB limit) before anything is uploaded anywhere. It needs the shards.
type PreflightStep struct {
	Channels publish.Publisher // every channel, as publish.Multi
	Release  *Release
}

func (s *PreflightStep) String() string { return "check the artifacts fit every channel" }

func (s *PreflightStep) Run(ctx context.Context) error {
	pf, ok := s.Channels.(publish.Preflighter)
	if !ok {
		return nil
	}
	var objs []publish.Object
	for i := range s.Release.Shards {
		obj, err := s.Release.artifact(&s.Release.Shards[i])
		if err != nil {
			return err
		}
		objs = append(objs, obj)
	}
	return pf.Preflight(objs)
}

// PublishStep puts every tarball (or, with Signatures, every tarball's
// bundle) on one channel and records the URLs in the shards.
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
	_, references := s.Publisher.(publish.Referencer)
	for i := range s.Release.Shards {
		a := &s.Release.Shards[i]
		obj, err := s.Release.artifact(a)
		if s.Signatures && err == nil {
			obj, err = s.Release.signature(a)
		}
		if err != nil {
			return err
		}
		urls := &a.URLs
		if s.Signatures {
			urls = &a.Signature.URLs
		}
		u, err := s.Publisher.Publish(ctx, obj)
		if s.Signatures && errors.Is(err, publish.ErrExists) {
			u, err = keepPublishedBundle(ctx, s.Publisher, s.Verifier, obj.Key(), a.SHA256, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID, err)
		}
		switch {
		case u == "":
		case references:
			if !s.Signatures {
				a.OCI = u
			}
		default:
			if !slices.Contains(*urls, u) {
				*urls = append(*urls, u)
			}
			if !s.Signatures {
				if a.Channels == nil {
					a.Channels = map[string]string{}
				}
				a.Channels[s.Publisher.Name()] = u
			}
		}
	}
	return nil
}

// keepPublishedBundle accepts the bundle already published under key if it
// is a valid signature of the artifact with digest sha by our key.
func keepPublishedBundle(ctx context.Context, p publish.Publisher, v BundleChecker, key, sha string, cause error) (string, error) {
	r, ok := p.(publish.Reader)
	if !ok || v == nil {
		return "", cause
	}
	body, err := r.Fetch(ctx, key)
	if err != nil {
		return "", errors.Join(cause, err)
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		return "", errors.Join(cause, err)
	}
	b, err := sign.ParseBundle(data)
	if err != nil {
		return "", errors.Join(cause, err)
	}
	digest, _ := hex.DecodeString(sha)
	if err := v.VerifyDigest(b, "sha256", digest); err != nil {
		return "", fmt.Errorf("%w; and the published bundle is not a valid signature of it: %v", cause, err)
	}
	return r.URL(key), nil
}

// objectFor describes dist/file as the object v{version}/file.
func objectFor(dist, version, file string) (publish.Object, error) {
	p := filepath.Join(dist, file)
	sum, size, err := digestOf(p)
	if err != nil {
		return publish.Object{}, err
	}
	return publish.Object{Artifact: artifact.Artifact{Version: version, File: file, Path: p, Size: size, SHA256: sum}}, nil
}

// digests remembers each file's sha256 by path, size and mtime: a release
// with three channels would otherwise read a multi-GiB tarball once per
// channel just to name it.
var digests sync.Map // fileID → string

type fileID struct {
	path  string
	size  int64
	mtime time.Time
}

func digestOf(p string) (string, int64, error) {
	info, err := os.Stat(p)
	if err != nil {
		return "", 0, err
	}
	id := fileID{p, info.Size(), info.ModTime()}
	if sum, ok := digests.Load(id); ok {
		return sum.(string), info.Size(), nil
	}
	sum, err := archive.FileSHA256(p)
	if err != nil {
		return "", 0, err
	}
	digests.Store(id, sum)
	return sum, info.Size(), nil
}

// ManifestFile is the release manifest's name in dist/ and on every channel.
const ManifestFile = "manifest.json"

// ManifestStep merges the shards into dist/manifest.json, signs it, and
// publishes the signature and then the manifest. It runs after every
// artifact and signature is in place, so the manifest never names a
// missing file; it needs the shards, and sets Release.Manifest.
type ManifestStep struct {
	Release    *Release
	Signer     *sign.Signer  // nil: unsigned
	Verifier   BundleChecker // accepts an already-published manifest signature
	Publishers []publish.Publisher
}

func (s *ManifestStep) String() string { return "write, sign and publish the manifest" }

func (s *ManifestStep) Run(ctx context.Context) error {
	m, err := manifest.New(s.Release.Shards)
	if err != nil {
		return err
	}
	s.Release.Manifest = m
	if err := checkSchema(m); err != nil {
		return err
	}
	mpath := filepath.Join(s.Release.Dist, ManifestFile)
	if err := manifest.WriteFile(mpath, m); err != nil {
		return err
	}
	bundleFile := ManifestFile + sign.BundleSuffix
	if s.Signer != nil {
		if _, err := s.Signer.SignFile(ctx, mpath); err != nil {
			return err
		}
	}
	mobj, err := objectFor(s.Release.Dist, m.Version, ManifestFile)
	if err != nil {
		return err
	}
	bobj := publish.Object{}
	if s.Signer != nil {
		if bobj, err = objectFor(s.Release.Dist, m.Version, bundleFile); err != nil {
			return err
		}
		bobj.Kind, bobj.Signs = publish.KindSignature, mobj.Key()
	}
	for _, p := range s.Publishers {
		// The signature first: whoever finds the manifest finds its
		// signature too.
		if s.Signer != nil {
			_, err := p.Publish(ctx, bobj)
			if errors.Is(err, publish.ErrExists) {
				_, err = keepPublishedBundle(ctx, p, s.Verifier, bobj.Key(), mobj.SHA256, err)
			}
			if err != nil {
				return fmt.Errorf("publishing %s: %w", bundleFile, err)
			}
		}
		if _, err := p.Publish(ctx, mobj); err != nil {
			return fmt.Errorf("publishing %s: %w", ManifestFile, err)
		}
	}
	return nil
}

// IndexStep ties the release's artifacts together on the channels that
// index them (OCI's image index), once every artifact is published.
type IndexStep struct {
	Channels publish.Publisher // every channel, as publish.Multi
	Release  *Release
}

func (s *IndexStep) String() string { return "index the artifacts" }

func (s *IndexStep) Run(ctx context.Context) error {
	ix, ok := s.Channels.(publish.Indexer)
	if !ok || len(s.Release.Shards) == 0 {
		return nil
	}
	return ix.PushIndex(ctx, s.Release.Shards[0].Release.Version)
}

// FinalizeStep makes each channel's release visible (GitHub un-drafts it),
// after the manifest is in place and before latest moves. It needs the
// manifest.
type FinalizeStep struct {
	Channels publish.Publisher // every channel, as publish.Multi
	Release  *Release
}

func (s *FinalizeStep) String() string { return "publish the releases" }

func (s *FinalizeStep) Run(ctx context.Context) error {
	if s.Release.Manifest == nil {
		return errNoManifest
	}
	if f, ok := s.Channels.(publish.Finalizer); ok {
		return f.Finalize(ctx, s.Release.Manifest.Version)
	}
	return nil
}

// LatestStep moves each channel's latest.json to this release, last of
// all, and only forward. It needs the manifest.
type LatestStep struct {
	Channels publish.Publisher // every channel, as publish.Multi
	Release  *Release
}

func (s *LatestStep) String() string { return "move latest" }

func (s *LatestStep) Run(ctx context.Context) error {
	m := s.Release.Manifest
	if m == nil {
		return errNoManifest
	}
	lm, ok := s.Channels.(publish.LatestMover)
	if !ok {
		return nil
	}
	body, err := manifest.Marshal(publish.Latest{Name: m.Name, Version: m.Version, Manifest: artifact.Key(m.Version, ManifestFile)})
	if err != nil {
		return err
	}
	_, err = lm.MoveLatest(ctx, m.Version, body)
	return err
}

// checkSchema refuses to write a manifest that its consumers would reject.
func checkSchema(m *manifest.Manifest) error {
	data, err := manifest.Marshal(m)
	if err != nil {
		return err
	}
	return schema.ValidateManifest(data)
}
