// Package build turns the worker's source and its dependencies into one
// deterministic tarball per target: stage → install → slim → stamp → pack
// (docs/targets-and-tarball.md).
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/runpod-workers/fwrelease/internal/archive"
	"github.com/runpod-workers/fwrelease/internal/artifact"
	"github.com/runpod-workers/fwrelease/internal/atomicfile"
	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/event"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/source"
	"github.com/runpod-workers/fwrelease/internal/target"
	"github.com/runpod-workers/fwrelease/internal/uvlock"
)

// Builder builds tarballs into Dist.
type Builder struct {
	Config *config.Config
	Source source.Info
	Dist   string
	NoSlim bool
	Log    *slog.Logger // nil: silent
	// AllowInsecure lets extra files come over plain HTTP from loopback.
	AllowInsecure bool
	install       installer
	lock          *uvlock.Lock
	extras        map[string]string // sha256 → the checked bytes in the cache
}

// Release is the release every shard of this build belongs to.
func (b *Builder) Release() manifest.Release {
	return manifest.Release{
		Name:    b.Config.Name,
		Version: b.Config.Version.Literal,
		Source: manifest.Source{
			Repository: b.Source.Repository,
			Commit:     b.Source.Commit,
			Tag:        b.Source.Tag,
		},
		Created: b.Source.Epoch.Format(time.RFC3339),
	}
}

