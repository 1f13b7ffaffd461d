package console

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/event"
)

// normalise replaces the run's total time, the only wall-clock figure the
// records do not carry.
func normalise(s string) string {
	return regexp.MustCompile(`in \d+\.\ds$`).ReplaceAllString(strings.TrimRight(s, "\n"), "in T")
}

func TestConsoleLines(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		records func(*slog.Logger)
		err     error
		want    string
	}{
		{
			name: "steps, targets, a warning in colour, the summary",
			opts: Options{Color: true},
			records: func(l *slog.Logger) {
				l.Info("step", event.Attr(event.StepStarted{Name: "build"}))
				l.Debug("building", event.Attr(event.TargetStarted{Target: "py3.11-cpu-linux-x86_64"}))
				l.Info("slimmed", "target", "py3.11-cpu-linux-x86_64", "rule", "tests", "files", 2)
				l.Warn("slim", "target", "py3.11-cpu-linux-x86_64", "rule", "debug sections", "note", "no strip on PATH")
				l.Info("built", event.Attr(event.TargetBuilt{Target: "py3.11-cpu-linux-x86_64", Bytes: 4648, SHA256: "358a9ea35876dbedfdee", Took: 14339 * time.Millisecond}))
				l.Debug("step done", event.Attr(event.StepDone{Name: "build", Took: 30400 * time.Millisecond}))
				l.Info("latest not moved: it already points at this or a newer version", "channel", "local")
			},
			want: "" +
				"\x1b[33m! slim target=py3.11-cpu-linux-x86_64 rule=\"debug sections\" note=\"no strip on PATH\"\x1b[0m\n" +
				"\x1b[32m  ✓\x1b[0m py3.11-cpu-linux-x86_64             4.5 KiB     14.3s\n" +
				"\x1b[32m✓\x1b[0m build                                                 30.4s\n" +
				"  latest not moved: it already points at this or a newer version channel=local\n" +
				"\n" +
				"\x1b[1mtarget                                 size  sha256           build\x1b[0m\n" +
				"py3.11-cpu-linux-x86_64             4.5 KiB  358a9ea35876     14.3s\n" +
				"\x1b[32mdone\x1b[0m: 1 steps, 1 targets, \x1b[33m1 warnings\x1b[0m, in T",
		},
		{
			name: "a failed step is marked and the run says so",
			records: func(l *slog.Logger) {
				l.Info("step", event.Attr(event.StepStarted{Name: "build"}))
				l.Debug("step done", event.Attr(event.StepDone{Name: "build", Took: time.Second}))
				l.Info("step", event.Attr(event.StepStarted{Name: "publish artifacts to s3"}))
			},
			err: errors.New("publish artifacts to s3: access denied"),
			want: "" +
				"✓ build                                                  1.0s\n" +
				"✗ publish artifacts to s3                                0.0s\n" +
				"failed: 1 steps, 0 targets, 0 warnings, in T",
		},
		{
			name: "verbose shows the routine records, dimmed",
			opts: Options{Verbose: true},
			records: func(l *slog.Logger) {
				l.With("channel", "s3").Info("uploaded", "object", "s3://releases/v1.2.0/a.tar.gz", "bytes", 10)
			},
			want: "    uploaded channel=s3 object=s3://releases/v1.2.0/a.tar.gz bytes=10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := New(&buf, tt.opts)
			tt.records(slog.New(c.Handler()))
			c.Finish(tt.err)
			if got := normalise(buf.String()); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestUploadWithoutBars(t *testing.T) {
	if New(&bytes.Buffer{}, Options{}).Upload() != nil {
		t.Error("an upload progress function without a terminal")
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{400 * time.Millisecond: "0.4s", 59949 * time.Millisecond: "59.9s", 125 * time.Second: "2m05s"} {
		if got := Duration(in); got != want {
			t.Errorf("Duration(%s) = %q, want %q", in, got, want)
		}
	}
}
