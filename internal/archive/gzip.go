package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// gzipWriter compresses like pgzip (the same 1 MiB blocks, each compressed
// with the last 16 KiB of the one before as its dictionary, sync-flushed, at
// the same level, so the bytes are pgzip's), with one addition: a range of
// the input may be left as a hole, filled only at Close. The blocks that
// hold the hole, or take their dictionary from it, wait for the filling; the
// compressed blocks after them wait in held (memory, then a temporary
// file). That lets a tarball hold MANIFEST.json, whose tree digest covers
// every file after it, while each of those files is read once.
type gzipWriter struct {
	out  io.Writer
	held heldOutput

	cur       []byte // the block being filled
	curStart  int64  // input offset of cur
	tail      []byte // the last tailSize bytes of the previous block, or nil
	tailStart int64
	n         int64 // input bytes so far

	hole    [2]int64 // input offsets [start, end) of the hole; equal if none
	crcHead uint32   // CRC-32 of the input before the hole (all of it if none)
	crcTail uint32   // of the input after the hole

	queue   chan *gzBlock // blocks, in order, to the output goroutine
	slots   chan struct{} // bounds the blocks compressing at once
	flates  sync.Pool     // *flate.Writer
	bufs    sync.Pool     // []byte of gzipBlockSize capacity
	outs    sync.Pool     // *bytes.Buffer
	done    chan struct{} // closed when the output goroutine is finished
	waiting []*gzBlock    // blocks that need the hole filled (output goroutine's until done)
	err     atomic.Pointer[error]
}

// heldInMemory is how many compressed bytes wait in memory before a
// temporary file takes the rest (a variable for the tests): the realistic
// tree's 14 MB fit, and a build of gigabytes stays under 100 MiB of memory.
var heldInMemory = 16 << 20

const (
	gzipTailSize  = 16 << 10 // pgzip's dictionary size
	gzipOSUnknown = 255
)

type gzBlock struct {
	start     int64
	data      []byte
	dict      []byte
	dictStart int64
	final     bool
	waits     bool // for the hole
	out       *bytes.Buffer
	done      chan struct{}
}

// newGzipWriter writes the gzip header and starts the output goroutine.
// tmpDir is where held output spills to when it outgrows memory.
func newGzipWriter(out io.Writer, level, concurrency int, tmpDir string) (*gzipWriter, error) {
	// No name, no mtime (zero means none), no extra flags: only the level
	// and the data decide the bytes.
	header := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, gzipOSUnknown}
	if _, err := out.Write(header); err != nil {
		return nil, err
	}
	w := &gzipWriter{
		out: out, held: heldOutput{dir: tmpDir},
		queue: make(chan *gzBlock, concurrency),
		slots: make(chan struct{}, concurrency),
		done:  make(chan struct{}),
	}
	w.bufs.New = func() any { return make([]byte, 0, gzipBlockSize) }
	w.outs.New = func() any { return bytes.NewBuffer(make([]byte, 0, gzipBlockSize+gzipBlockSize/16)) }
	w.flates.New = func() any {
		f, _ := flate.NewWriterDict(io.Discard, level, nil) // the level is a valid constant
		return f
	}
	w.cur = w.bufs.Get().([]byte)
	go w.output()
	return w, nil
}

// Hole marks the next size bytes of input as unknown until Close. The
// caller writes size bytes of anything in their place.
func (w *gzipWriter) Hole(size int64) error {
	if w.hole[1] > w.hole[0] {
		return errors.New("gzip: a second hole")
	}
	w.hole = [2]int64{w.n, w.n + size}
	return nil
}

func (w *gzipWriter) Write(p []byte) (int, error) {
	if err := w.err.Load(); err != nil {
		return 0, *err
	}
	w.checksum(p)
	written := 0
	for len(p) > 0 {
		k := min(len(p), gzipBlockSize-len(w.cur))
		w.cur = append(w.cur, p[:k]...)
		p = p[k:]
		written += k
		w.n += int64(k)
		if len(w.cur) == gzipBlockSize {
			w.dispatch(false)
		}
	}
	return written, nil
}

// checksum adds p, which starts at input offset w.n, to the CRC-32 of the
// part it falls in; the hole's bytes are added at Close.
func (w *gzipWriter) checksum(p []byte) {
	start := w.n
	if w.hole[1] == w.hole[0] {
		w.crcHead = crc32.Update(w.crcHead, crc32.IEEETable, p)
		return
	}
	if before := min(int64(len(p)), max(0, w.hole[0]-start)); before > 0 {
		w.crcHead = crc32.Update(w.crcHead, crc32.IEEETable, p[:before])
	}
	if skip := max(0, w.hole[1]-start); skip < int64(len(p)) {
		w.crcTail = crc32.Update(w.crcTail, crc32.IEEETable, p[skip:])
	}
}

// dispatch hands the current block to compression, unless it waits for the
// hole, and queues it for output in order.
func (w *gzipWriter) dispatch(final bool) {
	b := &gzBlock{start: w.curStart, data: w.cur, dict: w.tail, dictStart: w.tailStart, final: final, done: make(chan struct{})}
	end := b.start + int64(len(b.data))
	from := b.start
	if b.dict != nil {
		from = b.dictStart
	}
	b.waits = w.hole[0] < w.hole[1] && from < w.hole[1] && w.hole[0] < end
	w.tail = nil
	if len(w.cur) > gzipTailSize {
		w.tail = bytes.Clone(w.cur[len(w.cur)-gzipTailSize:])
		w.tailStart = end - gzipTailSize
	}
	w.cur, w.curStart = w.bufs.Get().([]byte)[:0], end
	if !b.waits {
		w.slots <- struct{}{}
		go func() {
			w.compress(b)
			close(b.done)
		}()
	}
	w.queue <- b
}

