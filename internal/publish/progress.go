package publish

import (
	"io"
	"sync"
	"sync/atomic"
)

// Progress is told how far an upload has got. The CLI draws a bar from it
// when stderr is a terminal; nil reports nothing.
type Progress func(name string, done, total int64)

// tracker adds up the bytes of one object sent by any number of readers,
// counting a byte once even when the SDK rewinds a body to retry it.
type tracker struct {
	name     string
	total    int64
	done     atomic.Int64
	report   Progress
	reportMu sync.Mutex
}

func newTracker(name string, total int64, report Progress) *tracker {
	return &tracker{name: name, total: total, report: report}
}

func (t *tracker) add(n int64) {
	if t == nil || t.report == nil || n <= 0 {
		return
	}
	t.done.Add(n)
	t.reportMu.Lock()
	// Read under the lock, so reports never go backwards.
	t.report(t.name, t.done.Load(), t.total)
	t.reportMu.Unlock()
}

// trackedReader is a seekable body whose reads, past the furthest point
// already read, count as progress.
type trackedReader struct {
	r        io.ReadSeeker
	pos, max int64
	t        *tracker
}

func (tr *trackedReader) Read(p []byte) (int, error) {
	n, err := tr.r.Read(p)
	tr.pos += int64(n)
	if tr.pos > tr.max {
		tr.t.add(tr.pos - tr.max)
		tr.max = tr.pos
	}
	return n, err
}

func (tr *trackedReader) Seek(offset int64, whence int) (int64, error) {
	pos, err := tr.r.Seek(offset, whence)
	if err == nil {
		tr.pos = pos
	}
	return pos, err
}
