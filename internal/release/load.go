package release

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/manifest"
)

// Load reads what `fwrelease build` (and perhaps `sign`) left in each
// directory of from (none: dist) into a release written to dist. Each
// tarball is read once here, and refused unless it is what its shard says;
// from then on its digest is trusted. Shards of different releases, or one
// target built twice differently, are refused before anything is uploaded.
func Load(dist string, from []string) (*Release, error) {
	if len(from) == 0 {
		from = []string{dist}
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	var shards []manifest.Shard
	r := &Release{Dist: dist}
	seen := map[string]bool{}
	for _, dir := range from {
		read, err := manifest.ReadShards(dir)
		if err != nil {
			return nil, err
		}
		shards = append(shards, read...)
		for _, s := range read {
			if seen[s.Target.ID] {
				continue // the same tarball twice: manifest.New below refuses two different ones
			}
			seen[s.Target.ID] = true
			a, err := loadArtifact(dir, s)
			if err != nil {
				return nil, err
			}
			r.Artifacts = append(r.Artifacts, a)
		}
	}
	if _, err := manifest.New(shards); err != nil {
		return nil, fmt.Errorf("merging the shards of %v: %w", from, err)
	}
	return r, nil
}

// loadArtifact describes shard s's tarball in dir after checking the file
// against the shard, and its bundle if the bundle is there (a shard whose
// bundle is gone is signed again).
func loadArtifact(dir string, s manifest.Shard) (artifact.Artifact, error) {
	a := artifact.FromShard(dir, s)
	info, err := os.Stat(a.Path)
	if err != nil {
		return a, err
	}
	sum, err := archive.FileSHA256(a.Path)
	if err != nil {
		return a, err
	}
	if sum != a.SHA256 || info.Size() != a.Size {
		return a, fmt.Errorf("%s is %d bytes sha256 %s, but its shard says %d bytes sha256 %s; rebuild it", a.Path, info.Size(), sum, a.Size, a.SHA256)
	}
	if a.Signature == nil {
		return a, nil
	}
	sig, err := smallFile(dir, a.Release, a.Signature.File)
	if os.IsNotExist(err) {
		a.Signature = nil
		return a, nil
	}
	if err != nil {
		return a, err
	}
	sig.Locations = a.Signature.Locations
	a.SignedBy(sig)
	return a, nil
}

// shardPath is where a tarball's shard lives: beside it, in shards/.
func shardPath(a *artifact.Artifact) string {
	return filepath.Join(filepath.Dir(a.Path), "shards", a.Target.ID()+".json")
}
