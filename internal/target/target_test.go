package target

import (
	"strings"
	"testing"
)

func TestIDAndFileStem(t *testing.T) {
	tests := []struct {
		t        Target
		id, stem string
		platform string
	}{
		{Target{"3.11", "cpu", "linux", "x86_64"}, "py3.11-cpu-linux-x86_64", "flash-worker-v1.2.0-py3.11-linux-x86_64", "linux/amd64"},
		{Target{"3.12", "cu128", "linux", "x86_64"}, "py3.12-cu128-linux-x86_64", "flash-worker-v1.2.0-py3.12-cu128-linux-x86_64", "linux/amd64"},
		{Target{"3.10", "cpu", "linux", "aarch64"}, "py3.10-cpu-linux-aarch64", "flash-worker-v1.2.0-py3.10-linux-aarch64", "linux/arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := tt.t.ID(); got != tt.id {
				t.Errorf("ID() = %q, want %q", got, tt.id)
			}
			if got := tt.t.FileStem("flash-worker", "1.2.0"); got != tt.stem {
				t.Errorf("FileStem() = %q, want %q", got, tt.stem)
			}
			if got := tt.t.Platform(); got != tt.platform {
				t.Errorf("Platform() = %q, want %q", got, tt.platform)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	good := map[string]func(string) error{"3.10": CheckPython, "3.13": CheckPython, "cpu": CheckAccel, "cu128": CheckAccel, "rocm6.2": CheckAccel, "x86_64": CheckArch, "aarch64": CheckArch}
	for v, check := range good {
		if err := check(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	bad := map[string]func(string) error{"3.1.0": CheckPython, "3": CheckPython, "python3.11": CheckPython, "2.7": CheckPython, "3.7": CheckPython, "gpu": CheckAccel, "cuda12": CheckAccel, "amd64": CheckArch, "arm64": CheckArch}
	for v, check := range bad {
		if err := check(v); err == nil {
			t.Errorf("%q accepted, want an error", v)
		}
	}
}

func TestExpand(t *testing.T) {
	got := Expand([]string{"3.11", "3.12"}, []string{"cpu", "cu128"}, []string{"x86_64", "aarch64"},
		[]Exclude{{Accel: "cu128", Arch: "aarch64"}, {Python: "3.11", Accel: "cu128"}})
	var ids []string
	for _, t := range got {
		ids = append(ids, t.ID())
	}
	want := "py3.11-cpu-linux-x86_64 py3.11-cpu-linux-aarch64 py3.12-cpu-linux-x86_64 py3.12-cpu-linux-aarch64 py3.12-cu128-linux-x86_64"
	if strings.Join(ids, " ") != want {
		t.Errorf("Expand =\n %s\nwant\n %s", strings.Join(ids, " "), want)
	}
}

func TestSelect(t *testing.T) {
	all := Expand([]string{"3.10", "3.11"}, []string{"cpu"}, []string{"x86_64"}, nil)
	got, err := Select(all, []string{"py3.11-cpu-linux-x86_64"})
	if err != nil || len(got) != 1 || got[0].Python != "3.11" {
		t.Fatalf("Select = %v, %v", got, err)
	}
	if got, _ := Select(all, nil); len(got) != 2 {
		t.Errorf("Select(nil) = %v, want all", got)
	}
	_, err = Select(all, []string{"py3.12-cpu-linux-x86_64"})
	if err == nil || !strings.Contains(err.Error(), "unknown target py3.12-cpu-linux-x86_64") || !strings.Contains(err.Error(), "py3.10-cpu-linux-x86_64") {
		t.Errorf("Select(unknown) error = %v, want it to name the target and list the matrix", err)
	}
}
