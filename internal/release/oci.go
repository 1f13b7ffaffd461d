package release

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/publish"
)

// OCIStep pushes every target as an OCI artifact with its signature as a
// referrer, then the index over all of them, and records each artifact's
// digest reference in the manifest's `oci` field.
type OCIStep struct {
	OCI     *publish.OCI
	Release *Release
	Source  string // "https://github.com/owner/repo", for the source annotation
}

func (s *OCIStep) String() string { return "push OCI artifacts to " + s.OCI.Repository }

func (s *OCIStep) Run(ctx context.Context) error {
	var version string
	for i := range s.Release.Shards {
		a := &s.Release.Shards[i]
		dir := s.Release.dir(a.Target.ID)
		art := publish.OCIArtifact{
			TargetID: a.Target.ID, Python: a.Target.Python, Accel: a.Target.Accel, OS: a.Target.OS, Arch: a.Target.Arch,
			File: a.File, Path: filepath.Join(dir, a.File), SHA256: a.SHA256, Size: a.Size, Format: a.Format,
			Version: a.Release.Version, Source: s.Source, Revision: a.Release.Source.Commit, Created: a.Release.Created,
		}
		if a.Signature != nil {
			art.Bundle = filepath.Join(dir, a.Signature.Bundle)
		}
		ref, err := s.OCI.Push(ctx, art)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID, err)
		}
		a.OCI = ref
		version = a.Release.Version
	}
	return s.OCI.PushIndex(ctx, version)
}
