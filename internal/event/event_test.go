package event

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// An event prints as plain fields where nothing knows events, and is found
// again by type where something does.
func TestEventsPrintAsFields(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("step", Attr(StepStarted{Name: "build"}))
	log.Debug("step done", Attr(StepDone{Name: "build", Took: time.Second}))
	log.Info("built", Attr(TargetBuilt{Target: "py3.11-cpu-linux-x86_64", File: "dist/x.tar.gz", Bytes: 42, SHA256: "ab", Took: 2 * time.Second}))
	for _, want := range []string{
		`msg=step name=build`, `msg="step done" name=build took=1s`,
		`msg=built target=py3.11-cpu-linux-x86_64 file=dist/x.tar.gz bytes=42 sha256=ab took=2s`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in\n%s", want, buf.String())
		}
	}

	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "built", 0)
	r.AddAttrs(slog.String("other", "x"), Attr(TargetStarted{Target: "t"}))
	if e, ok := Of(r).(TargetStarted); !ok || e.Target != "t" {
		t.Errorf("Of = %#v", Of(r))
	}
	if e := Of(slog.NewRecord(time.Time{}, slog.LevelInfo, "step", 0)); e != nil {
		t.Errorf("an event in a record without one: %#v", e)
	}
}
