package artifact

import (
	"path/filepath"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// A shard read back describes the artifact build described, and the
// manifest entry made from it is the one build wrote.
func TestShardRoundTrip(t *testing.T) {
	a := Artifact{
		Target:  target.Target{Python: "3.12", Accel: "cu128", OS: "linux", Arch: "aarch64"},
		Version: "1.2.0", File: "flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst",
		Path:   filepath.Join("dist", "flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst"),
		Format: "tar+zstd", Size: 42, SHA256: "ab",
	}
	if a.Key() != "v1.2.0/flash-worker-v1.2.0-py3.12-cu128-linux-aarch64.tar.zst" || a.Tag() != "v1.2.0" {
		t.Errorf("key %s, tag %s", a.Key(), a.Tag())
	}
	s := manifest.Shard{Artifact: a.Entry(), Release: manifest.Release{Version: "1.2.0"}}
	if s.Target.ID != "py3.12-cu128-linux-aarch64" || s.StripComponents != 1 || s.URLs == nil {
		t.Errorf("entry %+v", s.Artifact)
	}
	if back := FromShard("dist", s); back != a {
		t.Errorf("FromShard = %+v, want %+v", back, a)
	}
}
