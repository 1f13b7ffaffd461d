// Package event is what a release reports as it goes, as typed values a
// logger carries: text and JSON logs print their fields like any others
// (msg=step name=build), and the terminal view (internal/console) tells
// them apart by type, never by message text.
//
//	log.Info("step", event.Attr(event.StepStarted{Name: "build"}))
package event

import (
	"log/slog"
	"time"
)

// StepStarted is a release step starting.
type StepStarted struct{ Name string }

// StepDone is a release step finished.
type StepDone struct {
	Name string
	Took time.Duration
}

// TargetStarted is a target's build starting.
type TargetStarted struct{ Target string }

// TargetBuilt is a target's tarball written.
type TargetBuilt struct {
	Target string // target ID
	File   string // the tarball's path
	Bytes  int64
	SHA256 string
	Took   time.Duration
}

func (e StepStarted) LogValue() slog.Value { return slog.GroupValue(slog.String("name", e.Name)) }

func (e StepDone) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", e.Name), slog.Duration("took", e.Took))
}

func (e TargetStarted) LogValue() slog.Value { return slog.GroupValue(slog.String("target", e.Target)) }

func (e TargetBuilt) LogValue() slog.Value {
	return slog.GroupValue(slog.String("target", e.Target), slog.String("file", e.File),
		slog.Int64("bytes", e.Bytes), slog.String("sha256", e.SHA256), slog.Duration("took", e.Took))
}

// Attr carries e in a record; a handler that does not know events inlines
// its fields (an attribute with no key).
func Attr(e slog.LogValuer) slog.Attr { return slog.Any("", e) }

// Of is the event a record carries, or nil.
func Of(r slog.Record) slog.LogValuer {
	var found slog.LogValuer
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" && a.Value.Kind() == slog.KindLogValuer {
			found, _ = a.Value.Any().(slog.LogValuer)
		}
		return found == nil
	})
	return found
}
