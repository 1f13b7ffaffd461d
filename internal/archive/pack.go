// Package archive writes and reads flash-worker tarballs: deterministic on
// the way out (docs/targets-and-tarball.md), suspicious on the way in.
package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Format is a tarball's compression.
type Format string

const (
	TarGz  Format = "tar.gz"
	TarZst Format = "tar.zst"
)

// MediaFormat is the manifest's name for the format ("tar+gzip").
func (f Format) MediaFormat() string {
	if f == TarZst {
		return "tar+zstd"
	}
	return "tar+gzip"
}

// Compression settings are part of the output's identity: changing any of
// them changes every tarball's bytes, so they are constants, and the block
// size (not the core count) decides where pgzip splits its input. Level 8 is
// where pgzip's output comes within 0.2% of `gzip -6` (BENCHMARKS.md);
// level 9 costs twice the time for another 0.5%.
const (
	gzipLevel     = 8
	gzipBlockSize = 1 << 20
	zstdLevel     = zstd.SpeedDefault
)

// Kind is the type of a tar entry we write.
type Kind int

const (
	Dir Kind = iota
	File
	Symlink
	Hardlink
)

// Entry is one member of the tarball, named relative to the top directory.
type Entry struct {
	Name   string // slash-separated, relative to the top directory; "" is the top itself
	Kind   Kind
	Mode   int64  // normalised: 0755 or 0644
	Size   int64  // File only
	Source string // file on disk (File only)
	Link   string // Symlink target, or the Name a Hardlink points to
}

// Collect walks root and returns its entries, sorted, with modes normalised.
// It refuses special files and symlinks that are absolute or leave root.
func Collect(root string) ([]Entry, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("collecting %s: %w", root, err)
	}
	var entries []Entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if name == "." {
			name = ""
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Name: name, Mode: normalMode(info.Mode())}
		switch {
		case info.Mode().IsDir():
			e.Kind, e.Mode = Dir, 0o755
		case info.Mode().IsRegular():
			e.Kind, e.Size, e.Source = File, info.Size(), p
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := checkLink(name, target); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			// The lexical check above can be fooled by a chain of links;
			// the file system's own resolution cannot.
			if err := resolvesInside(realRoot, p); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			e.Kind, e.Link, e.Mode = Symlink, target, 0o777
		default:
			return fmt.Errorf("%s: special file (%s) cannot go into a tarball", p, info.Mode().Type())
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collecting %s: %w", root, err)
	}
	SortEntries(entries)
	return entries, nil
}

// normalMode keeps only "is it executable", which is all a consumer needs.
func normalMode(m fs.FileMode) int64 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// checkLink accepts a symlink only if it is relative and resolves inside the
// tree, judged lexically from the link's own directory.
func checkLink(name, target string) error {
	if path.IsAbs(target) || filepath.IsAbs(target) {
		return fmt.Errorf("symlink to absolute path %q", target)
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink %q points outside the tree", target)
	}
	return nil
}

func resolvesInside(realRoot, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("dangling or looping symlink: %w", err)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("symlink resolves to %s, outside the tree", real)
	}
	return nil
}

// SortEntries orders entries by their tar name, so a directory always comes
// before what it contains.
func SortEntries(entries []Entry) {
	// Any top directory name gives the same order, since all share it.
	sort.Slice(entries, func(i, j int) bool { return tarName("t", entries[i]) < tarName("t", entries[j]) })
}

func tarName(top string, e Entry) string {
	n := e.Name
	if top != "" {
		n = path.Join(top, e.Name)
	}
	if e.Kind == Dir {
		n += "/"
	}
	return n
}

// Options say how to pack.
type Options struct {
	Top    string    // the single top-level directory, "flash-worker"
	Epoch  time.Time // every entry's mtime
	Format Format
}

// Digest is what Pack learned about the bytes it wrote.
type Digest struct {
	Size   int64
	SHA256 string
}

// Pack writes entries as a deterministic compressed tarball to out, hashing
// the compressed bytes as they are written.
func Pack(ctx context.Context, out io.Writer, entries []Entry, o Options) (Digest, error) {
	hw := &hashingWriter{w: out, h: sha256.New()}
	cw, err := compressor(hw, o.Format)
	if err != nil {
		return Digest{}, err
	}
	tw := tar.NewWriter(cw)
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return Digest{}, err
		}
		if err := writeEntry(tw, e, o, buf); err != nil {
			return Digest{}, fmt.Errorf("packing %s: %w", tarName(o.Top, e), err)
		}
	}
	if err := tw.Close(); err != nil {
		return Digest{}, err
	}
	if err := cw.Close(); err != nil {
		return Digest{}, err
	}
	return Digest{Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil))}, nil
}

func writeEntry(tw *tar.Writer, e Entry, o Options, buf []byte) error {
	h := &tar.Header{
		Name:    tarName(o.Top, e),
		Mode:    e.Mode,
		ModTime: o.Epoch,
		// Format is left to archive/tar: USTAR where it fits, PAX only for
		// long names. Whole-second times mean no PAX time records.
	}
	switch e.Kind {
	case Dir:
		h.Typeflag = tar.TypeDir
	case Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	case Hardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, path.Join(o.Top, e.Link)
	case File:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if e.Kind != File {
		return nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(tw, f, buf)
	if err != nil {
		return err
	}
	if n != e.Size {
		return fmt.Errorf("%s changed size while packing (%d, now %d bytes)", e.Source, e.Size, n)
	}
	return nil
}

func compressor(w io.Writer, f Format) (io.WriteCloser, error) {
	switch f {
	case TarGz, "":
		gz, err := pgzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, err
		}
		// A zero mtime in the header, not time.Time{} (which pgzip would
		// write as a large number); no name.
		gz.ModTime = time.Unix(0, 0)
		gz.OS = 255
		if err := gz.SetConcurrency(gzipBlockSize, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		return gz, nil
	case TarZst:
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstdLevel),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true))
	}
	return nil, fmt.Errorf("unknown tarball format %q", f)
}

type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// Saved is what LinkDuplicates saved.
type Saved struct {
	Files int
	Bytes int64
}

// LinkDuplicates turns every regular file whose content equals an earlier
// one (in tar order) into a hard link to it, so it is stored once. known
// holds digests already computed, by entry name; the rest are hashed.
func LinkDuplicates(entries []Entry, known map[string]string) (Saved, error) {
	type key struct {
		size int64
		sum  string
	}
	first := map[key]string{}
	bySize := map[int64]int{}
	for _, e := range entries {
		if e.Kind == File && e.Size > 0 {
			bySize[e.Size]++
		}
	}
	var saved Saved
	for i := range entries {
		e := &entries[i]
		if e.Kind != File || e.Size == 0 || bySize[e.Size] < 2 {
			continue // a unique size cannot have a duplicate: skip hashing it
		}
		sum, ok := known[e.Name]
		if !ok {
			var err error
			if sum, err = FileSHA256(e.Source); err != nil {
				return saved, err
			}
		}
		k := key{e.Size, sum}
		if target, ok := first[k]; ok {
			saved.Files++
			saved.Bytes += e.Size
			e.Kind, e.Link, e.Source = Hardlink, target, ""
			continue
		}
		first[k] = e.Name
	}
	return saved, nil
}

// FileSHA256 is the hex sha256 of a file, read as a stream.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
