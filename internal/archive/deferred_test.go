package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// decompressed reads a tarball's tar stream.
func decompressed(t *testing.T, data []byte, f Format) io.Reader {
	t.Helper()
	if f == TarZst {
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	zr, err := pgzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

// untar reads every regular file's content (and hard link's target) by its
// name below the top directory, in tar order.
func untar(t *testing.T, data []byte, f Format) (names []string, content map[string][]byte) {
	t.Helper()
	r := decompressed(t, data, f)
	tr := tar.NewReader(r)
	content = map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, content
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "flash-worker/")
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			content[name] = b
		case tar.TypeLink:
			content[name] = content[strings.TrimPrefix(h.Linkname, "flash-worker/")]
		default:
			continue
		}
		names = append(names, name)
	}
}

// The sums Pack hands to Fill, taken while packing, are those of the files
// as the tarball holds them (hard links as their target), in tar order,
// without the deferred entry; the deferred entry holds what Fill returned;
// and the gzip bytes are those of a tarball in which that content was a
// file on disk all along.
func TestPackFillsTheDeferredEntry(t *testing.T) {
	files := map[string]string{
		"bootstrap.sh*":         "#!/bin/sh\n",
		".version":              "1.2.0\n",
		"LICENSE":               "sorts before MANIFEST.json\n",
		"site-packages/a.txt":   strings.Repeat("flash worker ", 300000),
		"site-packages/b.txt":   strings.Repeat("flash worker ", 300000),
		"site-packages/c/d.txt": "d\n",
	}
	fill := func(sums []FileSum) ([]byte, error) {
		var b strings.Builder
		for _, s := range sums {
			fmt.Fprintf(&b, "%s  %s\n", s.SHA256, s.Name)
		}
		return []byte(b.String()), nil
	}
	for _, f := range []Format{TarGz, TarZst} {
		t.Run(string(f), func(t *testing.T) {
			dir := tree(t, files, modes{0o755, 0o644})
			entries, err := Collect(dir)
			if err != nil {
				t.Fatal(err)
			}
			// What Fill will return, worked out from the files on disk.
			var want strings.Builder
			for _, e := range entries {
				if e.Kind == File || e.Kind == Hardlink {
					sum, err := FileSHA256(filepath.Join(dir, filepath.FromSlash(e.Name)))
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&want, "%s  %s\n", sum, e.Name)
				}
			}
			entries = append(entries, Entry{Name: "MANIFEST.json", Kind: File, Mode: 0o644, Size: int64(want.Len()), Deferred: true})
			SortEntries(entries)
			var buf bytes.Buffer
			d, err := Pack(context.Background(), &buf, entries, Options{Top: "flash-worker", Epoch: epoch, Format: f, Fill: fill, LinkDuplicates: true, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if d.Linked.Files != 1 {
				t.Errorf("linked %+v, want b.txt linked to a.txt", d.Linked)
			}
			if sum := sha256.Sum256(buf.Bytes()); d.SHA256 != hex.EncodeToString(sum[:]) || d.Size != int64(buf.Len()) {
				t.Errorf("digest %+v does not describe the %d bytes written", d, buf.Len())
			}
			// The tar stream's digest is known only where no hole was left
			// in it: zstd fills the entry before packing, gzip after.
			if tarSum := streamSHA256(t, buf.Bytes(), f); f == TarZst && d.TarSHA256 != tarSum {
				t.Errorf("zstd tar stream digest %q, the stream hashes to %s", d.TarSHA256, tarSum)
			} else if f == TarGz && (d.TarSHA256 != "" || d.TarSize != 0) {
				t.Errorf("gzip with a hole reports tar stream %d bytes %q; it cannot know it", d.TarSize, d.TarSHA256)
			}
			names, content := untar(t, buf.Bytes(), f)
			if got := string(content["MANIFEST.json"]); got != want.String() {
				t.Fatalf("MANIFEST.json holds\n%s\nwant the listing of the files packed\n%s", got, want.String())
			}
			if !strings.HasPrefix(strings.Join(names, " "), ".version LICENSE MANIFEST.json bootstrap.sh") {
				t.Errorf("entries in order %v", names)
			}
			if f == TarGz {
				// The same tree with MANIFEST.json on disk all along, packed
				// plainly, gives the same bytes.
				if err := os.WriteFile(filepath.Join(dir, "MANIFEST.json"), []byte(want.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				again, err := Collect(dir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := LinkDuplicates(again, nil); err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				if _, err := Pack(context.Background(), &b, again, Options{Top: "flash-worker", Epoch: epoch, Format: f}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), buf.Bytes()) {
					t.Errorf("filled at the end: %d bytes; on disk all along: %d different ones", buf.Len(), b.Len())
				}
			}
		})
	}
}

func TestPackRefusesAFillOfAnotherSize(t *testing.T) {
	dir := tree(t, map[string]string{"a": "a\n"}, modes{0o755, 0o644})
	entries, err := Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, Entry{Name: "MANIFEST.json", Kind: File, Mode: 0o644, Size: 10, Deferred: true})
	SortEntries(entries)
	for _, f := range []Format{TarGz, TarZst} {
		_, err := Pack(context.Background(), io.Discard, entries, Options{Top: "flash-worker", Format: f, Fill: func([]FileSum) ([]byte, error) {
			return []byte("eleven byte"), nil
		}})
		if err == nil || !strings.Contains(err.Error(), "MANIFEST.json: 11 bytes where 10 were planned") {
			t.Errorf("%s: Pack = %v, want the size mismatch named", f, err)
		}
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A write error in the middle, or a cancelled context, ends Pack with the
// error: no hang with blocks in flight or held, no held file left behind.
func TestPackStopsOnErrors(t *testing.T) {
	files := map[string]string{}
	for i := range 8 {
		files[fmt.Sprintf("site-packages/f%d.bin", i)] = string(compressible(1<<20, int64(i)))
	}
	dir := tree(t, files, modes{0o755, 0o644})
	entries, err := Collect(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, Entry{Name: "MANIFEST.json", Kind: File, Mode: 0o644, Size: 4, Deferred: true})
	SortEntries(entries)
	defer func(prev int) { heldInMemory = prev }(heldInMemory)
	heldInMemory = 1000 // held output goes to a file
	fill := func([]FileSum) ([]byte, error) { return []byte("done"), nil }
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, c := range map[string]struct {
		ctx context.Context
		out io.Writer
	}{
		"write error at the start": {context.Background(), &failingWriter{after: 5}},
		"cancelled":                {ctx, io.Discard},
	} {
		_, err := Pack(c.ctx, c.out, entries, Options{Top: "flash-worker", Fill: fill, TempDir: tmp})
		if err == nil {
			t.Errorf("%s: Pack succeeded", name)
		}
	}
	// The output fails only once the held part is copied out, at the end.
	var n countingWriter
	if _, err := Pack(context.Background(), &n, entries, Options{Top: "flash-worker", Fill: fill, TempDir: tmp}); err != nil {
		t.Fatal(err)
	}
	// Failing half way, blocks are in flight or held; near the end, while
	// the held part is copied out.
	for _, after := range []int{int(n) / 2, int(n) - 100} {
		_, err = Pack(context.Background(), &failingWriter{after: after}, entries, Options{Top: "flash-worker", Fill: fill, TempDir: tmp})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("failing after %d of %d bytes: %v, want disk full", after, n, err)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// Linking duplicates while packing gives the bytes, the savings and the
// entries that LinkDuplicates before packing gives, for files held in
// memory and for files too large to be.
func TestPackLinksDuplicatesAsItGoes(t *testing.T) {
	same := string(compressible(300000, 1))
	files := map[string]string{
		"a/one.txt": same, "b/two.txt": same, "c/three.txt": same,
		"d/other.txt": string(compressible(300000, 2)), // same size, other content
		"e/empty":     "", "f/empty": "",
		"g/unique": "x",
	}
	dir := tree(t, files, modes{0o755, 0o644})
	for _, limit := range []int64{wholeFileLimit, 1000} {
		defer func(prev int64) { wholeFileLimit = prev }(wholeFileLimit)
		wholeFileLimit = limit
		for _, f := range []Format{TarGz, TarZst} {
			before, err := Collect(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, err := LinkDuplicates(before, nil)
			if err != nil {
				t.Fatal(err)
			}
			var a, b bytes.Buffer
			if _, err := Pack(context.Background(), &a, before, Options{Top: "flash-worker", Epoch: epoch, Format: f}); err != nil {
				t.Fatal(err)
			}
			during, err := Collect(dir)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Pack(context.Background(), &b, during, Options{Top: "flash-worker", Epoch: epoch, Format: f, LinkDuplicates: true})
			if err != nil {
				t.Fatal(err)
			}
			if d.Linked != want || want.Files != 2 {
				t.Errorf("%s, limit %d: linked %+v while packing, %+v before; want 2 files", f, limit, d.Linked, want)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s, limit %d: linked while packing, %d bytes; before, %d different ones", f, limit, b.Len(), a.Len())
			}
			for i := range before {
				if before[i] != during[i] {
					t.Errorf("%s, limit %d: entry %+v, want %+v", f, limit, during[i], before[i])
				}
			}
		}
	}
}
