// Package console is what a person watching a run on a terminal reads: one
// line per step and per built target with its outcome and time, warnings
// highlighted, progress bars for builds and uploads in flight, and a
// summary at the end.
//
// It is a slog.Handler, so the packages that do the work keep logging as
// they do for CI (structured lines) and know nothing of terminals. It
// draws steps and targets from the typed events of internal/event that the
// records carry (a step starting and done, a target's build starting and
// its tarball written), never from message text.
//
// Warnings and errors are always shown; other records only with Verbose.
package console

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/runpod-workers/fwrelease/internal/config"
)

// Options say how much to show and how.
type Options struct {
	Verbose bool // every record, debug included
	Color   bool // ANSI colours (a terminal without NO_COLOR)
	Bars    bool // progress bars (a terminal)
	// Redact, when set, cleans every line of secrets before it is shown.
	Redact func(string) string
}

// Console is the shared state of one run's output.
type Console struct {
	mu   sync.Mutex
	w    io.Writer
	opts Options

	progress *mpb.Progress // started with the first bar, until Finish
	bars     map[string]*mpb.Bar

	step      string // in flight
	stepStart time.Time
	stepGen   int // which step a delayed spinner is for
	steps     int
	started   time.Time
	targets   []target
	warnings  int
	finished  bool
}

type target struct {
	id     string
	bytes  int64
	sha256 string
	took   time.Duration
}

// New writes to w (stderr).
func New(w io.Writer, opts Options) *Console {
	return &Console{w: w, opts: opts, bars: map[string]*mpb.Bar{}, started: time.Now()}
}

// Handler is the slog.Handler that renders records on c.
func (c *Console) Handler() slog.Handler { return &handler{c: c} }

// line prints one line above the bars, or straight to w without them.
func (c *Console) line(s string) {
	if c.opts.Redact != nil {
		s = c.opts.Redact(s)
	}
	s += "\n"
	if c.progress != nil {
		if _, err := c.progress.Write([]byte(s)); err == nil {
			return
		}
	}
	io.WriteString(c.w, s)
}

const (
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
	dim    = "\x1b[2m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

func (c *Console) paint(colour, s string) string {
	if !c.opts.Color {
		return s
	}
	return colour + s + reset
}

// Finish ends the run: the step in flight, if err stopped it, is marked
// failed; the bars are taken down; the summary is printed.
func (c *Console) Finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	if c.step != "" {
		outcome := "✓"
		colour := green
		if err != nil {
			outcome, colour = "✗", red
		}
		c.line(c.paint(colour, outcome) + " " + stepLine(c.step, time.Since(c.stepStart)))
		c.step = ""
	}
	c.stopBars()
	c.summary(err)
}

func (c *Console) stopBars() {
	if c.progress == nil {
		return
	}
	for key := range c.bars {
		c.dropBar(key)
	}
	// mpb draws a removed bar's last frame once more and erases it on the
	// next refresh; shutting down in between would leave it on the screen.
	c.mu.Unlock()
	time.Sleep(2*refresh + 50*time.Millisecond)
	c.mu.Lock()
	c.progress.Wait()
	c.progress = nil
}

// summary is the table a person reads last: every target built, then the
// whole run's outcome, time and warnings.
func (c *Console) summary(err error) {
	if len(c.targets) > 0 {
		slices.SortFunc(c.targets, func(a, b target) int { return strings.Compare(a.id, b.id) })
		c.line("")
		c.line(c.paint(bold, fmt.Sprintf("%-32s %10s  %-12s  %8s", "target", "size", "sha256", "build")))
		for _, t := range c.targets {
			c.line(fmt.Sprintf("%-32s %10s  %-12.12s  %8s", t.id, config.Size(t.bytes), t.sha256, Duration(t.took)))
		}
	}
	if c.steps == 0 && len(c.targets) == 0 {
		return
	}
	outcome := c.paint(green, "done")
	if err != nil {
		outcome = c.paint(red, "failed")
	}
	warnings := fmt.Sprintf("%d warnings", c.warnings)
	if c.warnings > 0 {
		warnings = c.paint(yellow, warnings)
	}
	c.line(fmt.Sprintf("%s: %d steps, %d targets, %s, in %s", outcome, c.steps, len(c.targets), warnings, Duration(time.Since(c.started))))
}

func stepLine(name string, took time.Duration) string {
	return fmt.Sprintf("%-50s %8s", name, Duration(took))
}

// Duration is a run time as people read it: 0.4s, 12.3s, 2m05s.
func Duration(d time.Duration) string {
	if d < time.Minute {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// Pausing wraps w (stdout on the same terminal) so that what is written to
// it lands below the bars, which are taken down first, rather than in them.
func (c *Console) Pausing(w io.Writer) io.Writer { return pausing{c, w} }

type pausing struct {
	c *Console
	w io.Writer
}

func (p pausing) Write(b []byte) (int, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.stopBars()
	return p.w.Write(b)
}
