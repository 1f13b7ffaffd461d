package console

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/event"
)

// handler renders records on its console; WithAttrs and WithGroup give
// handlers that share it.
type handler struct {
	c      *Console
	attrs  []slog.Attr
	prefix string // group names, dotted
}

// Enabled is true at every level: "step done" comes at debug level, and
// Handle decides what to show.
func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		a.Key = h.prefix + a.Key
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

// fields are a record's attributes by key, with their order kept for
// printing.
type fields struct {
	keys   []string
	values map[string]slog.Value
}

// text is key=value pairs, quoted where a value has spaces.
func (f fields) text(skip ...string) string {
	var b strings.Builder
	for _, k := range f.keys {
		if slices.Contains(skip, k) {
			continue
		}
		v := f.values[k].String()
		if v == "" || strings.ContainsAny(v, " =\"") {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

func (h *handler) fields(r slog.Record) fields {
	f := fields{values: map[string]slog.Value{}}
	add := func(a slog.Attr) bool {
		if _, ok := f.values[a.Key]; !ok {
			f.keys = append(f.keys, a.Key)
		}
		f.values[a.Key] = a.Value.Resolve()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		a.Key = h.prefix + a.Key
		return add(a)
	})
	return f
}

// show draws what an event says.
func (c *Console) show(e slog.LogValuer) {
	switch e := e.(type) {
	case event.StepStarted:
		c.startStep(e.Name)
	case event.StepDone:
		c.endStep(e.Name, e.Took)
	case event.TargetStarted:
		c.startBuild(e.Target)
	case event.TargetBuilt:
		c.built(target{id: e.Target, bytes: e.Bytes, sha256: e.SHA256, took: e.Took})
	}
}

// quiet are the routine records that only -v shows: the bars and the
// per-target lines already say what they say.
var quiet = []string{"slimmed", "largest packages", "uploaded"}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	c := h.c
	f := h.fields(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		c.line(c.paint(red, "✗ "+r.Message+f.text()))
	case r.Level >= slog.LevelWarn:
		c.warnings++
		c.line(c.paint(yellow, "! "+r.Message+f.text()))
	case event.Of(r) != nil:
		c.show(event.Of(r))
	case r.Level < slog.LevelInfo || slices.Contains(quiet, r.Message):
		if c.opts.Verbose {
			c.line(c.paint(dim, "    "+r.Message+f.text()))
		}
	default:
		c.line("  " + r.Message + f.text())
	}
	return nil
}

func (c *Console) startStep(name string) {
	if c.step != "" { // a step that logged no end: it went on to the next
		c.endStep(c.step, time.Since(c.stepStart))
	}
	c.step, c.stepStart = name, time.Now()
	c.stepGen++
	// Only a step that takes a while gets a spinner: mpb can leave the
	// frame of a bar removed before it was first drawn on the screen.
	gen := c.stepGen
	time.AfterFunc(3*refresh, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stepGen == gen && c.step == name {
			c.spinner("step", name)
		}
	})
}

func (c *Console) endStep(name string, took time.Duration) {
	if name != c.step {
		return
	}
	c.dropBar("step")
	c.steps++
	c.line(c.paint(green, "✓") + " " + stepLine(name, took))
	c.step = ""
}

func (c *Console) startBuild(id string) { c.spinner("build "+id, id) }

func (c *Console) built(t target) {
	c.dropBar("build " + t.id)
	c.targets = append(c.targets, t)
	c.line(c.paint(green, "  ✓") + " " + targetLine(t))
}

func targetLine(t target) string {
	return fmt.Sprintf("%-32s %10s  %8s", t.id, config.Size(t.bytes), Duration(t.took))
}
