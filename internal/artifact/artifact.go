// Package artifact is the one description of a built tarball: build
// produces it, and signing, publishing and the release steps consume it,
// rather than each spelling the target, file, key and tag its own way.
package artifact

import (
	"path"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// Artifact is one target's tarball on disk, or any file of a release (a
// signature, the manifest) with Target left zero.
type Artifact struct {
	Target  target.Target
	Version string // the release's, "1.2.0"
	File    string // "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz"
	Path    string // on disk
	Format  string // tarballs: "tar+gzip" or "tar+zstd"
	Size    int64
	SHA256  string
}

// Key is the file's path below a channel's root: "v1.2.0/{file}".
func (a Artifact) Key() string { return Key(a.Version, a.File) }

// Tag is the release's tag: "v1.2.0".
func (a Artifact) Tag() string { return Tag(a.Version) }

// Key is a file's path below a channel's root: "v{version}/{file}".
func Key(version, file string) string { return path.Join(Tag(version), file) }

// Tag is a release's tag, "v{version}": the git tag, the GitHub release and
// the prefix of every key and OCI tag.
func Tag(version string) string { return "v" + version }

// FromShard describes the tarball of a shard read back from dir (what
// `fwrelease build` left there), as build described it.
func FromShard(dir string, s manifest.Shard) Artifact {
	t := s.Target
	return Artifact{
		Target:  target.Target{Python: t.Python, Accel: t.Accel, OS: t.OS, Arch: t.Arch},
		Version: s.Release.Version,
		File:    s.File,
		Path:    filepath.Join(dir, s.File),
		Format:  s.Format,
		Size:    s.Size,
		SHA256:  s.SHA256,
	}
}

// Entry is the artifact's manifest entry, before it is published anywhere.
func (a Artifact) Entry() manifest.Artifact {
	t := a.Target
	return manifest.Artifact{
		Target:          manifest.Target{ID: t.ID(), Python: t.Python, Accel: t.Accel, OS: t.OS, Arch: t.Arch},
		File:            a.File,
		Format:          a.Format,
		StripComponents: 1,
		Size:            a.Size,
		SHA256:          a.SHA256,
		URLs:            []string{},
	}
}
