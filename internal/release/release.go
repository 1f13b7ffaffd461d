// Package release runs a release as an ordered list of small steps: build,
// publish the artifacts, write the manifest. Signing and the remote channels
// slot in between without the steps knowing about each other.
package release

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"time"

	"github.com/runpod-workers/fwrelease/internal/build"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/target"
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

// PublishStep puts every tarball on one channel and records its URL.
type PublishStep struct {
	Publisher publish.Publisher
	Release   *Release
}

func (s *PublishStep) String() string { return "publish artifacts to " + s.Publisher.Name() }

func (s *PublishStep) Run(ctx context.Context) error {
	for i := range s.Release.Shards {
		a := &s.Release.Shards[i]
		obj := publish.Object{
			Key:    path.Join("v"+a.Release.Version, a.File),
			Path:   filepath.Join(s.Release.Dist, a.File),
			Size:   a.Size,
			SHA256: a.SHA256,
		}
		u, err := s.Publisher.Publish(ctx, obj)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID, err)
		}
		a.URLs = append(a.URLs, u)
	}
	return nil
}

// ManifestStep merges the shards into dist/manifest.json. It runs after
// every artifact is in place, so the manifest never names a missing file.
type ManifestStep struct {
	Release *Release
}

func (s *ManifestStep) String() string { return "write manifest" }

func (s *ManifestStep) Run(ctx context.Context) error {
	m, err := manifest.New(s.Release.Shards)
	if err != nil {
		return err
	}
	s.Release.Manifest = m
	return manifest.WriteFile(filepath.Join(s.Release.Dist, "manifest.json"), m)
}
