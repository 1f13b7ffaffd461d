package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/sign"
)

// SignStep signs every tarball of the release, by the digest the pack
// computed (no tarball is read again), and writes SHA256SUMS.
type SignStep struct {
	Signer  *sign.Signer
	Release *Release
	// OnlyUnsigned keeps the bundles of tarballs signed before (by
	// `fwrelease sign`), as publishing does.
	OnlyUnsigned bool
}

func (s *SignStep) String() string { return "sign artifacts" }

func (s *SignStep) Run(ctx context.Context) error {
	for i := range s.Release.Artifacts {
		a := &s.Release.Artifacts[i]
		if s.OnlyUnsigned && a.Signature != nil {
			continue
		}
		b, err := s.Signer.SignArtifact(ctx, a.Path, a.SHA256)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID(), err)
		}
		sig, err := smallFile(filepath.Dir(b), a.Release, filepath.Base(b))
		if err != nil {
			return err
		}
		a.SignedBy(sig)
		// The shard on disk records the signature too, so a later publish
		// or merge from this dist knows it.
		if err := manifest.WriteFile(shardPath(a), a.Shard()); err != nil {
			return err
		}
	}
	return s.writeChecksums()
}

// ChecksumsFile lists every tarball's sha256 in `sha256sum -c` format.
const ChecksumsFile = "SHA256SUMS"

// writeChecksums writes dist/SHA256SUMS from the artifacts' digests.
func (s *SignStep) writeChecksums() error {
	var lines []string
	for _, a := range s.Release.Artifacts {
		lines = append(lines, fmt.Sprintf("%s  %s\n", a.SHA256, a.File))
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(s.Release.Dist, ChecksumsFile), []byte(strings.Join(lines, "")), 0o644)
}
