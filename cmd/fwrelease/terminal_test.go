package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runpod-workers/fwrelease/internal/event"
)

// What a person sees: `release --snapshot` of the example on a real
// terminal (tmux), the screen captured when it is done, kept as a golden
// file. Then the same run with stderr not a terminal keeps the structured
// lines CI logs are made of.
func TestTerminalSnapshot(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal("tmux not found; install it: apt-get install tmux (.ci/run does)")
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(repoRoot(t), "examples", "flash-worker"), filepath.Join(dir, "example")); err != nil {
		t.Fatal(err)
	}
	socket := fmt.Sprintf("fwrelease-test-%d", os.Getpid())
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-L", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// One build at a time, so the targets finish in a fixed order.
	shell := fmt.Sprintf("env -i HOME=%q PATH=%q TERM=xterm-256color GOMAXPROCS=1 GITHUB_SHA=%s PS1='$ ' bash --norc --noprofile",
		os.Getenv("HOME"), filepath.Dir(bin)+":"+os.Getenv("PATH"), fixedCommit)
	tm("new-session", "-d", "-s", "fw", "-x", "100", "-y", "50", shell)
	t.Cleanup(func() { exec.Command(tmux, "-L", socket, "kill-server").Run() })
	tm("send-keys", "-t", "fw", "cd "+dir+" && clear", "Enter")
	time.Sleep(time.Second)
	tm("send-keys", "-t", "fw", "fwrelease --config example/fwrelease.yaml release --snapshot; echo \"[exit $?]\"", "Enter")
	var screen string
	exited := regexp.MustCompile(`\[exit \d+\]`)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if screen = tm("capture-pane", "-p", "-t", "fw"); exited.MatchString(screen) {
			break
		}
	}
	if !strings.Contains(screen, "[exit 0]") {
		t.Fatalf("release --snapshot on a terminal did not finish with exit 0:\n%s", screen)
	}
	golden(t, "snapshot-terminal.golden.txt", normaliseScreen(screen, dir))

	r := run(t, dir, []string{"GITHUB_SHA=" + fixedCommit}, "--config", "example/fwrelease.yaml", "release", "--snapshot")
	if r.code != 0 {
		t.Fatalf("release --snapshot: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=step name=build$`),
		regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=built target=py3\.11-cpu-linux-x86_64 file=\S+ bytes=\d+ sha256=[0-9a-f]{64} took=\S+$`),
		regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=step name="move latest"$`),
	} {
		if !want.MatchString(r.stderr) {
			t.Errorf("stderr (not a terminal) has no line matching %s:\n%s", want, r.stderr)
		}
	}
	if strings.ContainsAny(r.stderr, "✓\x1b") {
		t.Errorf("stderr (not a terminal) has terminal output:\n%s", r.stderr)
	}
}

// normaliseScreen keeps what a change to the output would change, and
// drops what differs run to run or with other work on the tarballs: times,
// the temporary directory, digests, sizes, column widths.
func normaliseScreen(screen, dir string) string {
	screen = strings.ReplaceAll(screen, dir, "$DIR")
	for _, r := range []struct{ re, with string }{
		{`\b\d+\.\ds\b|\b\d+m\d\ds\b`, "T"},
		{`\b[0-9a-f]{12}\b`, "SHA"},
		{`\b\d+(\.\d)? (B|KiB|MiB|GiB)\b`, "SIZE"},
		{` +`, " "},
	} {
		screen = regexp.MustCompile(r.re).ReplaceAllString(screen, r.with)
	}
	var lines []string
	for _, l := range strings.Split(screen, "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// The log formats, in process: json for CI log processors, text (today's
// structured lines), console on demand, and -q; each redacts secrets.
func TestLogFormats(t *testing.T) {
	tests := []struct {
		format string
		quiet  bool
		check  func(t *testing.T, out string)
	}{
		{"json", false, func(t *testing.T, out string) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &rec); err != nil || rec["msg"] != "step" || rec["name"] != "build" {
				t.Errorf("json: %v %q", err, out)
			}
		}},
		{"auto", false, func(t *testing.T, out string) {
			if !regexp.MustCompile(`^time=\S+ level=INFO msg=step name=build\n`).MatchString(out) {
				t.Errorf("auto, not a terminal: %q", out)
			}
		}},
		{"console", false, func(t *testing.T, out string) {
			if !strings.Contains(out, "✓ build") || !strings.Contains(out, "! slim note=\"no strip\"") || strings.Contains(out, "\x1b[") {
				t.Errorf("console, not a terminal (no colour): %q", out)
			}
		}},
		{"auto", true, func(t *testing.T, out string) {
			if strings.Contains(out, "msg=step") || strings.Contains(out, "msg=slim") || !strings.Contains(out, "level=ERROR msg=broken") {
				t.Errorf("-q: %q", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s quiet=%v", tt.format, tt.quiet), func(t *testing.T) {
			var stderr bytes.Buffer
			g := &globalOptions{stderr: &stderr, stdout: &bytes.Buffer{}, logFormat: tt.format, quiet: tt.quiet}
			if err := g.setupOutput(); err != nil {
				t.Fatal(err)
			}
			log := g.logger()
			log.Info("step", event.Attr(event.StepStarted{Name: "build"}))
			log.Debug("step done", event.Attr(event.StepDone{Name: "build", Took: time.Second}))
			log.Warn("slim", "note", "no strip")
			log.Error("broken", "error", "401 (Authorization: Bearer abcdefgh12345678)")
			g.finishOutput(nil)
			tt.check(t, stderr.String())
			if strings.Contains(stderr.String(), "abcdefgh12345678") || !strings.Contains(stderr.String(), "[REDACTED]") {
				t.Errorf("the token is not redacted: %q", stderr.String())
			}
		})
	}
	g := &globalOptions{logFormat: "yaml"}
	if err := g.setupOutput(); err == nil || !strings.Contains(err.Error(), "--log-format yaml") {
		t.Errorf("--log-format yaml: %v", err)
	}
}

func TestQuietAndVerboseExclusive(t *testing.T) {
	r := run(t, t.TempDir(), nil, "-q", "-v", "version")
	if r.code != 2 || !strings.Contains(r.stderr, "quiet") {
		t.Errorf("-q -v: exit %d %s", r.code, r.stderr)
	}
	r = run(t, t.TempDir(), nil, "--log-format", "yaml", "version")
	if r.code != 2 || !strings.Contains(r.stderr, "--log-format yaml: not a format") {
		t.Errorf("--log-format yaml: exit %d %s", r.code, r.stderr)
	}
}
