package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

var epoch = time.Unix(1767225600, 0).UTC()

// tree writes files (name → content; a name ending in "*" is executable).
func tree(t *testing.T, files map[string]string, perms modes) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		exec := strings.HasSuffix(name, "*")
		name = strings.TrimSuffix(name, "*")
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), perms.dir); err != nil {
			t.Fatal(err)
		}
		mode := perms.file
		if exec {
			mode |= 0o100
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		when := time.Unix(rand.Int63n(1<<31), 0)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type modes struct{ dir, file os.FileMode }

var sample = map[string]string{
	"bootstrap.sh*":                 "#!/bin/sh\nexec python3 src/handler.py\n",
	".version":                      "1.2.0\n",
	"src/handler.py":                "print('hi')\n",
	"src/a.txt":                     strings.Repeat("flash worker ", 200000),
	"site-packages/pkg/__init__.py": "",
	"site-packages/pkg.txt":         "sorts before pkg/ in C order\n",
}

func pack(t *testing.T, dir string, f Format) ([]byte, Digest) {
	t.Helper()
	entries, err := Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := Pack(context.Background(), &buf, entries, Options{Top: "flash-worker", Epoch: epoch, Format: f})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), d
}

// Same content, different modes, mtimes, creation order, core count and
// wall clock: the same bytes. The first pack runs in a synctest bubble,
// whose clock reads midnight 2000-01-01 UTC, the second on the real clock,
// decades later: any time read from the clock (in a tar header, the gzip
// header or a zstd frame) makes the two differ, however fast the packs run.
func TestPackIsDeterministic(t *testing.T) {
	for _, f := range []Format{TarGz, TarZst} {
		t.Run(string(f), func(t *testing.T) {
			first := tree(t, sample, modes{0o755, 0o644})
			var a []byte
			var da Digest
			synctest.Test(t, func(t *testing.T) {
				if time.Now().Year() != 2000 {
					t.Fatalf("the bubble's clock reads %v; the test would not see a wall-clock time", time.Now())
				}
				a, da = pack(t, first, f)
			})
			prev := runtime.GOMAXPROCS(1)
			b, db := pack(t, tree(t, sample, modes{0o700, 0o600}), f)
			runtime.GOMAXPROCS(prev)
			if !bytes.Equal(a, b) {
				t.Fatalf("two packs of the same tree differ (%d and %d bytes)", len(a), len(b))
			}
			sum := sha256.Sum256(a)
			if da != db || da.SHA256 != hex.EncodeToString(sum[:]) || da.Size != int64(len(a)) {
				t.Errorf("digest %+v does not describe the bytes written (%d bytes, %x)", da, len(a), sum)
			}
			if tarSum := streamSHA256(t, a, f); da.TarSHA256 != tarSum || da.TarSize == 0 {
				t.Errorf("tar stream digest %q (%d bytes), the decompressed bytes hash to %s", da.TarSHA256, da.TarSize, tarSum)
			}
			c, err := Read(bytes.NewReader(a))
			if err != nil {
				t.Fatal(err)
			}
			if c.TarSHA256 != da.TarSHA256 || c.TarSize != da.TarSize {
				t.Errorf("Read found the tar stream %s (%d bytes), Pack wrote %s (%d bytes)", c.TarSHA256, c.TarSize, da.TarSHA256, da.TarSize)
			}
		})
	}
}

func TestPackLayout(t *testing.T) {
	data, _ := pack(t, tree(t, sample, modes{0o775, 0o664}), TarGz)
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.Equal(time.Unix(0, 0)) && !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q and mtime %v, want none", zr.Name, zr.ModTime)
	}
	if data[4]|data[5]|data[6]|data[7] != 0 {
		t.Errorf("gzip header mtime bytes % x, want zero", data[4:8])
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
		if len(h.PAXRecords) > 0 {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
		want := int64(0o644)
		if h.Typeflag == tar.TypeDir || h.Name == "flash-worker/bootstrap.sh" {
			want = 0o755
		}
		if h.Mode != want {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want)
		}
	}
	want := []string{
		"flash-worker/", "flash-worker/.version", "flash-worker/bootstrap.sh",
		"flash-worker/site-packages/", "flash-worker/site-packages/pkg.txt", "flash-worker/site-packages/pkg/", "flash-worker/site-packages/pkg/__init__.py",
		"flash-worker/src/", "flash-worker/src/a.txt", "flash-worker/src/handler.py",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	c, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if c.Top != "flash-worker" || string(c.Version) != "1.2.0\n" {
		t.Errorf("Read: top %q version %q", c.Top, c.Version)
	}
}

func TestCollectRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"absolute symlink", func(d string) error { return os.Symlink("/etc/passwd", filepath.Join(d, "x")) }, "absolute path"},
		{"symlink out of the tree", func(d string) error { return os.Symlink("../../etc", filepath.Join(d, "x")) }, "outside the tree"},
		{"chain of links out of the tree", func(d string) error {
			if err := os.Symlink(".", filepath.Join(d, "here")); err != nil {
				return err
			}
			return os.Symlink("here/..", filepath.Join(d, "up"))
		}, "outside the tree"},
		{"dangling symlink", func(d string) error { return os.Symlink("nothing", filepath.Join(d, "x")) }, "dangling"},
		{"fifo", func(d string) error { return syscall.Mkfifo(filepath.Join(d, "pipe"), 0o644) }, "special file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Collect(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Collect error = %v, want %q", err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), nil, 0o644)
	os.Symlink("a", filepath.Join(dir, "b"))
	entries, err := Collect(dir)
	if err != nil || len(entries) != 3 || entries[2].Kind != Symlink || entries[2].Link != "a" {
		t.Errorf("a relative symlink inside the tree must be kept: %+v, %v", entries, err)
	}
}

func rawTar(t testing.TB, headers ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range headers {
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("x"))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestReadRefusesUnsafe(t *testing.T) {
	top := &tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755}
	file := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to, Mode: 0o777}
	}
	tests := []struct {
		name    string
		headers []*tar.Header
		want    string
	}{
		{"dot dot", []*tar.Header{top, file("flash-worker/../evil")}, "'..'"},
		{"absolute", []*tar.Header{top, file("/etc/passwd")}, "absolute"},
		{"second top", []*tar.Header{top, file("other/x")}, "outside the single top-level directory"},
		{"no top dir first", []*tar.Header{file("flash-worker/x")}, "first entry must be the top-level directory"},
		{"device", []*tar.Header{top, {Name: "flash-worker/sda", Typeflag: tar.TypeBlock, Mode: 0o644}}, "not a directory, file or link"},
		{"fifo", []*tar.Header{top, {Name: "flash-worker/p", Typeflag: tar.TypeFifo, Mode: 0o644}}, "not a directory, file or link"},
		{"symlink out", []*tar.Header{top, {Name: "flash-worker/x", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}}, "leaves the tree"},
		{"absolute symlink", []*tar.Header{top, {Name: "flash-worker/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, "absolute"},
		{"hard link out", []*tar.Header{top, {Name: "flash-worker/x", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, "hard link"},
		{"setuid", []*tar.Header{top, {Name: "flash-worker/x", Typeflag: tar.TypeReg, Mode: 0o4755}}, "setuid"},
		{"duplicate", []*tar.Header{top, file("flash-worker/x"), file("flash-worker/x")}, "twice"},
		// Each symlink alone stays inside; together they lead out, and a
		// Python extractor writes ESCAPED beside flash-worker/.
		{"chained symlinks", []*tar.Header{top, link("flash-worker/d", "."), link("flash-worker/d/l", ".."), file("flash-worker/d/l/ESCAPED")}, `passes through the symlink "flash-worker/d"`},
		{"symlink made to escape by a later one", []*tar.Header{top, link("flash-worker/a", "b/.."), link("flash-worker/b", ".")}, `symlink "b/.." leaves the tree`},
		{"symlink out and back in", []*tar.Header{top, link("flash-worker/x", "../flash-worker/y"), file("flash-worker/y")}, `symlink "../flash-worker/y" leaves the tree`},
		{"symlink loop", []*tar.Header{top, link("flash-worker/a", "b"), link("flash-worker/b", "a")}, "too many levels of symlinks"},
		{"symlink over an implicit directory", []*tar.Header{top, file("flash-worker/a/x"), link("flash-worker/a", ".")}, "twice"},
		{"directory with data", []*tar.Header{top, {Name: "flash-worker/d/", Typeflag: tar.TypeDir, Mode: 0o755, Size: 512}}, "carries 512 bytes of data"},
		{"global PAX header", []*tar.Header{top, {Name: "g", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "x"}}}, "not a directory, file or link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(rawTar(t, tt.headers...)))
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read error = %v, want ErrUnsafe mentioning %q", err, tt.want)
			}
		})
	}
	ok := rawTar(t, top, file("flash-worker/a"), &tar.Header{Name: "flash-worker/b", Typeflag: tar.TypeLink, Linkname: "flash-worker/a"},
		&tar.Header{Name: "flash-worker/c", Typeflag: tar.TypeSymlink, Linkname: "a"})
	if _, err := Read(bytes.NewReader(ok)); err != nil {
		t.Errorf("a safe tarball with links was refused: %v", err)
	}
	chain := rawTar(t, top, file("flash-worker/a/x"), link("flash-worker/b", "a"), link("flash-worker/c", "b/x"), link("flash-worker/a/up", "../c"))
	if _, err := Read(bytes.NewReader(chain)); err != nil {
		t.Errorf("symlinks through symlinks that stay inside were refused: %v", err)
	}
	if _, err := Read(strings.NewReader("not a tarball at all")); err == nil {
		t.Error("garbage accepted")
	}
}

// withPAX writes h behind a PAX extended header holding records, which
// archive/tar's writer will not emit for keys it does not know: the header
// is written as a file, then retyped 'x' and re-summed.
func withPAX(t testing.TB, records map[string]string, h *tar.Header) []byte {
	t.Helper()
	var body []byte
	for k, v := range records {
		rec := " " + k + "=" + v + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		body = append(body, strconv.Itoa(n)+rec...)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "PaxHeaders/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), Format: tar.FormatUSTAR})
	tw.Write(body)
	tw.Flush()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	resum(b)
	h.Size, h.Format = 1, tar.FormatUSTAR
	tw.WriteHeader(h)
	tw.Write([]byte("x"))
	tw.Flush()
	return buf.Bytes()
}

// rawTarWith is rawTar with raw blocks (from withPAX) after the top directory.
func rawTarWith(t testing.TB, blocks ...[]byte) []byte {
	t.Helper()
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "flash-worker/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.Flush()
	for _, b := range blocks {
		plain.Write(b)
	}
	plain.Write(make([]byte, 1024))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain.Bytes())
	zw.Close()
	return buf.Bytes()
}

// A regular file whose name ends in / is a directory to GNU tar.
func TestReadRefusesFileNamedAsDirectory(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "flash-worker/x", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatUSTAR})
	tw.Flush()
	b := buf.Bytes()
	b[len("flash-worker/x")] = '/'
	resum(b)
	_, err := Read(bytes.NewReader(rawTarWith(t, b)))
	if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "ends in / but is not a directory") {
		t.Errorf("Read error = %v, want ErrUnsafe: ends in / but is not a directory", err)
	}
}

