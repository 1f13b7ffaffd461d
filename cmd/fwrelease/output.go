package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/runpod-workers/fwrelease/internal/console"
	"github.com/runpod-workers/fwrelease/internal/publish"
	"github.com/runpod-workers/fwrelease/internal/redact"
)

// output is how a run's logs and progress reach stderr: made once per run,
// since every logger() shares it.
type output struct {
	handler slog.Handler
	console *console.Console // the terminal view; nil for text and json
}

var logFormats = []string{"auto", "console", "text", "json"}

// setupOutput picks, once flags are parsed, where logs and progress go:
// the console view on a terminal (or with --log-format console), else
// slog's structured lines, text or JSON.
func (g *globalOptions) setupOutput() error {
	if !slices.Contains(logFormats, g.logFormat) {
		return usageError{fmt.Errorf("--log-format %s: not a format (%s)", g.logFormat, strings.Join(logFormats, ", "))}
	}
	level := slog.LevelInfo
	switch {
	case g.quiet:
		level = slog.LevelError
	case g.verbose:
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	tty := isTerminal(g.stderr)
	switch {
	case g.logFormat == "json":
		g.handler = slog.NewJSONHandler(redact.Writer(g.stderr), opts)
		return nil
	case g.logFormat == "text" || g.quiet || (g.logFormat != "console" && !tty):
		g.handler = slog.NewTextHandler(redact.Writer(g.stderr), opts)
		return nil
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	// stderr itself, not a redacting wrapper, so that mpb sees the
	// terminal; the console redacts each line instead.
	g.console = console.New(g.stderr, console.Options{Verbose: g.verbose, Color: tty && !noColor, Bars: tty, Redact: redact.String})
	g.handler = g.console.Handler()
	if tty && isTerminal(g.stdout) {
		// Results printed straight onto the bars' lines would break them.
		g.stdout = g.console.Pausing(g.stdout)
	}
	return nil
}

func (g *globalOptions) logger() *slog.Logger {
	if g.handler == nil { // a command run without the root's setup (tests)
		g.handler = slog.NewTextHandler(redact.Writer(g.stderr), nil)
	}
	return slog.New(g.handler)
}

// progressBar is the upload progress: bars on the console view of a
// terminal, nothing otherwise (the log lines say what was uploaded).
func (g *globalOptions) progressBar() publish.Progress {
	if g.console == nil {
		return nil
	}
	return g.console.Upload()
}

// finishOutput ends the console view: the failed step marked, the bars
// taken down, the summary printed.
func (g *globalOptions) finishOutput(err error) {
	if g.console != nil {
		g.console.Finish(err)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
