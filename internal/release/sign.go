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

// SignStep signs every tarball of the release and writes SHA256SUMS.
type SignStep struct {
	Signer  *sign.Signer
	Release *Release
	// OnlyUnsigned keeps the bundles of shards signed before (by
	// `fwrelease sign`), as publishing does.
	OnlyUnsigned bool
}

func (s *SignStep) String() string { return "sign artifacts" }

func (s *SignStep) Run(ctx context.Context) error {
	for i := range s.Release.Shards {
		a := &s.Release.Shards[i]
		dir := s.Release.dir(a.Target.ID)
		if s.OnlyUnsigned && a.Signature != nil {
			if _, err := os.Stat(filepath.Join(dir, a.Signature.Bundle)); err == nil {
				continue
			}
		}
		b, err := s.Signer.SignFile(ctx, filepath.Join(dir, a.File))
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target.ID, err)
		}
		a.Signature = &manifest.Signature{Bundle: filepath.Base(b), URLs: []string{}}
		// The shard on disk records the signature too, so a later publish
		// or merge from this dist knows it.
		if err := manifest.WriteFile(filepath.Join(dir, "shards", a.Target.ID+".json"), a); err != nil {
			return err
		}
	}
	return WriteChecksums(s.Release, s.Release.Shards)
}

// ChecksumsFile lists every tarball's sha256 in `sha256sum -c` format.
const ChecksumsFile = "SHA256SUMS"

// WriteChecksums writes dist/SHA256SUMS from the shards' digests, after
// checking each against the file on disk.
func WriteChecksums(r *Release, shards []manifest.Shard) error {
	var lines []string
	for _, a := range shards {
		sum, _, err := digestOf(filepath.Join(r.dir(a.Target.ID), a.File))
		if err != nil {
			return err
		}
		if sum != a.SHA256 {
			return fmt.Errorf("%s has sha256 %s but its shard says %s; rebuild it", a.File, sum, a.SHA256)
		}
		lines = append(lines, fmt.Sprintf("%s  %s\n", a.SHA256, a.File))
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(r.Dist, ChecksumsFile), []byte(strings.Join(lines, "")), 0o644)
}
