package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/runpod-workers/fwrelease/internal/publish"
)

// progressBar draws upload progress on stderr when it is a terminal, and
// nothing otherwise (the log lines say what was uploaded).
func (g *globalOptions) progressBar() publish.Progress {
	f, ok := g.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newBar(g.stderr).report
}

type bar struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) report(name string, done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	finished := done >= total
	if !finished && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := int(float64(width) * float64(done) / float64(max(total, 1)))
	line := fmt.Sprintf("\r%-60.60s [%-*s] %3.0f%% %s/%s", name, width, repeat('=', filled), 100*float64(done)/float64(max(total, 1)), mib(done), mib(total))
	if finished {
		line += "\n"
	}
	io.WriteString(b.w, line)
}

func repeat(c byte, n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = c
	}
	return string(out)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
