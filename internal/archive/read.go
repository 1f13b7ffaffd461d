package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Member is one entry read back from a tarball.
type Member struct {
	Name string // full tar name, "flash-worker/src/handler.py"
	Type byte
	Mode int64
	Size int64
	Link string
	// Compressed approximates the compressed bytes the entry took: the
	// compressed stream consumed between its header and the next.
	Compressed int64
}

// Contents is what Read found in a tarball.
type Contents struct {
	Top          string // the single top-level directory
	Members      []Member
	Version      []byte // flash-worker/.version
	Manifest     []byte // flash-worker/MANIFEST.json
	Uncompressed int64  // sum of regular file sizes
	// TarSize and TarSHA256 are the uncompressed tar stream's length and
	// sha256 (what a manifest records as tar_size and diff_id), the zero
	// blocks after the last entry included; unset when the compressed
	// stream does not end cleanly.
	TarSize   int64
	TarSHA256 string
}

// ErrUnsafe marks a tarball that must not be extracted.
var ErrUnsafe = errors.New("unsafe tarball")

const maxSmallFile = 1 << 20

// Read decompresses (gzip or zstd, by magic number) and walks a tarball,
// refusing anything that would be unsafe to extract with
// --strip-components=1, judged as an extractor would build the tree: more
// than one top-level directory, absolute paths, "..", special files, links
// that leave the tree (followed through the archive's other symlinks),
// entries beneath a symlink, and headers another extractor could read
// differently.
func Read(r io.Reader) (*Contents, error) {
	counted := &counter{r: bufio.NewReaderSize(r, 1<<16)}
	stream, closeFn, err := openTar(counted)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	sum := &hashingWriter{w: io.Discard, h: sha256.New()}
	hashed := io.TeeReader(stream, sum)
	tr := tar.NewReader(hashed)
	c := &Contents{}
	x := newExtracted()
	var last int64
	for {
		h, err := tr.Next()
		if n := len(c.Members); n > 0 {
			c.Members[n-1].Compressed = counted.n - last
		}
		last = counted.n
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		m := Member{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Size: h.Size, Link: h.Linkname}
		if err := c.check(h, m, x); err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrUnsafe, h.Name, err)
		}
		c.Members = append(c.Members, m)
		if h.Typeflag == tar.TypeReg {
			c.Uncompressed += h.Size
			if err := c.keepSmall(tr, m); err != nil {
				return nil, err
			}
		}
	}
	if c.Top == "" {
		return nil, fmt.Errorf("%w: the tarball is empty", ErrUnsafe)
	}
	// The tar reader stops at the first zero block; the stream goes on to
	// its end, as gzip -dc writes it. Bytes after the compressed stream
	// (which a caller reading a bounded download judges by size) leave the
	// digest unset.
	if _, err := io.Copy(io.Discard, hashed); err == nil {
		c.TarSize, c.TarSHA256 = sum.n, hex.EncodeToString(sum.h.Sum(nil))
	}
	// A symlink is judged in the finished tree: one added later can change
	// where an earlier one leads.
	for _, m := range c.Members {
		if m.Type != tar.TypeSymlink {
			continue
		}
		name := strings.TrimSuffix(m.Name, "/")
		if err := x.resolve(path.Dir(name), m.Link); err != nil {
			return nil, fmt.Errorf("%w: entry %q: symlink %q %v", ErrUnsafe, m.Name, m.Link, err)
		}
	}
	return c, nil
}

func (c *Contents) keepSmall(tr io.Reader, m Member) error {
	var dst *[]byte
	switch m.Name {
	case c.Top + "/.version":
		dst = &c.Version
	case c.Top + "/MANIFEST.json":
		dst = &c.Manifest
	default:
		return nil
	}
	if m.Size > maxSmallFile {
		return fmt.Errorf("%s is %d bytes, too large", m.Name, m.Size)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return fmt.Errorf("reading %s: %w", m.Name, err)
	}
	*dst = b
	return nil
}

// paxKeys are the PAX records every extractor applies alike. Others are
// refused: GNU.sparse.name renames an entry for GNU tar but not always for
// archive/tar, hdrcharset changes how names decode, and xattrs are applied
// by some extractors only.
var paxKeys = map[string]bool{
	"path": true, "linkpath": true, "size": true, "mtime": true, "atime": true, "ctime": true,
	"uid": true, "gid": true, "uname": true, "gname": true,
}

