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
// size (not the core count) decides where the gzip stream is split (as
// pgzip splits it: gzip.go). Level 8 is where the output comes within 0.2%
// of `gzip -6` (BENCHMARKS.md); level 7 is 1.3% larger at half the CPU,
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
	// Deferred (File only) has no Source: Options.Fill gives its content
	// once every other file has been read.
	Deferred bool
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
	// Fill gives the content of the entry marked Deferred, from the sha256
	// of every other regular file (hard links included, as their target),
	// in tar order. It must have the entry's Size.
	Fill func(sums []FileSum) ([]byte, error)
	// LinkDuplicates stores a regular file whose content equals an earlier
	// one's (in tar order) as a hard link to it, and turns its entry into a
	// Hardlink. Files whose size no other file has are not compared.
	LinkDuplicates bool
	// TempDir holds compressed output that waits for Fill when it outgrows
	// memory; "" is the system's.
	TempDir string
}

// FileSum is a regular file's sha256, as Pack read it.
type FileSum struct {
	Name   string
	SHA256 string
}

// Digest is what Pack learned about the bytes it wrote.
type Digest struct {
	Size   int64
	SHA256 string
	// TarSize and TarSHA256 are the uncompressed tar stream's (an OCI
	// layer's diff ID), taken on the way into the compressor; zero when a
	// Deferred entry left a hole in a gzip stream, whose bytes are not all
	// known in order.
	TarSize   int64
	TarSHA256 string
	Linked    Saved // by Options.LinkDuplicates
}

// Pack writes entries as a deterministic compressed tarball to out, hashing
// the compressed bytes as they are written. Each file is read once: its
// sha256 is taken on the way into the tarball. A Deferred entry (the build's
// MANIFEST.json, which holds a digest of the files after it) is left as a
// hole in the gzip stream and filled at the end; with zstd, whose encoder
// cannot leave one, the files are hashed in a pass of their own first.
func Pack(ctx context.Context, out io.Writer, entries []Entry, o Options) (Digest, error) {
	hw := &hashingWriter{w: out, h: sha256.New()}
	p := &packer{o: o, buf: make([]byte, 256<<10), sums: map[string]string{}}
	if err := p.check(entries); err != nil {
		return Digest{}, err
	}
	// The tar stream is hashed only where all its bytes pass in order.
	p.hashTar = p.deferred == nil || o.Format == TarZst
	var err error
	switch o.Format {
	case TarGz, "":
		err = p.packGzip(ctx, hw, entries)
	case TarZst:
		err = p.packZstd(ctx, hw, entries)
	default:
		err = fmt.Errorf("unknown tarball format %q", o.Format)
	}
	if err != nil {
		return Digest{}, err
	}
	if p.links != nil {
		p.linked = p.links.saved
	}
	d := Digest{Size: hw.n, SHA256: hex.EncodeToString(hw.h.Sum(nil)), Linked: p.linked}
	if p.tar != nil {
		d.TarSize, d.TarSHA256 = p.tar.n, hex.EncodeToString(p.tar.h.Sum(nil))
	}
	return d, nil
}

type packer struct {
	o        Options
	buf      []byte
	sums     map[string]string // by entry name
	list     []FileSum
	deferred *Entry
	// hole, when set, is called with the deferred entry's size before its
	// placeholder bytes are written.
	hole    func(size int64) error
	fill    []byte         // the deferred entry's content, when known before packing
	links   *linker        // with Options.LinkDuplicates, while packing
	linked  Saved          // what links saved, when it is done before packing
	tar     *hashingWriter // the uncompressed stream, as writeAll wrote it
	hashTar bool           // whether writeAll hashes it
}

// wholeFileLimit is the largest file read into memory to compare it with
// the others of its size before it is packed (a variable for the tests).
var wholeFileLimit int64 = 32 << 20

func (p *packer) check(entries []Entry) error {
	if p.o.LinkDuplicates {
		p.links = newLinker(entries)
	}
	for i := range entries {
		if !entries[i].Deferred {
			continue
		}
		if p.deferred != nil || entries[i].Kind != File || p.o.Fill == nil {
			return fmt.Errorf("packing %s: a deferred entry needs to be the only one, a file, and Options.Fill", entries[i].Name)
		}
		p.deferred = &entries[i]
	}
	return nil
}

