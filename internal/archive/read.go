package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
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
}

// ErrUnsafe marks a tarball that must not be extracted.
var ErrUnsafe = errors.New("unsafe tarball")

const maxSmallFile = 1 << 20

// Read decompresses (gzip or zstd, by magic number) and walks a tarball,
// refusing anything that would be unsafe to extract with
// --strip-components=1: more than one top-level directory, absolute paths,
// "..", special files, and links that leave the tree.
func Read(r io.Reader) (*Contents, error) {
	counted := &counter{r: bufio.NewReaderSize(r, 1<<16)}
	tr, closeFn, err := openTar(counted)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	c := &Contents{}
	seen := map[string]byte{}
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
		if err := c.check(m, seen); err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrUnsafe, h.Name, err)
		}
		seen[strings.TrimSuffix(h.Name, "/")] = h.Typeflag
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

func (c *Contents) check(m Member, seen map[string]byte) error {
	name := strings.TrimSuffix(m.Name, "/")
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
	if _, dup := seen[name]; dup {
		return errors.New("appears twice")
	}
	switch m.Type {
	case tar.TypeDir, tar.TypeReg:
	case tar.TypeSymlink:
		if path.IsAbs(m.Link) {
			return fmt.Errorf("symlink to absolute path %q", m.Link)
		}
		if !inside(c.Top, path.Join(path.Dir(name), m.Link)) {
			return fmt.Errorf("symlink %q leaves the tree", m.Link)
		}
	case tar.TypeLink:
		if seen[m.Link] != tar.TypeReg {
			return fmt.Errorf("hard link to %q, which is not an earlier regular file", m.Link)
		}
	default:
		return fmt.Errorf("type %q is not a directory, file or link", m.Type)
	}
	if m.Mode&^0o777 != 0 {
		return fmt.Errorf("mode %o has setuid, setgid or sticky bits", m.Mode)
	}
	return nil
}

func inside(top, p string) bool {
	return p == top || strings.HasPrefix(p, top+"/")
}

func openTar(br *counter) (*tar.Reader, func(), error) {
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
		return tar.NewReader(gz), func() { gz.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd: %w", err)
		}
		return tar.NewReader(zr), zr.Close, nil
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