func (w *gzipWriter) compress(b *gzBlock) {
	f := w.flates.Get().(*flate.Writer)
	defer w.flates.Put(f)
	b.out = w.outs.Get().(*bytes.Buffer)
	b.out.Reset()
	f.ResetDict(b.out, b.dict)
	// Writes to a bytes.Buffer cannot fail.
	f.Write(b.data)
	f.Flush()
	if b.final {
		f.Close()
	}
}

// output writes compressed blocks in order: to out until the first block
// that waits for the hole, to held after it.
func (w *gzipWriter) output() {
	defer close(w.done)
	for b := range w.queue {
		if b.waits {
			w.waiting = append(w.waiting, b)
			continue
		}
		<-b.done
		<-w.slots
		var to io.Writer = w.out
		if len(w.waiting) > 0 {
			to = &w.held
		}
		if w.err.Load() == nil {
			if _, err := to.Write(b.out.Bytes()); err != nil {
				w.err.CompareAndSwap(nil, &err)
			}
		}
		w.bufs.Put(b.data[:0])
		w.outs.Put(b.out)
	}
}

// Close fills the hole with fill (nil if there is none), compresses what
// waited for it, and writes the rest and the gzip trailer.
func (w *gzipWriter) Close(fill []byte) error {
	defer w.held.remove()
	w.dispatch(true)
	close(w.queue)
	<-w.done
	if err := w.err.Load(); err != nil {
		return *err
	}
	if size := w.hole[1] - w.hole[0]; int64(len(fill)) != size {
		return fmt.Errorf("gzip: %d bytes to fill a hole of %d", len(fill), size)
	}
	for _, b := range w.waiting {
		w.patch(b.data, b.start, fill)
		w.patch(b.dict, b.dictStart, fill)
		w.compress(b)
		if _, err := w.out.Write(b.out.Bytes()); err != nil {
			return err
		}
	}
	if err := w.held.copyTo(w.out); err != nil {
		return err
	}
	crc := w.crcHead
	if w.hole[0] < w.hole[1] {
		crc = crc32.Update(crc, crc32.IEEETable, fill)
		crc = crc32Combine(crc, w.crcTail, w.n-w.hole[1])
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[0:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:8], uint32(w.n)) // the size modulo 2^32, as gzip has it
	_, err := w.out.Write(trailer[:])
	return err
}

// Abort stops after an error elsewhere: it waits for the blocks in flight
// and removes held output.
func (w *gzipWriter) Abort() {
	close(w.queue)
	<-w.done
	w.held.remove()
}

// patch copies the part of fill that overlaps buf, which holds the input
// from offset start.
func (w *gzipWriter) patch(buf []byte, start int64, fill []byte) {
	lo := max(start, w.hole[0])
	hi := min(start+int64(len(buf)), w.hole[1])
	if lo < hi {
		copy(buf[lo-start:hi-start], fill[lo-w.hole[0]:hi-w.hole[0]])
	}
}

// heldOutput keeps compressed output that must wait: in memory up to
// heldInMemory bytes, in chunks that are filled, never grown and copied,
// then in a temporary file in dir.
type heldOutput struct {
	dir    string
	chunks [][]byte
	size   int
	file   *os.File
}

const heldChunk = 4 << 20

func (h *heldOutput) Write(p []byte) (int, error) {
	if h.file == nil && h.size+len(p) <= heldInMemory {
		h.size += len(p)
		for q := p; len(q) > 0; {
			if len(h.chunks) == 0 || len(h.chunks[len(h.chunks)-1]) == heldChunk {
				h.chunks = append(h.chunks, make([]byte, 0, heldChunk))
			}
			last := &h.chunks[len(h.chunks)-1]
			k := min(len(q), heldChunk-len(*last))
			*last = append(*last, q[:k]...)
			q = q[k:]
		}
		return len(p), nil
	}
	if h.file == nil {
		f, err := os.CreateTemp(h.dir, ".pack-*")
		if err != nil {
			return 0, fmt.Errorf("holding compressed output: %w", err)
		}
		h.file = f
	}
	return h.file.Write(p)
}

func (h *heldOutput) copyTo(w io.Writer) error {
	for _, c := range h.chunks {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	if h.file == nil {
		return nil
	}
	if _, err := h.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyBuffer(w, onlyReader{h.file}, make([]byte, 1<<20))
	return err
}

func (h *heldOutput) remove() {
	h.chunks = nil
	if h.file != nil {
		h.file.Close()
		os.Remove(h.file.Name())
		h.file = nil
	}
}

// onlyReader hides a file's WriteTo, which would copy through a 32 KiB
// buffer of its own instead of the one given to io.CopyBuffer.
type onlyReader struct{ io.Reader }

// crc32Combine returns the CRC-32 (IEEE) of A followed by B, from A's CRC,
// B's CRC and B's length: appending lenB zero bits to A is a linear map on
// the CRC's 32 bits, applied by repeated squaring of its matrix.
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32 // operators for 2^k zero bits
	odd[0] = 0xedb88320      // one zero bit: the reversed polynomial...
	for i := 1; i < 32; i++ {
		odd[i] = 1 << (i - 1) // ...then a shift
	}
	squareGF2(even[:], odd[:]) // two zero bits
	squareGF2(odd[:], even[:]) // four
	for {
		squareGF2(even[:], odd[:]) // one zero byte, then 4, 16...
		if lenB&1 != 0 {
			crcA = timesGF2(even[:], crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
		squareGF2(odd[:], even[:])
		if lenB&1 != 0 {
			crcA = timesGF2(odd[:], crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func timesGF2(mat []uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func squareGF2(square, mat []uint32) {
	for i := range 32 {
		square[i] = timesGF2(mat, mat[i])
	}
}