func (p *packer) packGzip(ctx context.Context, out io.Writer, entries []Entry) error {
	gz, err := newGzipWriter(out, gzipLevel, 2*runtime.GOMAXPROCS(0), p.o.TempDir)
	if err != nil {
		return err
	}
	p.hole = gz.Hole
	if err := p.writeAll(ctx, gz, entries); err != nil {
		gz.Abort()
		return err
	}
	fill, err := p.filled()
	if err != nil {
		gz.Abort()
		return err
	}
	return gz.Close(fill)
}

func (p *packer) packZstd(ctx context.Context, out io.Writer, entries []Entry) error {
	// zstd's encoder cannot leave a hole for the deferred entry, so this
	// path reads the files twice: hashing first, then packing.
	if p.deferred != nil {
		if err := p.hashAll(ctx, entries); err != nil {
			return err
		}
	}
	if p.links != nil {
		// Before packing, not while: the encoder streams, so a file read
		// whole to compare it would be read again. hashAll's digests are
		// reused.
		if err := p.links.linkAll(entries, p.sums); err != nil {
			return err
		}
		p.linked, p.links = p.links.saved, nil
	}
	if p.deferred != nil {
		fill, err := p.filled()
		if err != nil {
			return err
		}
		p.fill, p.sums, p.list = fill, map[string]string{}, nil
	}
	zw, err := zstd.NewWriter(out,
		zstd.WithEncoderLevel(zstdLevel),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true))
	if err != nil {
		return err
	}
	if err := p.writeAll(ctx, zw, entries); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// writeAll writes the tar stream of entries, and its end, to w.
func (p *packer) writeAll(ctx context.Context, w io.Writer, entries []Entry) error {
	if p.hashTar {
		p.tar = &hashingWriter{w: w, h: sha256.New()}
		w = p.tar
	}
	tw := tar.NewWriter(w)
	for i := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.writeEntry(tw, &entries[i]); err != nil {
			return fmt.Errorf("packing %s: %w", tarName(p.o.Top, entries[i]), err)
		}
	}
	return tw.Close()
}

// hashAll takes every file's sha256 without packing (for zstd).
func (p *packer) hashAll(ctx context.Context, entries []Entry) error {
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.copyFile(io.Discard, e); err != nil {
			return fmt.Errorf("hashing %s: %w", e.Source, err)
		}
	}
	return nil
}

// filled is the deferred entry's content, from the sums gathered so far.
func (p *packer) filled() ([]byte, error) {
	if p.deferred == nil {
		return nil, nil
	}
	data, err := p.o.Fill(p.list)
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", p.deferred.Name, err)
	}
	if int64(len(data)) != p.deferred.Size {
		return nil, fmt.Errorf("packing %s: %d bytes where %d were planned", p.deferred.Name, len(data), p.deferred.Size)
	}
	return data, nil
}