// resum rewrites a tar header block's checksum after an edit.
func resum(b []byte) {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// PAX keys that rename an entry for some extractors but not for
// archive/tar, or that only some extractors apply, are refused.
func TestReadRefusesRenamingPAX(t *testing.T) {
	reg := func() *tar.Header {
		return &tar.Header{Name: "flash-worker/README", Typeflag: tar.TypeReg, Mode: 0o644}
	}
	for _, records := range []map[string]string{
		{"GNU.sparse.name": "flash-worker/bootstrap.sh"},
		{"hdrcharset": "BINARY"},
		{"SCHILY.xattr.security.capability": "x"},
	} {
		data := rawTarWith(t, withPAX(t, records, reg()))
		_, err := Read(bytes.NewReader(data))
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "PAX record") {
			t.Errorf("records %v: Read error = %v, want ErrUnsafe naming the PAX record", records, err)
		}
	}
	ok := rawTarWith(t, withPAX(t, map[string]string{"path": "flash-worker/" + strings.Repeat("long", 40), "mtime": "1.5"}, reg()))
	if _, err := Read(bytes.NewReader(ok)); err != nil {
		t.Errorf("a PAX path and mtime were refused: %v", err)
	}
}

// streamSHA256 is the sha256 of a tarball's decompressed bytes.
func streamSHA256(t *testing.T, data []byte, f Format) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, decompressed(t, data, f)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
