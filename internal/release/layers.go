package release

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/build"
)

// LayerFilesStep checks each tarball's mount layer files against what its
// shard lists and attaches them as files of the release, so that the
// publishing steps put them beside the tarball on every file channel (a
// start script downloads only the layers that changed).
type LayerFilesStep struct {
	Release *Release
}

func (s *LayerFilesStep) String() string { return "check the layer files" }

func (s *LayerFilesStep) Run(ctx context.Context) error {
	for i := range s.Release.Artifacts {
		a := &s.Release.Artifacts[i]
		if a.Kind != artifact.Tarball || len(a.Layers) == 0 {
			continue
		}
		files, err := layerFiles(build.LayerDir(filepath.Dir(a.Path), a.Target.ID(), "mount"), a.Layers, true)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID(), err)
		}
		a.LayerFiles = make([]artifact.Artifact, len(files))
		for j, f := range files {
			a.LayerFiles[j] = a.LayerFile(a.Layers[j], f.Path)
		}
	}
	return nil
}

// files are the release's tarballs and their layer files.
func (r *Release) files() []artifact.Artifact {
	var out []artifact.Artifact
	for _, a := range r.Artifacts {
		out = append(out, a)
		out = append(out, a.LayerFiles...)
	}
	return out
}