func (p *packer) writeEntry(tw *tar.Writer, e *Entry) error {
	var content []byte // a file read whole to look for its duplicate
	if p.links != nil && p.links.candidate(*e) {
		var err error
		if content, err = p.linkIfDuplicate(e); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(p.header(*e)); err != nil {
		return err
	}
	switch {
	case content != nil:
		_, err := tw.Write(content)
		return err
	case e.Deferred && p.fill != nil:
		_, err := tw.Write(p.fill)
		return err
	case e.Deferred:
		if err := p.hole(e.Size); err != nil {
			return err
		}
		_, err := io.CopyN(tw, zeros{}, e.Size)
		return err
	default:
		return p.copyFile(tw, *e)
	}
}

func (p *packer) header(e Entry) *tar.Header {
	h := &tar.Header{
		Name:    tarName(p.o.Top, e),
		Mode:    e.Mode,
		ModTime: p.o.Epoch,
		// Format is left to archive/tar: USTAR where it fits, PAX only for
		// long names. Whole-second times mean no PAX time records.
	}
	switch e.Kind {
	case Dir:
		h.Typeflag = tar.TypeDir
	case Symlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	case Hardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, path.Join(p.o.Top, e.Link)
	case File:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	return h
}

// linkIfDuplicate reads e's file whole and hashes it; if an earlier file
// had the same content, e becomes a hard link to it (in place, so the
// caller's entries say what was packed). Otherwise it returns the content,
// to be packed from memory. A file too large to hold is hashed, and read
// again if it is packed.
func (p *packer) linkIfDuplicate(e *Entry) ([]byte, error) {
	var content []byte
	var sum string
	var err error
	if e.Size <= wholeFileLimit {
		if content, err = os.ReadFile(e.Source); err != nil {
			return nil, err
		}
		if int64(len(content)) != e.Size {
			return nil, fmt.Errorf("%s changed size while packing (%d, now %d bytes)", e.Source, e.Size, len(content))
		}
		h := sha256.Sum256(content)
		sum = hex.EncodeToString(h[:])
	} else if sum, err = FileSHA256(e.Source); err != nil {
		return nil, err
	}
	if p.links.link(e, sum) {
		return nil, nil
	}
	if content != nil {
		p.record(e.Name, sum)
	}
	return content, nil
}

// copyFile copies e's file to w, taking its sha256 on the way; a hard link
// records its target's sum, other kinds have no content.
func (p *packer) copyFile(w io.Writer, e Entry) error {
	if e.Kind == Hardlink {
		p.record(e.Name, p.sums[e.Link])
		return nil
	}
	if e.Kind != File || e.Deferred {
		return nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), onlyReader{f}, p.buf)
	if err != nil {
		return err
	}
	if n != e.Size {
		return fmt.Errorf("%s changed size while packing (%d, now %d bytes)", e.Source, e.Size, n)
	}
	p.record(e.Name, hex.EncodeToString(h.Sum(nil)))
	return nil
}

func (p *packer) record(name, sum string) {
	p.sums[name] = sum
	p.list = append(p.list, FileSum{Name: name, SHA256: sum})
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
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
	l := newLinker(entries)
	err := l.linkAll(entries, known)
	return l.saved, err
}

// linker is the one place that decides which files are stored once: a
// regular file whose content equals an earlier one's, in tar order,
// becomes a hard link to it. Packing asks it file by file as it reads
// them; LinkDuplicates, and packing to zstd, all at once beforehand.
type linker struct {
	bySize map[int64]int // regular files by size
	first  map[dupKey]string
	saved  Saved
}

type dupKey struct {
	size int64
	sum  string
}

func newLinker(entries []Entry) *linker {
	l := &linker{bySize: map[int64]int{}, first: map[dupKey]string{}}
	for _, e := range entries {
		if e.Kind == File && !e.Deferred && e.Size > 0 {
			l.bySize[e.Size]++
		}
	}
	return l
}

// candidate is a file whose size another file shares (a unique size
// cannot have a duplicate, so it is not even hashed).
func (l *linker) candidate(e Entry) bool {
	return e.Kind == File && !e.Deferred && e.Size > 0 && l.bySize[e.Size] > 1
}

// link makes e, whose content has sha256 sum, a hard link to the first
// file with the same content (in place, so the caller's entries say what
// is packed), and reports whether it did.
func (l *linker) link(e *Entry, sum string) bool {
	k := dupKey{e.Size, sum}
	if target, ok := l.first[k]; ok {
		l.saved.Files++
		l.saved.Bytes += e.Size
		e.Kind, e.Link, e.Source = Hardlink, target, ""
		return true
	}
	l.first[k] = e.Name
	return false
}

// linkAll links every duplicate among entries, hashing the candidates
// whose digest known lacks.
func (l *linker) linkAll(entries []Entry, known map[string]string) error {
	for i := range entries {
		e := &entries[i]
		if !l.candidate(*e) {
			continue
		}
		sum, ok := known[e.Name]
		if !ok {
			var err error
			if sum, err = FileSHA256(e.Source); err != nil {
				return err
			}
		}
		l.link(e, sum)
	}
	return nil
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