func (c *Contents) check(h *tar.Header, m Member, x *extracted) error {
	switch m.Type {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("type %q is not a directory, file or link", m.Type)
	}
	for k := range h.PAXRecords {
		if !paxKeys[k] {
			return fmt.Errorf("PAX record %q could make another extractor read this entry differently", k)
		}
	}
	if m.Type != tar.TypeDir && strings.HasSuffix(m.Name, "/") {
		return errors.New("the name ends in / but is not a directory")
	}
	if m.Type != tar.TypeReg && m.Size != 0 {
		// archive/tar and Python skip no data after such a header; an
		// extractor that does would read different entries.
		return fmt.Errorf("a header-only entry carries %d bytes of data", m.Size)
	}
	name := strings.TrimSuffix(m.Name, "/")
	if err := c.checkPath(m, name); err != nil {
		return err
	}
	if m.Mode&^0o777 != 0 {
		return fmt.Errorf("mode %o has setuid, setgid or sticky bits", m.Mode)
	}
	switch m.Type {
	case tar.TypeSymlink:
		if path.IsAbs(m.Link) {
			return fmt.Errorf("symlink to absolute path %q", m.Link)
		}
	case tar.TypeLink:
		if x.kinds[m.Link] != tar.TypeReg {
			return fmt.Errorf("hard link to %q, which is not an earlier regular file", m.Link)
		}
	}
	return x.add(name, m.Type, m.Link)
}

func (c *Contents) checkPath(m Member, name string) error {
	if name == "" || strings.HasPrefix(m.Name, "/") || strings.Contains(m.Name, "\\") {
		return errors.New("absolute or empty path")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == "" {
			return errors.New("path has '..', '.' or an empty component")
		}
	}
	top, _, _ := strings.Cut(name, "/")
	switch {
	case c.Top == "":
		if m.Type != tar.TypeDir || top != name {
			return errors.New("the first entry must be the top-level directory")
		}
		c.Top = top
	case top != c.Top:
		return fmt.Errorf("outside the single top-level directory %q", c.Top+"/")
	}
	return nil
}

// extracted models the tree an extractor has built so far, so that an
// entry is judged where it would land rather than by its name alone.
type extracted struct {
	kinds    map[string]byte   // path → type; parents created implicitly count as directories
	implicit map[string]bool   // directories no entry has named yet
	links    map[string]string // symlink → target
}

func newExtracted() *extracted {
	return &extracted{kinds: map[string]byte{}, implicit: map[string]bool{}, links: map[string]string{}}
}

// add records an entry. An entry beneath a symlink is refused, since an
// extractor would write it wherever the link leads; so is a second entry
// at a path, except a directory naming one created implicitly.
func (x *extracted) add(name string, typ byte, link string) error {
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		parent := name[:i]
		switch x.kinds[parent] {
		case tar.TypeSymlink:
			return fmt.Errorf("the path passes through the symlink %q", parent)
		case 0:
			x.kinds[parent], x.implicit[parent] = tar.TypeDir, true
		}
	}
	if _, dup := x.kinds[name]; dup && !(typ == tar.TypeDir && x.implicit[name]) {
		return errors.New("appears twice")
	}
	delete(x.implicit, name)
	x.kinds[name] = typ
	if typ == tar.TypeSymlink {
		x.links[name] = link
	}
	return nil
}

// maxHops is Linux's limit on symlinks followed in one lookup (ELOOP).
const maxHops = 40

// resolve follows target from the directory dir as the kernel would,
// through the tree's symlinks, and fails if it ever climbs above the top
// directory: with --strip-components=1 that is the extraction directory.
func (x *extracted) resolve(dir, target string) error {
	stack := strings.Split(dir, "/")
	pending := strings.Split(target, "/")
	hops := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) <= 1 {
				return errors.New("leaves the tree")
			}
			stack = stack[:len(stack)-1]
			continue
		}
		here := strings.Join(append(stack, part), "/")
		to, isLink := x.links[here]
		if !isLink {
			stack = append(stack, part)
			continue
		}
		if hops++; hops > maxHops {
			return errors.New("goes through too many levels of symlinks")
		}
		if path.IsAbs(to) {
			return errors.New("leaves the tree through an absolute symlink")
		}
		pending = append(strings.Split(to, "/"), pending...)
	}
	return nil
}

// openTar opens the decompressed tar stream of a gzip or zstd tarball.
func openTar(br *counter) (io.Reader, func(), error) {
	magic, err := br.r.Peek(4)
	if err != nil {
		return nil, nil, fmt.Errorf("reading tarball header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip: %w", err)
		}
		return gz, func() { gz.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nil, errors.New("not a gzip or zstd compressed tarball")
}

// counter counts the compressed bytes the decompressor takes. It sits on
// top of the buffer and is an io.ByteReader, so flate reads from it byte by
// byte with no read-ahead of its own: the count is exact for gzip.
type counter struct {
	r *bufio.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *counter) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