// Build builds targets concurrently, at most one per core, and returns
// their results in the order given. The first failure cancels the rest.
func (b *Builder) Build(ctx context.Context, targets []target.Target) ([]artifact.Artifact, error) {
	if b.Log == nil {
		b.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.Config.Deps.Lock != "" {
		lock, err := readFreshLock(b.Config.Deps.Lock)
		if err != nil {
			return nil, fmt.Errorf("deps.lock: %w", err)
		}
		b.lock = lock
	} else if b.Config.Deps.Requirements != "" || len(b.Config.Deps.Accel) > 0 {
		inst, err := chooseInstaller()
		if err != nil {
			return nil, err
		}
		b.install = inst
	}
	for _, dir := range []string{b.Dist, filepath.Join(b.Dist, "shards"), filepath.Join(b.Dist, ".work")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	extras, err := b.fetchExtras(ctx, targets)
	if err != nil {
		return nil, err
	}
	b.extras = extras
	results := make([]artifact.Artifact, len(targets))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, t := range targets {
		g.Go(func() error {
			r, err := b.buildTarget(ctx, t)
			if err != nil {
				return fmt.Errorf("building %s: %w", t.ID(), err)
			}
			results[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(b.Dist, ".work"))
	return results, nil
}

func (b *Builder) buildTarget(ctx context.Context, t target.Target) (artifact.Artifact, error) {
	start := time.Now()
	// The terminal view starts the target's progress bar on this.
	b.Log.Debug("building", event.Attr(event.TargetStarted{Target: t.ID()}))
	work := filepath.Join(b.Dist, ".work", t.ID())
	if err := os.RemoveAll(work); err != nil {
		return artifact.Artifact{}, err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, b.Config.Name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return artifact.Artifact{}, err
	}
	if err := stage(b.Config.Dir, root, b.Config.Files); err != nil {
		return artifact.Artifact{}, fmt.Errorf("staging files: %w", err)
	}
	if err := b.addExtras(ctx, t, root, b.extras); err != nil {
		return artifact.Artifact{}, fmt.Errorf("adding extra files: %w", err)
	}
	sitePackages := filepath.Join(root, "site-packages")
	if b.Config.Layout == "bundled" {
		if err := b.addInterpreter(ctx, t, root); err != nil {
			return artifact.Artifact{}, fmt.Errorf("adding the interpreter: %w", err)
		}
		sitePackages = filepath.Join(root, venvSitePackages(t.Python))
	}
	slimmed, err := b.addDeps(ctx, t, root, sitePackages)
	if err != nil {
		return artifact.Artifact{}, err
	}
	if b.Config.Layout == "bundled" {
		if err := moveScriptsToVenv(root, sitePackages); err != nil {
			return artifact.Artifact{}, fmt.Errorf("moving console scripts to venv/bin: %w", err)
		}
	}
	if err := b.checkSharedLibs(t, root); err != nil {
		return artifact.Artifact{}, err
	}
	meta, err := b.stamp(t, root, sitePackages)
	if err != nil {
		return artifact.Artifact{}, fmt.Errorf("stamping: %w", err)
	}
	entries, err := archive.Collect(root)
	if err != nil {
		return artifact.Artifact{}, err
	}
	entries, fill, err := withMetadata(entries, meta)
	if err != nil {
		return artifact.Artifact{}, err
	}
	file := t.FileStem(b.Config.Name, b.Config.Version.Literal) + b.Config.Extension()
	path := filepath.Join(b.Dist, file)
	// Identical files are linked as they are packed, each read once;
	// packing turns entries into links in place, the layers want them as
	// they were.
	layerEntries := slices.Clone(entries)
	var metadata []byte
	digest, err := b.pack(ctx, path, entries, func(sums []archive.FileSum) ([]byte, error) {
		data, err := fill(sums)
		metadata = data
		return data, err
	})
	if err != nil {
		return artifact.Artifact{}, err
	}
	if b.slimming() {
		slimmed = append(slimmed, SlimResult{Rule: "identical files stored once", Files: digest.Linked.Files, Bytes: digest.Linked.Bytes})
	}
	b.logSlim(t, slimmed)
	if max := int64(b.Config.Slim.MaxSize); max > 0 && digest.Size > max {
		os.Remove(path)
		return artifact.Artifact{}, fmt.Errorf("%s is %d bytes, over slim.max_size of %d bytes; what it holds:\n%s\nslim it further (slim.exclude_packages, fewer requirements) or raise slim.max_size",
			file, digest.Size, max, SizeReport(entries, 15))
	}
	if err := tarDigest(path, &digest); err != nil {
		return artifact.Artifact{}, err
	}
	layers, err := b.writeLayers(ctx, t, root, layerEntries, metadata)
	if err != nil {
		return artifact.Artifact{}, err
	}
	a := artifact.Artifact{
		Kind: artifact.Tarball, Target: t, Release: b.Release(), File: file, Path: path,
		Format: archive.Format(b.Config.Format).MediaFormat(), Size: digest.Size, SHA256: digest.SHA256,
		DiffID: "sha256:" + digest.TarSHA256, TarSize: digest.TarSize,
		Layers: layers,
	}
	if err := manifest.WriteFile(filepath.Join(b.Dist, "shards", t.ID()+".json"), a.Shard()); err != nil {
		return artifact.Artifact{}, err
	}
	b.Log.Info("built", event.Attr(event.TargetBuilt{Target: t.ID(), File: path, Bytes: digest.Size, SHA256: digest.SHA256, Took: time.Since(start).Round(time.Millisecond)}))
	b.Log.Info("largest packages", "target", t.ID(), "uncompressed", LargestPackages(entries, 5))
	return a, nil
}

// addDeps installs (or copies, with deps.dir) the target's dependencies into
// dir, under the tree root, then normalises and slims them.
func (b *Builder) addDeps(ctx context.Context, t target.Target, root, dir string) ([]SlimResult, error) {
	d := b.Config.Deps
	budget := &unpackBudget{limit: b.maxUnpackedSize()}
	switch {
	case d.Dir != "":
		real, err := filepath.EvalSymlinks(d.Dir)
		if err != nil {
			return nil, fmt.Errorf("deps.dir: %w", err)
		}
		// Hard links, not copies: creating 2,000 files costs more than
		// compressing them. Nothing later writes through a link (see
		// replaceFile).
		c := copier{realSrc: real, root: dir, written: map[string]string{}, link: true}
		if err := c.copyTree(d.Dir, dir); err != nil {
			return nil, fmt.Errorf("copying deps.dir: %w", err)
		}
	case b.lock != nil:
		if err := b.installLocked(ctx, t, root, dir, budget); err != nil {
			return nil, fmt.Errorf("installing dependencies for %s from %s: %w", t.ID(), filepath.Base(d.Lock), err)
		}
	case b.install != nil:
		b.Log.Debug("installing dependencies", "target", t.ID(), "installer", b.install.Name())
		if err := installDeps(ctx, b.install, t, dir, d); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	if b.lock == nil {
		// pip and deps.dir wrote unbounded; the tree is measured after.
		_, n, err := treeSize(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("measuring %s: %w", dir, err)
		}
		if err := budget.take(uint64(n)); err != nil {
			return nil, fmt.Errorf("the dependencies of %s: %w", t.ID(), err)
		}
	}
	if err := normaliseScripts(dir); err != nil {
		return nil, fmt.Errorf("normalising scripts in %s: %w", dir, err)
	}
	if !b.slimming() {
		return nil, nil
	}
	s := &slimmer{dir: dir, keep: b.Config.Slim.Keep, exclude: b.Config.Slim.ExcludePackages, rules: b.Config.Slim.Rules}
	results, err := s.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("slimming %s: %w", t.ID(), err)
	}
	return results, nil
}

// defaultUnpackedFactor sets slim.max_unpacked_size, when unset, to this
// many times slim.max_size (a tarball compresses its tree about 3 times,
// and slimming removes more), or defaultMaxUnpacked without a max_size.
const (
	defaultUnpackedFactor = 8
	defaultMaxUnpacked    = 8 << 30
)

// maxUnpackedSize bounds the dependencies' unpacked bytes per target.
func (b *Builder) maxUnpackedSize() int64 {
	s := b.Config.Slim
	switch {
	case s.MaxUnpackedSize > 0:
		return int64(s.MaxUnpackedSize)
	case s.MaxSize > 0:
		return defaultUnpackedFactor * int64(s.MaxSize)
	}
	return defaultMaxUnpacked
}

func (b *Builder) slimming() bool { return !b.NoSlim && b.Config.Slim.On() }

func (b *Builder) logSlim(t target.Target, results []SlimResult) {
	for _, r := range results {
		if r.Files == 0 && r.Note == "" {
			continue
		}
		if r.Note != "" {
			b.Log.Warn("slim", "target", t.ID(), "rule", r.Rule, "note", r.Note)
			continue
		}
		b.Log.Info("slimmed", "target", t.ID(), "rule", r.Rule, "files", r.Files, "bytes", r.Bytes)
	}
}

// stamp writes .version and .python-version, checks that the files gave an
// executable bootstrap.sh, and returns MANIFEST.json's fields but the tree
// digest, which packing fills in (withMetadata).
func (b *Builder) stamp(t target.Target, root, sitePackages string) (Metadata, error) {
	boot := filepath.Join(root, "bootstrap.sh")
	info, err := os.Stat(boot)
	if err != nil {
		return Metadata{}, errors.New("the files put no bootstrap.sh at the top of the tarball; add {src: scripts/bootstrap.sh, dst: bootstrap.sh, mode: \"0755\"} to files")
	}
	if info.Mode()&0o111 == 0 {
		if err := os.Chmod(boot, 0o755); err != nil {
			return Metadata{}, err
		}
	}
	version := b.Config.Version.Literal
	if err := os.WriteFile(filepath.Join(root, ".version"), []byte(version+"\n"), 0o644); err != nil {
		return Metadata{}, err
	}
	// bootstrap.sh reads this to refuse an interpreter of another version.
	if err := os.WriteFile(filepath.Join(root, ".python-version"), []byte(t.Python+"\n"), 0o644); err != nil {
		return Metadata{}, err
	}
	pkgs, err := installedPackages(sitePackages)
	if err != nil {
		return Metadata{}, err
	}
	// The staged tree's own MANIFEST.json, if any, is replaced.
	if err := os.Remove(filepath.Join(root, MetadataFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, err
	}
	return Metadata{
		Name:            b.Config.Name,
		Version:         version,
		Target:          t.ID(),
		PythonVersion:   t.Python,
		Accel:           t.Accel,
		Platform:        t.Platform(),
		Layout:          b.Config.Layout,
		Source:          SourceRef{Repository: b.Source.Repository, Commit: b.Source.Commit},
		SourceDateEpoch: b.Source.Epoch.Unix(),
		Packages:        pkgs,
	}, nil
}

// tarDigest fills in the tar stream's digest where packing could not take
// it (a gzip stream with the deferred MANIFEST.json's hole): by reading the
// tarball back, which also checks it as a container's extractor will see it.
func tarDigest(path string, d *archive.Digest) error {
	if d.TarSHA256 != "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := archive.Read(f)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", path, err)
	}
	if c.TarSHA256 == "" {
		return fmt.Errorf("reading back %s: its compressed stream does not end cleanly", path)
	}
	d.TarSize, d.TarSHA256 = c.TarSize, c.TarSHA256
	return nil
}

// pack writes the tarball beside its final name and renames it into place,
// so dist/ never holds a half-written tarball under the real name.
func (b *Builder) pack(ctx context.Context, path string, entries []archive.Entry, fill func([]archive.FileSum) ([]byte, error)) (archive.Digest, error) {
	var digest archive.Digest
	err := atomicfile.WriteWith(path, 0o644, func(w io.Writer) error {
		var err error
		digest, err = archive.Pack(ctx, w, entries, archive.Options{
			Top:            b.Config.Name,
			Epoch:          b.Source.Epoch,
			Format:         archive.Format(b.Config.Format),
			Fill:           fill,
			LinkDuplicates: b.slimming(),
			TempDir:        filepath.Join(b.Dist, ".work"),
		})
		return err
	})
	if err != nil {
		return archive.Digest{}, fmt.Errorf("packing %s: %w", path, err)
	}
	return digest, nil
}
