package archive

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/klauspost/pgzip"
)

// compressible is n bytes of words drawn from a small vocabulary, so that
// deflate finds matches, also across the blocks' dictionaries.
func compressible(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	words := []string{"flash", "worker", "import ", "numpy", "\n", "def ", "return", "    ", "site-packages/", "0123456789"}
	var b bytes.Buffer
	for b.Len() < n {
		if r.Intn(20) == 0 {
			fmt.Fprintf(&b, "%x", r.Uint64()) // some entropy
		}
		b.WriteString(words[r.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

func pgzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	gz, err := pgzip.NewWriterLevel(&out, gzipLevel)
	if err != nil {
		t.Fatal(err)
	}
	gz.ModTime, gz.OS = time.Unix(0, 0), 255
	if err := gz.SetConcurrency(gzipBlockSize, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := gz.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gzipWith writes data through gzipWriter in uneven pieces, with
// [holeAt, holeAt+holeLen) zeroed and filled only at Close.
func gzipWith(t *testing.T, data []byte, holeAt, holeLen int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := newGzipWriter(&out, gzipLevel, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	write := func(p []byte) {
		for len(p) > 0 {
			k := min(len(p), 1+rand.Intn(300<<10))
			if _, err := w.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
	}
	var fill []byte
	if holeLen > 0 {
		write(data[:holeAt])
		if err := w.Hole(int64(holeLen)); err != nil {
			t.Fatal(err)
		}
		write(make([]byte, holeLen))
		fill = data[holeAt : holeAt+holeLen]
		data = data[holeAt+holeLen:]
	}
	write(data)
	if err := w.Close(fill); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The gzip stream is pgzip's, byte for byte, with or without a hole, wherever
// the hole falls: at the start, across a block boundary, in the dictionary
// the next block takes, in the last block; and held output that spills to a
// temporary file comes back whole.
func TestGzipWriterIsPgzip(t *testing.T) {
	const mib = gzipBlockSize
	cases := []struct {
		size, holeAt, holeLen int
	}{
		{0, 0, 0},
		{1, 0, 0},
		{mib, 0, 0},
		{3*mib + 12345, 0, 0},
		{3*mib + 12345, 1500, 3000},
		{3*mib + 12345, mib - 100, 200},
		{3*mib + 12345, mib - gzipTailSize/2, 100},
		{3*mib + 12345, 3*mib + 10, 5000},
		{2 * mib, 2*mib - 700, 700},
		{4 * mib, 10, mib + 5},
	}
	for _, spill := range []int{heldInMemory, 1000} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("size %d hole %d+%d held %d", c.size, c.holeAt, c.holeLen, spill), func(t *testing.T) {
				defer func(prev int) { heldInMemory = prev }(heldInMemory)
				heldInMemory = spill
				data := compressible(c.size, int64(c.size+c.holeAt))
				got := gzipWith(t, data, c.holeAt, c.holeLen)
				if want := pgzipped(t, data); !bytes.Equal(got, want) {
					t.Fatalf("%d bytes, pgzip wrote %d different ones", len(got), len(want))
				}
				zr, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				back, err := io.ReadAll(zr) // checks the CRC-32 and size in the trailer
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("decompressed %d bytes (%v), want the %d written", len(back), err, len(data))
				}
			})
		}
	}
}

func TestGzipWriterRefusesAWrongFill(t *testing.T) {
	w, err := newGzipWriter(io.Discard, gzipLevel, 2, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("before"))
	w.Hole(10)
	w.Write(make([]byte, 10))
	if err := w.Close([]byte("short")); err == nil {
		t.Fatal("Close accepted 5 bytes for a hole of 10")
	}
}

func TestCRC32Combine(t *testing.T) {
	data := compressible(100000, 7)
	for _, cut := range []int{0, 1, 4, 1000, 65536, 99999, 100000} {
		a, b := data[:cut], data[cut:]
		got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b)))
		if want := crc32.ChecksumIEEE(data); got != want {
			t.Errorf("cut at %d: combined %08x, want %08x", cut, got, want)
		}
	}
}
