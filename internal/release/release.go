// Package release runs a release as an ordered list of small steps: build,
// publish the artifacts, write the manifest. Signing and the remote channels
// slot in between without the steps knowing about each other.
package release

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/runpod-workers/fwrelease/internal/build"
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
	Dist     string
	Shards   []manifest.Shard
	Manifest *manifest.Manifest
}

// BuildStep builds every target into the release's dist.
type BuildStep struct {
	Builder *build.Builder
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

// PublishStep puts every tarball (or, with Signatures, every tarball's
// bundle) on one channel and records the URLs in the shards.
type PublishStep struct {
	Publisher  publish.Publisher
	Release    *Release
	Signatures bool
}

func (s *PublishStep) String() string {
	if s.Signatures {
		return "publish signatures to " + s.Publisher.Name()
	}
	return "publish artifacts to " + s.Publisher.Name()
}

func (s *PublishStep) Run(ctx context.Context) error {
	for i := range s.Release.Shards {
		a := &s.Release.Shards[i]
		file, urls := a.File, &a.URLs
		if s.Signatures {
			if a.Signature == nil {
				continue
			}
			file, urls = a.Signature.Bundle, &a.Signature.URLs
		}
		obj, err := objectFor(s.Release.Dist, a.Release.Version, file)
		if err != nil {
			return err
		}
		if !s.Signatures && (obj.SHA256 != a.SHA256 || obj.Size != a.Size) {
			return fmt.Errorf("%s is %d bytes sha256 %s, but its shard says %d bytes sha256 %s; rebuild it", obj.Path, obj.Size, obj.SHA256, a.Size, a.SHA256)
		}
		u, err := s.Publisher.Publish(ctx, obj)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID, err)
		}
		*urls = append(*urls, u)
	}
	return nil
}

// objectFor describes dist/file as the object v{version}/file.
func objectFor(dist, version, file string) (publish.Object, error) {
	p := filepath.Join(dist, file)
	info, err := os.Stat(p)
	if err != nil {
		return publish.Object{}, err
	}
	sum, err := fileSHA256(p)
	if err != nil {
		return publish.Object{}, err
	}
	return publish.Object{Key: path.Join("v"+version, file), Path: p, Size: info.Size(), SHA256: sum}, nil
}

// ManifestFile is the release manifest's name in dist/ and on every channel.
const ManifestFile = "manifest.json"

// ManifestStep merges the shards into dist/manifest.json, signs it, and
// publishes both. It runs after every artifact and signature is in place,
// so the manifest never names a missing file.
type ManifestStep struct {
	Release    *Release
	Signer     *sign.Signer // nil: unsigned
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
	files := []string{ManifestFile}
	if s.Signer != nil {
		if _, err := s.Signer.SignFile(ctx, mpath); err != nil {
			return err
		}
		files = append(files, ManifestFile+sign.BundleSuffix)
	}
	for _, p := range s.Publishers {
		// The signature first: a reader who finds the manifest finds its
		// signature too.
		for i := len(files) - 1; i >= 0; i-- {
			obj, err := objectFor(s.Release.Dist, m.Version, files[i])
			if err != nil {
				return err
			}
			if _, err := p.Publish(ctx, obj); err != nil {
				return fmt.Errorf("publishing %s: %w", files[i], err)
			}
		}
	}
	return nil
}

// checkSchema refuses to write a manifest that its consumers would reject.
func checkSchema(m *manifest.Manifest) error {
	data, err := manifest.Marshal(m)
	if err != nil {
		return err
	}
	return schema.ValidateManifest(data)
}
